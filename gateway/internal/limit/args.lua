-- Prepended to check.lua and adjust.lua (limit.go): ARGV[1] is a packed
-- array of little-endian doubles (the numeric arguments, in order); ARGS
-- is that array as a Lua table.
-- struct.unpack returns its values on the Lua stack: at most 200 at a time.
local ARGS
local nv = #ARGV[1] / 8
if nv <= 200 then
  ARGS = {struct.unpack('<' .. string.rep('d', nv), ARGV[1])}
else
  ARGS = {}
  local full = '<' .. string.rep('d', 200)
  local n, pos = 0, 1
  while n < nv do
    local c, f = nv - n, full
    if c < 200 then f = '<' .. string.rep('d', c) else c = 200 end
    local vs = {struct.unpack(f, ARGV[1], pos)}
    for i = 1, c do ARGS[n + i] = vs[i] end
    n, pos = n + c, vs[c + 1]
  end
end
