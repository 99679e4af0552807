-- Adjust counters of one slot after a decision: give back what a request
-- did not use, or count what it used beyond what it reserved.
--
-- KEYS: the counters. ARGV: per key, a kind and two numbers:
--   "r", d (us), 0: a GCRA rule; its TAT moves by d. d < 0 gives back
--        (a refused part of a split decision: one request's T; a settled
--        reservation: the unused units' worth), only while the counter
--        exists. d > 0 counts more: TAT = max(TAT, now) + d, the expiry
--        moved with it, as check.lua sets it.
--   "q", n, bound (Unix ms): a quota; its count goes down by n (n > 0,
--        never below zero; n < 0: up by -n, a settled excess) only if its
--        period ends no later than bound (the consuming decision's Redis
--        time + renewal), i.e. the period is the one the request was
--        counted in.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local kind, n, bound = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local v = redis.call('GET', key)
  if kind == 'r' then
    if n > 0 then
      local tat = tonumber(v or 0) or 0
      if tat < now then tat = now end
      tat = math.ceil(tat + n)
      redis.call('SET', key, string.format('%d', tat), 'PXAT', (math.floor(tat / 100000) + 2) * 100)
    elseif v then
      redis.call('SET', key, string.format('%d', math.floor(tonumber(v) + n)), 'KEEPTTL')
    end
  elseif v then
    local e = redis.call('PEXPIRETIME', key)
    local c = tonumber(v)
    if e >= 0 and e <= bound then
      if n < 0 then
        redis.call('INCRBY', key, -n)
      elseif c > 0 then
        if n > c then n = c end
        redis.call('DECRBY', key, n)
      end
    end
  end
end
return 0
