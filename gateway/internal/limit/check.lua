-- Sluice rate-limit and quota decisions for one API, a batch at a time.
--
-- KEYS: every counter the batch touches, each once; all share the API's hash
-- tag (store.CounterPrefix), so the script runs on one Redis Cluster slot.
--
-- ARGV[1]: numbers, each a little-endian IEEE 754 double (exact for the
-- integers sent; struct.unpack reads them far faster than Lua parses
-- text):
--   lease fraction (per mille of what is available now),
--   the number of returns, then per return (quota lease requests a node
--   did not spend): key index, count, period (the quota's end, Unix ms);
--   the number of groups, then per group (n identical decisions):
--     n, nrules, nquotas,
--     per rule:  key index, period (us), rate, burst, shadow (0|1),
--                lease (0: exact; w > 0: lease rule asking for up to w),
--                cost (units one decision counts; 1 for a request)
--     per quota: key index, max, renewal (ms),
--                lease (0: exact; w > 0: lease quota asking for up to w),
--                cost
-- A lease rule or quota has cost 1.
-- A group with a lease rule or quota has n = 1.
--
-- Rules are GCRA: a counter holds the theoretical arrival time (TAT, Unix
-- microseconds of Redis time). Quotas are a count that expires Renewal after
-- the first request of its period; that expiry (Unix ms) names the period.
--
-- Returns come first: a quota's count goes down by what a node gives back
-- (never below zero), only in the period it was granted in.
--
-- A group is decided in closed form, exactly as its n decisions taken one
-- after the other at the same Redis time: each rule allows a = the number
-- of requests its burst admits now (floor((now + tau - max(TAT, now)) / T)),
-- each quota a = max - count; the first k = min(n, a of every non-shadow
-- rule and quota) decisions are allowed and consume (TAT += k*T, count +=
-- k; a shadow rule min(k, a)*T), the other n - k are refused and consume
-- nothing. Groups are taken in order, each seeing what the ones before it
-- consumed.
--
-- A lease rule or quota (n = 1) grants g requests at once (1 <= g <= w, at
-- most the fraction of what is available now, at least 1 when anything
-- is) and, when the decision is allowed, consumes g, exactly as g requests
-- arriving now would (TAT += g*T, count += g): the node that asked spends
-- them itself. It refuses like an exact limit when not even one is
-- available.
--
-- Costs: a limit counting units admits a = floor(u / cost) decisions of
-- the u units it has now, and each allowed decision consumes cost units
-- (TAT += cost*T, count += cost).
--
-- Returns Redis time (us), then per group: k, then per rule: u, the units
-- its burst admits now (a lease rule: g), and the TAT minus now (us,
-- rounded up); per quota: u = max - count (a lease quota: g), and its
-- period end (Unix ms). The client derives each
-- decision's outcome, remaining, reset and retry-after from these (see
-- group.go).

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)

local val = {}   -- key index -> TAT (rules) or count (quotas)
local qend = {}  -- key index -> quota period end (Unix ms); nil: no period yet
local qrun = {}  -- key index -> count stored, for a quota whose period runs
local kind = {}  -- key index -> 'r' or 'q' once changed (to write back)
local stored = redis.call('MGET', unpack(KEYS)) -- one read for every counter

local function load_rule(k)
  local v = val[k]
  if v == nil then
    v = tonumber(stored[k]) or 0
    val[k] = v
  end
  return v
end

local function load_quota(k)
  local v = val[k]
  if v == nil then
    v = tonumber(stored[k]) or 0
    if stored[k] then
      local e = redis.call('PEXPIRETIME', KEYS[k])
      if e >= 0 then
        qend[k] = e
        qrun[k] = v
      end
    end
    val[k] = v
  end
  return v
end

-- lease grants g of avail: 1 <= g <= want, at most the fraction.
local function lease(avail, want, frac)
  if avail < 1 then return 0 end
  local g = math.floor(avail * frac / 1000)
  if g < 1 then g = 1 end
  if g > want then g = want end
  return g
end

-- ARGS: ARGV[1] decoded by args.lua, prepended to this script.

local frac = ARGS[1]
local a = 3
for _ = 1, ARGS[2] do
  local key, n, period = ARGS[a], ARGS[a + 1], ARGS[a + 2]
  a = a + 3
  local c = load_quota(key)
  if qend[key] == period and c > 0 then
    if n > c then n = c end
    val[key] = c - n
    kind[key] = 'q'
  end
end

local out = {now}
local o = 1
local rk, rtat, rT, ra, rlease, rcost = {}, {}, {}, {}, {}, {}
local qk, qren, qa, qlease, qcost = {}, {}, {}, {}, {}
local ngroups = ARGS[a]
a = a + 1
for _ = 1, ngroups do
  local n, nr, nq = ARGS[a], ARGS[a + 1], ARGS[a + 2]
  a = a + 3
  local ko = o + 1
  o = ko
  local k = n
  for i = 1, nr do
    local key = ARGS[a]
    local T = ARGS[a + 1] / ARGS[a + 2]
    local tau = T * ARGS[a + 3]
    local shadow = ARGS[a + 4] == 1
    local want, cost = ARGS[a + 5], ARGS[a + 6]
    a = a + 7
    local tat = load_rule(key)
    if tat < now then tat = now end
    local avail = math.floor((now + tau - tat) / T)
    while avail > 0 and tat + avail * T - tau > now do avail = avail - 1 end
    if avail < 0 then avail = 0 end
    if want > 0 then avail = lease(avail, want, frac) end
    local adm = avail
    if want == 0 then adm = math.floor(avail / cost) end
    if not shadow and adm < k then k = adm end
    rk[i], rtat[i], rT[i], ra[i], rlease[i], rcost[i] = key, tat, T, adm, want > 0, cost
    out[o + 1] = avail
    out[o + 2] = math.ceil(tat - now)
    o = o + 2
  end
  for j = 1, nq do
    local key, max, ren, want, cost = ARGS[a], ARGS[a + 1], ARGS[a + 2], ARGS[a + 3], ARGS[a + 4]
    a = a + 5
    local c = load_quota(key)
    local avail = max - c
    if avail < 0 then avail = 0 end
    if want > 0 then avail = lease(avail, want, frac) end
    local adm = avail
    if want == 0 then adm = math.floor(avail / cost) end
    if adm < k then k = adm end
    qk[j], qren[j], qa[j], qlease[j], qcost[j] = key, ren, avail, want > 0, cost
    out[o + 1] = avail
    out[o + 2] = qend[key] or (nowms + ren)
    o = o + 2
  end
  out[ko] = k
  if k > 0 then
    for i = 1, nr do
      -- min(k, a): k for an enforced rule (a >= k); a lease rule's a is
      -- its grant g, taken whole (k = 1)
      local c = ra[i]
      if c > k and not rlease[i] then c = k end
      if not rlease[i] then c = c * rcost[i] end
      if c > 0 then
        val[rk[i]] = rtat[i] + c * rT[i]
        kind[rk[i]] = 'r'
      end
    end
    for j = 1, nq do
      local key, c = qk[j], k * qcost[j]
      if qlease[j] then c = qa[j] end
      val[key] = val[key] + c
      if qend[key] == nil then qend[key] = nowms + qren[j] end
      kind[key] = 'q'
    end
  end
end

-- A rule's counter expires on a 100ms grid at least 100ms after its TAT:
-- while the TAT stays in the same step, the expiry is already right and
-- the write keeps it (SET KEEPTTL is cheaper than setting one). A running
-- quota period keeps its expiry too (INCRBY); a new one expires at its end.
local function expiry(tat) -- Unix ms
  return (math.floor(tat / 100000) + 2) * 100
end

for k, what in pairs(kind) do
  if what == 'r' then
    local tat = math.ceil(val[k])
    local e = expiry(tat)
    if stored[k] and expiry(tonumber(stored[k]) or 0) == e then
      redis.call('SET', KEYS[k], string.format('%d', tat), 'KEEPTTL')
    else
      redis.call('SET', KEYS[k], string.format('%d', tat), 'PXAT', e)
    end
  elseif qrun[k] then
    if val[k] ~= qrun[k] then redis.call('INCRBY', KEYS[k], val[k] - qrun[k]) end
  else
    local e = qend[k]
    if e <= nowms then e = nowms + 1 end
    redis.call('SET', KEYS[k], string.format('%d', val[k]), 'PXAT', e)
  end
end
return out
