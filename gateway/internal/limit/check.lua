-- Sluice rate-limit and quota decisions for one API, a batch at a time.
--
-- KEYS: every counter the batch touches, each once; all share the API's hash
-- tag (store.CounterPrefix), so the script runs on one Redis Cluster slot.
--
-- ARGV[1]: integers separated by single spaces (one argument, so the
-- client sends and Redis parses one string per batch): the number of
-- decisions, then per decision:
--   nrules, nquotas,
--   per rule:  key index, period (us), rate, burst, shadow (0|1),
--              lease (0: exact; n > 0: lease rule asking for up to n),
--              lease fraction (per mille of what is available now)
--   per quota: key index, max, renewal (ms)
--
-- Rules are GCRA: a counter holds the theoretical arrival time (TAT, Unix
-- microseconds of Redis time). Quotas are a count that expires Renewal after
-- the first request of its period.
--
-- A lease rule grants g requests at once (1 <= g <= n, at most the fraction
-- of what the burst allows now, at least 1 when anything is available) and
-- advances the TAT by g*T, exactly as g requests arriving now would: the
-- node that asked spends them itself. It refuses like an exact rule when
-- not even one request is available.
--
-- Decisions are taken in order, each seeing what the ones before it
-- consumed. A decision is allowed only if every non-shadow rule and every
-- quota allows it; only then is each of its counters consumed (a shadow rule
-- only when it allows too). A refused decision consumes nothing.
--
-- Returns 7 integers per decision:
--   allowed (0|1), reason (0 none, 1 rate, 2 quota),
--   index of the most restrictive limit (1-based: rules, then quotas; 0 none),
--   its remaining, its reset (us), retry after (us, 0 when allowed),
--   number of shadow rules that would have refused;
-- then, per lease rule of the decision in order: requests granted (0 when
-- the decision was refused), and the TAT before the grant minus now (us),
-- or minus the wait (us) when that rule itself had nothing to grant.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local val = {}   -- key index -> TAT (rules) or count (quotas)
local qexp = {}  -- key index -> quota period end (us); nil: no period yet
local kind = {}  -- key index -> 'r' or 'q' once consumed (to write back)

local function load_rule(k)
  local v = val[k]
  if v == nil then
    v = tonumber(redis.call('GET', KEYS[k])) or 0
    val[k] = v
  end
  return v
end

local function load_quota(k)
  local v = val[k]
  if v == nil then
    v = tonumber(redis.call('GET', KEYS[k])) or 0
    if v > 0 then
      local pttl = redis.call('PTTL', KEYS[k])
      if pttl >= 0 then
        qexp[k] = now + pttl * 1000
      end
    end
    val[k] = v
  end
  return v
end

local ARGS = {}
for v in string.gmatch(ARGV[1], '%S+') do
  ARGS[#ARGS + 1] = tonumber(v)
end

local out = {}
local a = 2
local rk, rtat, rshadow, rok = {}, {}, {}, {}
local lg, loff = {}, {}
local qk, qmax, qren = {}, {}, {}
for _ = 1, ARGS[1] do
  local nr, nq = ARGS[a], ARGS[a + 1]
  a = a + 2
  local allowed, reason, shadowed = 1, 0, 0
  local best, bestrem, bestreset, retry = 0, -1, 0, 0
  local nl = 0
  for i = 1, nr do
    local k = ARGS[a]
    local T = ARGS[a + 1] / ARGS[a + 2]
    local tau = T * ARGS[a + 3]
    local shadow = ARGS[a + 4] == 1
    local want, frac = ARGS[a + 5], ARGS[a + 6]
    a = a + 7
    local tat = load_rule(k)
    if tat < now then tat = now end
    local g = 1
    if want > 0 then
      local avail = math.floor((now + tau - tat) / T)
      while avail > 0 and tat + avail * T - tau > now do avail = avail - 1 end
      g = 0
      if avail >= 1 then
        g = math.floor(avail * frac / 1000)
        if g < 1 then g = 1 end
        if g > want then g = want end
      end
      nl = nl + 1
      lg[nl], loff[nl] = g, tat - now
    end
    local newtat = tat + T
    if g > 1 then newtat = tat + g * T end
    local allowat = tat + T - tau
    local rem, reset, wait
    if g == 0 or now < allowat then
      rok[i] = false
      rem, reset, wait = 0, tat - now, allowat - now
      if want > 0 then lg[nl], loff[nl] = 0, -math.max(wait, 1) end
      if shadow then
        shadowed = shadowed + 1
      else
        allowed, reason = 0, 1
      end
    else
      rok[i] = true
      rem, reset, wait = math.floor((now - allowat) / T), newtat - now, 0
      if want > 0 then rem = g - 1 end
    end
    rk[i], rtat[i], rshadow[i] = k, newtat, shadow
    if not shadow then
      if wait > retry then retry = wait end
      if best == 0 or rem < bestrem or (rem == bestrem and reset > bestreset) then
        best, bestrem, bestreset = i, rem, reset
      end
    end
  end
  for j = 1, nq do
    local k, max, ren = ARGS[a], ARGS[a + 1], ARGS[a + 2] * 1000
    a = a + 3
    local c = load_quota(k)
    local ends = qexp[k] or (now + ren)
    local rem, reset = max - c - 1, ends - now
    if c + 1 > max then
      allowed, reason, rem = 0, 2, 0
      if reset > retry then retry = reset end
    end
    qk[j], qmax[j], qren[j] = k, max, ren
    if best == 0 or rem < bestrem or (rem == bestrem and reset > bestreset) then
      best, bestrem, bestreset = nr + j, rem, reset
    end
  end
  if allowed == 1 then
    retry = 0
    for i = 1, nr do
      if rok[i] then
        val[rk[i]] = rtat[i]
        kind[rk[i]] = 'r'
      end
    end
    for j = 1, nq do
      local k = qk[j]
      val[k] = val[k] + 1
      if qexp[k] == nil then qexp[k] = now + qren[j] end
      kind[k] = 'q'
    end
  end
  if bestrem < 0 then bestrem = 0 end
  out[#out + 1] = allowed
  out[#out + 1] = reason
  out[#out + 1] = best
  out[#out + 1] = bestrem
  out[#out + 1] = math.ceil(bestreset)
  out[#out + 1] = math.ceil(retry)
  out[#out + 1] = shadowed
  for i = 1, nl do
    if allowed == 1 then out[#out + 1] = lg[i] else out[#out + 1] = 0 end
    out[#out + 1] = math.floor(loff[i])
  end
end

for k, what in pairs(kind) do
  if what == 'r' then
    local tat = math.ceil(val[k])
    redis.call('SET', KEYS[k], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  else
    local ttl = math.ceil((qexp[k] - now) / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('SET', KEYS[k], string.format('%d', val[k]), 'PX', ttl)
  end
end
return out
