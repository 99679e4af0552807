package aggregates

import "github.com/redis/go-redis/v9"

// applyScript records the messages of one API in one fetched batch.
//
// KEYS[1] = T.."tot" (routes the call; every key used shares its tag)
// ARGV: T, dedupTTLms, nIDs, ids..., minID (Unix ms), retention ms,
//
//	nTotals, (code, delta)..., nMinutes, then per minute: minute, requests,
//	nFields, (field, delta)..., then nNames, last minute (Unix ms),
//	(key hash, name JSON)...
//
// It returns {1, i...} with the 1-based positions of messages already
// recorded, changing nothing; or {0, late} after adding everything. A
// minute above the watermark goes to its open bucket. A minute at or below
// it is closed already: its events are late, counted in the "late" total
// and added to the minute's correction bucket T.."l:<minute>" (indexed in
// T.."late", expiring with the minute's retention), which the readers add
// to the closed minute, so series and totals agree. A minute older than
// minID (past the retention) is only counted. Key names (id and alias) are
// set in T.."kn", with the batch's last minute in T.."knt" for their expiry.
var applyScript = redis.NewScript(`
local T = ARGV[1]
local ttl = ARGV[2]
local nd = tonumber(ARGV[3])
local dups = {}
for i = 1, nd do
  if redis.call('EXISTS', T .. 'd:' .. ARGV[3 + i]) == 1 then dups[#dups + 1] = i end
end
if #dups > 0 then
  table.insert(dups, 1, 1)
  return dups
end
for i = 1, nd do
  redis.call('SET', T .. 'd:' .. ARGV[3 + i], '1', 'PX', ttl)
end
local p = 4 + nd
local minid = tonumber(ARGV[p]); p = p + 1
local retention = tonumber(ARGV[p]); p = p + 1
local late = 0
local tot = KEYS[1]
local nt = tonumber(ARGV[p]); p = p + 1
for j = 1, nt do
  redis.call('HINCRBY', tot, ARGV[p], ARGV[p + 1]); p = p + 2
end
local closed = tonumber(redis.call('GET', T .. 'closed') or '-9007199254740992')
local nm = tonumber(ARGV[p]); p = p + 1
for j = 1, nm do
  local m = ARGV[p]; local reqs = tonumber(ARGV[p + 1]); local nf = tonumber(ARGV[p + 2]); p = p + 3
  local mn = tonumber(m)
  local hk = nil
  if mn > closed then
    hk = T .. 'm:' .. m
    redis.call('ZADD', T .. 'open', m, m)
  else
    late = late + reqs
    if mn >= minid then
      hk = T .. 'l:' .. m
      redis.call('ZADD', T .. 'late', m, m)
    end
  end
  if hk then
    for f = 1, nf do
      redis.call('HINCRBY', hk, ARGV[p], ARGV[p + 1]); p = p + 2
    end
    if mn <= closed then redis.call('PEXPIREAT', hk, string.format('%.0f', mn + retention)) end
  else
    p = p + 2 * nf
  end
end
if late > 0 then redis.call('HINCRBY', tot, 'late', late) end
local nn = tonumber(ARGV[p]); p = p + 1
if nn > 0 then
  local last = ARGV[p]; p = p + 1
  for j = 1, nn do
    redis.call('HSET', T .. 'kn', ARGV[p], ARGV[p + 1])
    redis.call('ZADD', T .. 'knt', last, ARGV[p]); p = p + 2
  end
end
return {0, late}
`)

// closeScript closes every open minute <= cutoff of one API, oldest first,
// exactly once: it moves each bucket to the streams (entry ID "<minute>-0",
// trimmed to MINID and expiring after the retention), removes the bucket and
// raises the watermark to cutoff. Concurrent callers are serialized by Redis;
// a minute already closed is no longer open, so it is never written twice.
//
// KEYS[1] = T.."open"
// ARGV: T, cutoff, minID (Unix ms), retention ms
// It returns {minute, {code, value, ...}, ...} with the API-level fields of
// each minute it closed.
var closeScript = redis.NewScript(`
local T = ARGV[1]
local cutoff = tonumber(ARGV[2])
local minid = ARGV[3]
local ttl = ARGV[4]
local closed = tonumber(redis.call('GET', T .. 'closed') or '-9007199254740992')
if cutoff > closed then redis.call('SET', T .. 'closed', ARGV[2]) end
local mins = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local out = {}
for _, m in ipairs(mins) do
  local hk = T .. 'm:' .. m
  local h = redis.call('HGETALL', hk)
  local groups, order = {}, {}
  for i = 1, #h, 2 do
    local f = h[i]
    local p1 = string.find(f, '|', 1, true)
    if p1 then
      local code = string.sub(f, 1, p1 - 1)
      local dim = string.sub(f, p1 + 1, p1 + 1)
      local name = string.sub(f, p1 + 3)
      local sk
      if dim == 'a' then sk = T .. 's'
      elseif dim == 'k' then sk = T .. 'k:' .. name
      elseif dim == 'e' then sk = T .. 'e:' .. name end
      if sk then
        local g = groups[sk]
        if not g then
          g = {}; groups[sk] = g; order[#order + 1] = sk
          if dim == 'k' then redis.call('ZADD', T .. 'keys', m, name)
          elseif dim == 'e' then redis.call('ZADD', T .. 'eps', m, name) end
        end
        g[#g + 1] = code; g[#g + 1] = h[i + 1]
      end
    end
  end
  for _, sk in ipairs(order) do
    redis.pcall('XADD', sk, 'MINID', '~', minid, m .. '-0', unpack(groups[sk]))
    redis.call('PEXPIRE', sk, ttl)
  end
  redis.call('DEL', hk)
  redis.call('ZREM', KEYS[1], m)
  out[#out + 1] = m
  out[#out + 1] = groups[T .. 's'] or {}
end
redis.call('ZREMRANGEBYSCORE', T .. 'late', '-inf', '(' .. minid)
redis.call('ZREMRANGEBYSCORE', T .. 'keys', '-inf', '(' .. minid)
redis.call('ZREMRANGEBYSCORE', T .. 'eps', '-inf', '(' .. minid)
local gone = redis.call('ZRANGEBYSCORE', T .. 'knt', '-inf', '(' .. minid)
for i = 1, #gone, 500 do
  redis.call('HDEL', T .. 'kn', unpack(gone, i, math.min(i + 499, #gone)))
end
redis.call('ZREMRANGEBYSCORE', T .. 'knt', '-inf', '(' .. minid)
return out
`)
