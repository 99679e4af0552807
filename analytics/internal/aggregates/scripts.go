package aggregates

import "github.com/redis/go-redis/v9"

// applyScript records the messages of one API in one fetched batch.
//
// KEYS[1] = T.."tot" (routes the call; every key used shares its tag)
// ARGV: T, dedupTTLms, nIDs, ids..., minID (Unix ms), retention ms,
//
//	hourly minID (Unix ms), hourly retention ms,
//	nTotals, (code, delta)..., nMinutes, then per minute: minute, requests,
//	nFields, (field, delta)... of the API and its endpoints, the key log
//	of the minute (keylog.go), then nNames, last minute (Unix ms),
//	(key hash, name JSON)...
//
// It returns {1, i...} with the 1-based positions of messages already
// recorded, changing nothing; or {0, late} after adding everything. A
// minute above the watermark goes to its open bucket, its keys to the
// minute's key log T.."mk:<minute>" (one APPEND). A minute at or below
// it is closed already: its events are late, counted in the "late" total
// and added to the minute's correction bucket T.."l:<minute>" (indexed in
// T.."late", expiring with the minute's retention), which the readers add
// to the closed minute, so series and totals agree. Late events are added
// to their hour as well: to its open hourly bucket T.."hm:<hour>" while
// the hour is open (one of its minutes is not closed), else to its hourly
// correction bucket T.."hl:<hour>" (indexed in T.."hlate", expiring with
// the hour's retention). A minute older than minID (past the retention) is
// only counted, and in its hour while the hour is within its retention. Key
// names (id and alias) are set in T.."kn", with the batch's last minute in
// T.."knt" for their expiry.
var applyScript = redis.NewScript(keyLogLua + `
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
local hminid = tonumber(ARGV[p]); p = p + 1
local hretention = tonumber(ARGV[p]); p = p + 1
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
  local hk, hh = nil, nil
  if mn > closed then
    hk = T .. 'm:' .. m
    redis.call('ZADD', T .. 'open', m, m)
  else
    late = late + reqs
    if mn >= minid then
      hk = T .. 'l:' .. m
      redis.call('ZADD', T .. 'late', m, m)
    end
    local hour = mn - (mn % 3600000)
    local hs = string.format('%.0f', hour)
    if hour + 3540000 > closed then
      hh = T .. 'hm:' .. hs
      redis.call('ZADD', T .. 'hopen', hs, hs)
    elseif hour >= hminid then
      hh = T .. 'hl:' .. hs
      redis.call('ZADD', T .. 'hlate', hs, hs)
    end
  end
  for f = 1, nf do
    if hk then redis.call('HINCRBY', hk, ARGV[p], ARGV[p + 1]) end
    if hh then redis.call('HINCRBY', hh, ARGV[p], ARGV[p + 1]) end
    p = p + 2
  end
  local klog = ARGV[p]; p = p + 1
  if mn > closed then
    if #klog > 0 then redis.call('APPEND', T .. 'mk:' .. m, klog) end
  elseif hk or hh then
    eachKey(klog, function(name, code, v)
      local f = code .. '|k|' .. name
      if hk then redis.call('HINCRBY', hk, f, v) end
      if hh then redis.call('HINCRBY', hh, f, v) end
    end)
  end
  if hk and mn <= closed then redis.call('PEXPIREAT', hk, string.format('%.0f', mn + retention)) end
  if hh and mn - (mn % 3600000) + 3540000 <= closed then
    redis.call('PEXPIREAT', hh, string.format('%.0f', mn - (mn % 3600000) + hretention))
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
// exactly once: it moves each bucket, and the sum of each key's records in
// the minute's key log, to the streams (entry ID "<minute>-0", trimmed to
// MINID and expiring after the retention), adds them to their hour's
// open bucket T.."hm:<hour>", removes it and raises the watermark to
// cutoff. Then it closes every hour whose last minute is now closed the
// same way: its bucket goes to the hourly streams (T.."H", T.."hk:<hash>",
// T.."he:<pattern>", entry ID "<hour>-0", trimmed to the hourly MINID and
// expiring after the hourly retention). Concurrent callers are serialized
// by Redis; a minute or an hour already closed is no longer open, so it is
// never written twice.
//
// A key with fewer than keyMin requests in a minute (keyMin > 1) gets no
// entry of its own in that minute: its counters are summed into the key
// stream T.."k:~other" (rollup.OtherKey); its hour keeps it exactly.
//
// KEYS[1] = T.."open"
// ARGV: T, cutoff, minID (Unix ms), retention ms, hourly minID, hourly retention ms, keyMin
// It returns {minute, {code, value, ...}, ...} with the API-level fields of
// each minute it closed.
var closeScript = redis.NewScript(keyLogLua + `
local T = ARGV[1]
local cutoff = tonumber(ARGV[2])
local minid = ARGV[3]
local ttl = ARGV[4]
local hminid = ARGV[5]
local httl = ARGV[6]
local kmin = tonumber(ARGV[7]) or 0
-- move turns bucket hk into one entry "<id>-0" per series: the API stream
-- s, the key streams kp..<hash> and the endpoint streams ep..<pattern>
-- (indexed in kidx and eidx); it returns the fields it moved and the API
-- fields. With addKey, key fields are handed to it instead (a minute
-- bucket written by a version without key logs).
local function move(hk, id, s, kp, ep, kidx, eidx, mid, exp, addKey)
  local h = redis.call('HGETALL', hk)
  local groups, order, moved = {}, {}, {}
  for i = 1, #h, 2 do
    local f = h[i]
    local p1 = string.find(f, '|', 1, true)
    if p1 then
      local code = string.sub(f, 1, p1 - 1)
      local dim = string.sub(f, p1 + 1, p1 + 1)
      local name = string.sub(f, p1 + 3)
      local sk
      if dim == 'a' then sk = s
      elseif dim == 'k' and addKey then addKey(name, code, h[i + 1])
      elseif dim == 'k' then sk = kp .. name
      elseif dim == 'e' then sk = ep .. name end
      if sk then
        moved[#moved + 1] = f; moved[#moved + 1] = h[i + 1]
        local g = groups[sk]
        if not g then
          g = {}; groups[sk] = g; order[#order + 1] = sk
          if dim == 'k' then redis.call('ZADD', kidx, id, name)
          elseif dim == 'e' then redis.call('ZADD', eidx, id, name) end
        end
        g[#g + 1] = code; g[#g + 1] = h[i + 1]
      end
    end
  end
  for _, sk in ipairs(order) do
    redis.pcall('XADD', sk, 'MINID', '~', mid, id .. '-0', unpack(groups[sk]))
    redis.call('PEXPIRE', sk, exp)
  end
  redis.call('DEL', hk)
  return moved, groups[s] or {}
end
local closed = tonumber(redis.call('GET', T .. 'closed') or '-9007199254740992')
if cutoff > closed then redis.call('SET', T .. 'closed', ARGV[2]) end
local mins = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local out = {}
for _, m in ipairs(mins) do
  local sums, order = {}, {}
  local function addKey(name, code, v)
    local t = sums[name]
    if not t then t = {}; sums[name] = t; order[#order + 1] = name end
    t[code] = (t[code] or 0) + tonumber(v)
  end
  local h, api = move(T .. 'm:' .. m, m, T .. 's', T .. 'k:', T .. 'e:', T .. 'keys', T .. 'eps', minid, ttl, addKey)
  local mn = tonumber(m)
  local hs = string.format('%.0f', mn - (mn % 3600000))
  local hb = T .. 'hm:' .. hs
  for i = 1, #h, 2 do redis.call('HINCRBY', hb, h[i], h[i + 1]) end
  local lk = T .. 'mk:' .. m
  eachKey(redis.call('GET', lk) or '', addKey)
  local other = nil
  local function entry(name, t)
    local sk = T .. 'k:' .. name
    local g = {}
    for code, v in pairs(t) do g[#g + 1] = code; g[#g + 1] = string.format('%.0f', v) end
    redis.call('ZADD', T .. 'keys', m, name)
    redis.pcall('XADD', sk, 'MINID', '~', minid, m .. '-0', unpack(g))
    redis.call('PEXPIRE', sk, ttl)
  end
  for _, name in ipairs(order) do
    local t = sums[name]
    for code, v in pairs(t) do redis.call('HINCRBY', hb, code .. '|k|' .. name, string.format('%.0f', v)) end
    if kmin > 1 and (t['n'] or 0) < kmin and name ~= '-' then
      other = other or {}
      for code, v in pairs(t) do other[code] = (other[code] or 0) + v end
    else
      entry(name, t)
    end
  end
  if other then entry('~other', other) end
  redis.call('DEL', lk)
  redis.call('ZADD', T .. 'hopen', hs, hs)
  redis.call('ZREM', KEYS[1], m)
  out[#out + 1] = m
  out[#out + 1] = api
end
local hours = redis.call('ZRANGEBYSCORE', T .. 'hopen', '-inf', string.format('%.0f', math.max(cutoff, closed) - 3540000))
for _, hs in ipairs(hours) do
  move(T .. 'hm:' .. hs, hs, T .. 'H', T .. 'hk:', T .. 'he:', T .. 'hkeys', T .. 'heps', hminid, httl)
  redis.call('ZREM', T .. 'hopen', hs)
end
redis.call('ZREMRANGEBYSCORE', T .. 'late', '-inf', '(' .. minid)
redis.call('ZREMRANGEBYSCORE', T .. 'keys', '-inf', '(' .. minid)
redis.call('ZREMRANGEBYSCORE', T .. 'eps', '-inf', '(' .. minid)
redis.call('ZREMRANGEBYSCORE', T .. 'hlate', '-inf', '(' .. hminid)
redis.call('ZREMRANGEBYSCORE', T .. 'hkeys', '-inf', '(' .. hminid)
redis.call('ZREMRANGEBYSCORE', T .. 'heps', '-inf', '(' .. hminid)
local gone = redis.call('ZRANGEBYSCORE', T .. 'knt', '-inf', '(' .. hminid)
for i = 1, #gone, 500 do
  redis.call('HDEL', T .. 'kn', unpack(gone, i, math.min(i + 499, #gone)))
end
redis.call('ZREMRANGEBYSCORE', T .. 'knt', '-inf', '(' .. hminid)
return out
`)

// keyLogLua defines eachKey(log, fn), which calls fn(hash, code, value)
// for every counter of every record of a key log (keylog.go).
const keyLogLua = `
local function eachKey(log, fn)
  local pos, n = 1, #log
  while pos <= n do
    local c = string.find(log, ':', pos, true)
    if not c then return end
    local len = tonumber(string.sub(log, pos, c - 1))
    local name = string.sub(log, c + 1, c + len)
    local e = string.find(log, '\n', c + len + 1, true)
    if not e then return end
    for code, v in string.gmatch(string.sub(log, c + len + 1, e - 1), '([%w_]+)=(%-?%d+)') do fn(name, code, v) end
    pos = e + 1
  end
end
`
