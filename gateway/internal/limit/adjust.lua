-- Adjust counters of one slot after their decisions, a batch at a time:
-- give back what a request did not use (a settlement, or a refund of a
-- split decision's part that a later part refused), or count what it used
-- beyond what it reserved.
--
-- KEYS: every counter the batch adjusts, each once; all in one slot.
--
-- ARGV[1]: numbers, each a little-endian IEEE 754 double (as check.lua):
-- per adjustment, in order: key index, kind, n, bound.
--   kind 0: a GCRA rule; its TAT moves by n (us; n may be fractional).
--        n < 0 gives back (a refund: its cost's worth; a settlement: the
--        unused units' worth), only while the counter exists: TAT =
--        floor(TAT + n), the expiry kept. n > 0 counts more: TAT =
--        ceil(max(TAT, now) + n), the expiry moved with it, as check.lua
--        sets it. bound is unused.
--   kind 1: a quota; its count goes down by n (n > 0, never below zero;
--        n < 0: up by -n, a settled excess) only if its period ends no
--        later than bound (Unix ms: the consuming decision's Redis time +
--        renewal), i.e. the period is the one the request was counted in.
--
-- The adjustments are applied one after the other, each seeing the ones
-- before it, exactly as one call each would apply them; a counter is read
-- once and written once per call.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- ARGS: ARGV[1] decoded by args.lua, prepended to this script.

local function expiry(tat) -- Unix ms, as check.lua
  return (math.floor(tat / 100000) + 2) * 100
end

local val = {}   -- key index -> TAT or count; false: absent
local first = {} -- key index -> the value read
local pend = {}  -- key index -> quota period end (PEXPIRETIME), read once
local pxat = {}  -- key index -> a rule's new expiry (nil: keep its TTL)
local kind = {}  -- key index -> 0 or 1 once changed

for a = 1, nv, 4 do
  local k, what, n, bound = ARGS[a], ARGS[a + 1], ARGS[a + 2], ARGS[a + 3]
  local v = val[k]
  if v == nil then
    v = tonumber(redis.call('GET', KEYS[k]) or '') or false
    val[k], first[k] = v, v
  end
  if what == 0 then
    if n > 0 then
      local tat = v or 0
      if tat < now then tat = now end
      tat = math.ceil(tat + n)
      val[k], pxat[k], kind[k] = tat, expiry(tat), 0
    elseif v then
      val[k], kind[k] = math.floor(v + n), 0
    end
  elseif v then
    local e = pend[k]
    if e == nil then
      e = redis.call('PEXPIRETIME', KEYS[k])
      pend[k] = e
    end
    if e >= 0 and e <= bound then
      if n < 0 then
        val[k], kind[k] = v - n, 1
      elseif v > 0 then
        if n > v then n = v end
        val[k], kind[k] = v - n, 1
      end
    end
  end
end

for k, what in pairs(kind) do
  if what == 0 then
    if pxat[k] then
      redis.call('SET', KEYS[k], string.format('%d', val[k]), 'PXAT', pxat[k])
    else
      redis.call('SET', KEYS[k], string.format('%d', val[k]), 'KEEPTTL')
    end
  elseif val[k] ~= first[k] then
    redis.call('INCRBY', KEYS[k], val[k] - first[k])
  end
end
return 0
