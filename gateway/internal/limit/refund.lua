-- Give back one request to counters of one slot that an allowed part of
-- a decision split across slots consumed, when the other part refused
-- (split.go).
--
-- KEYS: the counters. ARGV: per key, a kind and a number:
--   "r", T (us): a GCRA rule; its TAT moves back by T (one request's
--                worth), if the counter still exists;
--   "q", bound (Unix ms): a quota; its count goes down by 1 (never below
--                zero) only if its period ends no later than bound (the
--                consuming decision's Redis time + renewal), i.e. the
--                period is the one the request was counted in.
for i, key in ipairs(KEYS) do
  local kind, n = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  local v = redis.call('GET', key)
  if v then
    if kind == 'r' then
      local tat = math.floor(tonumber(v) - n)
      redis.call('SET', key, string.format('%d', tat), 'KEEPTTL')
    else
      local e = redis.call('PEXPIRETIME', key)
      if e >= 0 and e <= n and tonumber(v) > 0 then
        redis.call('DECRBY', key, 1)
      end
    end
  end
end
return 0
