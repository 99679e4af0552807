package store

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrPrecondition = errors.New("precondition failed: the object changed")
	// ErrRouteTaken: an API would listen where another one does.
	ErrRouteTaken = errors.New("listen path taken by another API")
	// ErrDanglingRef: a put names an object (Change.Refs) that does not
	// exist.
	ErrDanglingRef = errors.New("refers to a missing object")
	// ErrInUse: an API delete (Change.IfUnused) while a policy grants it.
	ErrInUse = errors.New("still in use")
)

// DefaultChangelogLen is how many changes the changelog keeps by default.
const DefaultChangelogLen = 10000

// Store reads and writes configuration in Redis.
type Store struct {
	rdb          redis.UniversalClient
	layout       Layout
	changelogLen int64
	auditLen     int64
}

// New returns a Store of the default namespace over rdb keeping
// changelogLen changes (0: default) and DefaultAuditLen audit entries (see
// SetAuditLength).
func New(rdb redis.UniversalClient, changelogLen int64) *Store {
	return NewIn(Layout{}, rdb, changelogLen)
}

// NewIn returns a Store of the environment whose keys l names.
func NewIn(l Layout, rdb redis.UniversalClient, changelogLen int64) *Store {
	if changelogLen <= 0 {
		changelogLen = DefaultChangelogLen
	}
	return &Store{rdb: rdb, layout: l, changelogLen: changelogLen, auditLen: DefaultAuditLen}
}

// Client returns the underlying Redis client. The configuration is read
// and written through the Store's methods, which alone know its layout;
// Client is for what is not configuration, and for tests that inspect or
// damage the raw keys.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Layout returns the key names of the Store's environment.
func (s *Store) Layout() Layout { return s.layout }

// Change is one write. For keys, ID is the key id and Hash the key's hash;
// OldHash, on rotation, names the hash that stops working.
type Change struct {
	Kind    string
	Op      string
	ID      string
	Hash    string
	OldHash string
	Body    []byte
	// IfMatch, when set, is the ETag the current object must have.
	IfMatch string
	// Create refuses the write when the object already exists.
	Create bool
	// Refs, on a put, names the objects the body refers to: the write is
	// refused (ErrDanglingRef) unless each exists, counting the changes
	// before this one in the same Apply. PolicyRefs and KeyRefs list them.
	Refs []Ref
	// IfUnused, on an API delete, refuses it (ErrInUse) while a stored
	// policy grants the API; on an org delete, while a key names the org.
	IfUnused bool
}

// Ref names an object another one refers to.
type Ref struct{ Kind, ID string }

// PolicyRefs returns the APIs a policy grants.
func PolicyRefs(p *model.Policy) []Ref {
	return accessRefs(nil, p.Access)
}

// KeyRefs returns the policies a key holds, its org and the APIs its own
// access grants.
func KeyRefs(k *model.Key) []Ref {
	refs := make([]Ref, 0, len(k.Policies)+len(k.Access)+1)
	for _, p := range k.Policies {
		refs = append(refs, Ref{KindPolicy, p})
	}
	if k.Org != "" {
		refs = append(refs, Ref{KindOrg, k.Org})
	}
	return accessRefs(refs, k.Access)
}

func accessRefs(refs []Ref, access []model.AccessRight) []Ref {
	for _, a := range access {
		refs = append(refs, Ref{KindAPI, a.API})
	}
	return refs
}

// ETag returns the entity tag of a stored body.
func ETag(body []byte) string {
	sum := sha1.Sum(body)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// applyScript writes all changes or none. KEYS: version, changelog, apis,
// policies, keys, keyids, routes, apiroutes, audit, orgs, orgkeys. ARGV: maxlen, n, then 11
// fields per change: kind op id hash oldhash body ifmatch(sha1 hex or "")
// create("1"/"") refs(JSON ["kind","id",...] or "") routes(JSON array of
// the API's route keys, for an API put) unused("1"/""); then actor, the
// audit stream's maxlen, the apply id and the writer's traceparent ("" when
// its context carries no span).
//
// The changelog entry holds n, the apply id, the traceparent when there is
// one (tp), and kindI, opI, idI, hashI, oldI per change;
// a batch of more than 700 changes holds n and changes, a JSON array of
// [kind, op, id, hash, old] (a Lua call takes at most 8000 arguments).
//
// A first pass checks every change against the stored state as the changes
// before it leave it (the overlay tables), writing nothing; the second pass
// writes. The cross-object rules live here, inside the one atomic write,
// so any number of concurrent writers cannot break them together:
//   - an API's route keys (model.API.RouteKeys) belong to no other API: the
//     routes hash indexes route key -> API id, apiroutes API id -> its keys;
//   - every Ref of a put exists;
//   - an API deleted with IfUnused is granted by no policy;
//   - an org deleted with IfUnused is named by no key: orgkeys counts the
//     keys naming each org, kept here on every key write.
//
// The route index is kept for every API; when it does not cover the apis
// hash (data written before it existed) the script answers NOINDEX and
// Apply builds it (buildRouteIndex) and retries.
var applyScript = redis.NewScript(`
local F = 11
local n = tonumber(ARGV[2])
-- The same call sent again (the client retries a script whose answer timed
-- out, though Redis ran it) answers the version it wrote, writing nothing.
local aid = ARGV[5 + n * F]
if aid and aid ~= '' then
  for _, e in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 32)) do
    local f = e[2]
    for j = 1, #f - 1, 2 do
      if f[j] == 'apply' and f[j+1] == aid then
        return tonumber((string.gsub(e[1], '%-0$', '')))
      end
    end
  end
end
local function hkey(kind)
  if kind == 'api' then return KEYS[3] elseif kind == 'policy' then return KEYS[4] end
  if kind == 'org' then return KEYS[10] end
  return KEYS[5]
end
local function current(kind, id)
  if kind == 'key' then
    local h = redis.call('HGET', KEYS[6], id)
    if not h then return false, false end
    return redis.call('HGET', KEYS[5], h), h
  end
  return redis.call('HGET', hkey(kind), id), false
end
for i = 0, n - 1 do
  if ARGV[3 + i * F] == 'api' and redis.call('HLEN', KEYS[3]) ~= redis.call('HLEN', KEYS[8]) then
    return redis.error_reply('NOINDEX route index incomplete')
  end
end
local exists_ov, owner_ov, routes_ov, grants_ov = {}, {}, {}, {}
local function exists(kind, id)
  local v = exists_ov[kind .. ' ' .. id]
  if v ~= nil then return v end
  if kind == 'key' then return redis.call('HEXISTS', KEYS[6], id) == 1 end
  if kind ~= 'api' and kind ~= 'policy' and kind ~= 'org' then return false end
  return redis.call('HEXISTS', hkey(kind), id) == 1
end
local function owner(rk)
  local v = owner_ov[rk]
  if v ~= nil then return v end
  return redis.call('HGET', KEYS[7], rk)
end
local function routes_of(id)
  local v = routes_ov[id]
  if v ~= nil then return v end
  local s = redis.call('HGET', KEYS[8], id)
  if not s then return {} end
  return cjson.decode(s)
end
local function access_set(body)
  local set = {}
  local ok, p = pcall(cjson.decode, body)
  if not ok or type(p) ~= 'table' or type(p.access) ~= 'table' then return set end
  for _, a in ipairs(p.access) do
    if type(a) == 'table' and type(a.api) == 'string' then set[a.api] = true end
  end
  return set
end
local function org_of(body)
  if not body then return '' end
  local ok, k = pcall(cjson.decode, body)
  if ok and type(k) == 'table' and type(k.org) == 'string' then return k.org end
  return ''
end
local keyorg_ov, members_ov = {}, {}
local function members(org)
  local v = members_ov[org]
  if v == nil then v = tonumber(redis.call('HGET', KEYS[11], org) or '0') end
  return v
end
local function count_org(org, d)
  if org ~= '' then members_ov[org] = members(org) + d end
end
local function users(api)
  local out = {}
  for pid, g in pairs(grants_ov) do
    if g and g[api] then table.insert(out, pid) end
  end
  local all = redis.call('HGETALL', KEYS[4])
  local needle = '"api":"' .. api .. '"'
  for j = 1, #all, 2 do
    local pid, body = all[j], all[j+1]
    if grants_ov[pid] == nil and string.find(body, needle, 1, true) and access_set(body)[api] then
      table.insert(out, pid)
    end
  end
  table.sort(out)
  return out
end
for i = 0, n - 1 do
  local b = 3 + i * F
  local kind, op, id = ARGV[b], ARGV[b+1], ARGV[b+2]
  local cur = current(kind, id)
  if op == 'delete' and not cur then return redis.error_reply('NOTFOUND ' .. kind .. ' ' .. id) end
  if ARGV[b+7] == '1' and cur then return redis.error_reply('EXISTS ' .. kind .. ' ' .. id) end
  if kind == 'key' and op == 'put' then
    local owner = redis.call('HGET', KEYS[5], ARGV[b+3])
    if owner and redis.call('HGET', KEYS[6], id) ~= ARGV[b+3] then
      return redis.error_reply('EXISTS key value already used by another key')
    end
  end
  if ARGV[b+6] ~= '' then
    if not cur then return redis.error_reply('NOTFOUND ' .. kind .. ' ' .. id) end
    if redis.sha1hex(cur) ~= ARGV[b+6] then return redis.error_reply('PRECONDITION ' .. kind .. ' ' .. id) end
  end
  if op == 'put' and ARGV[b+8] ~= '' then
    local refs = cjson.decode(ARGV[b+8])
    for j = 1, #refs, 2 do
      if not exists(refs[j], refs[j+1]) then
        return redis.error_reply('DANGLING ' .. kind .. ' ' .. id .. ' names ' .. refs[j] .. ' ' .. refs[j+1] .. ', which does not exist')
      end
    end
  end
  if kind == 'policy' then
    grants_ov[id] = op == 'put' and access_set(ARGV[b+5]) or false
  end
  if kind == 'key' then
    local old = keyorg_ov[id]
    if old == nil then old = org_of(cur) end
    local new = ''
    if op == 'put' then new = org_of(ARGV[b+5]) end
    count_org(old, -1) count_org(new, 1)
    keyorg_ov[id] = new
  end
  if kind == 'org' and op == 'delete' and ARGV[b+10] == '1' and members(id) > 0 then
    return redis.error_reply('INUSE org ' .. id .. ' is named by ' .. members(id) .. ' keys')
  end
  if kind == 'api' then
    if op == 'delete' and ARGV[b+10] == '1' then
      local u = users(id)
      if #u > 0 then return redis.error_reply('INUSE api ' .. id .. ' is granted by policies ' .. table.concat(u, ', ')) end
    end
    for _, rk in ipairs(routes_of(id)) do
      if owner(rk) == id then owner_ov[rk] = false end
    end
    local new = {}
    if op == 'put' and ARGV[b+9] ~= '' then new = cjson.decode(ARGV[b+9]) end
    for _, rk in ipairs(new) do
      local o = owner(rk)
      if o and o ~= id then
        return redis.error_reply('ROUTETAKEN api ' .. id .. ' and api ' .. o .. ' both listen on ' .. rk)
      end
      owner_ov[rk] = id
    end
    routes_ov[id] = new
  end
  exists_ov[kind .. ' ' .. id] = op == 'put'
end
local v = redis.call('INCR', KEYS[1])
local log = {}
local audit = {'version', tostring(v), 'actor', ARGV[3 + n * F], 'n', tostring(n)}
for i = 0, n - 1 do
  local b = 3 + i * F
  local kind, op, id, hash, old, body = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4], ARGV[b+5]
  local before = current(kind, id)
  local after = ''
  if op == 'put' then after = redis.sha1hex(body) end
  if before then before = redis.sha1hex(before) else before = '' end
  for _, kv in ipairs({{'kind', kind}, {'op', op}, {'id', id}, {'before', before}, {'after', after}}) do
    table.insert(audit, kv[1] .. i) table.insert(audit, kv[2])
  end
  if kind == 'key' then
    local prevbody, prev = current(kind, id)
    local oorg, norg = org_of(prevbody), ''
    if op == 'put' then norg = org_of(body) end
    if oorg ~= norg then
      if oorg ~= '' and redis.call('HINCRBY', KEYS[11], oorg, -1) <= 0 then redis.call('HDEL', KEYS[11], oorg) end
      if norg ~= '' then redis.call('HINCRBY', KEYS[11], norg, 1) end
    end
    if prev and (op == 'delete' or prev ~= hash) then
      redis.call('HDEL', KEYS[5], prev)
      if old == '' then old = prev end
    end
    if op == 'delete' then
      redis.call('HDEL', KEYS[6], id)
      hash = prev
    else
      redis.call('HSET', KEYS[5], hash, body)
      redis.call('HSET', KEYS[6], id, hash)
    end
  elseif op == 'delete' then
    redis.call('HDEL', hkey(kind), id)
  else
    redis.call('HSET', hkey(kind), id, body)
  end
  if kind == 'api' then
    local prev = redis.call('HGET', KEYS[8], id)
    if prev then
      for _, rk in ipairs(cjson.decode(prev)) do
        if redis.call('HGET', KEYS[7], rk) == id then redis.call('HDEL', KEYS[7], rk) end
      end
    end
    if op == 'delete' then
      redis.call('HDEL', KEYS[8], id)
    else
      local rs = ARGV[b+9]
      if rs == '' then rs = '[]' end
      for _, rk in ipairs(cjson.decode(rs)) do redis.call('HSET', KEYS[7], rk, id) end
      redis.call('HSET', KEYS[8], id, rs)
    end
  end
  table.insert(log, kind) table.insert(log, op) table.insert(log, id)
  table.insert(log, hash or '') table.insert(log, old or '')
end
local fields = {'n', tostring(n)}
if aid and aid ~= '' then
  table.insert(fields, 'apply') table.insert(fields, aid)
end
local tp = ARGV[6 + n * F]
if tp and tp ~= '' then
  table.insert(fields, 'tp') table.insert(fields, tp)
end
if n > 700 then
  -- A Lua call takes at most 8000 arguments: a large batch is logged as
  -- one JSON array of [kind, op, id, hash, old] in the field 'changes'.
  local packed = {}
  for i = 1, #log, 5 do
    table.insert(packed, {log[i], log[i+1], log[i+2], log[i+3], log[i+4]})
  end
  table.insert(fields, 'changes') table.insert(fields, cjson.encode(packed))
  log = {}
end
for i = 1, #log, 5 do
  local j = (i - 1) / 5
  table.insert(fields, 'kind' .. j) table.insert(fields, log[i])
  table.insert(fields, 'op' .. j) table.insert(fields, log[i+1])
  table.insert(fields, 'id' .. j) table.insert(fields, log[i+2])
  table.insert(fields, 'hash' .. j) table.insert(fields, log[i+3])
  table.insert(fields, 'old' .. j) table.insert(fields, log[i+4])
end
if n > 700 then
  -- The audit entry too: [kind, op, id, before, after] per change, packed.
  local packed = {}
  for i = 7, #audit, 10 do
    table.insert(packed, {audit[i+1], audit[i+3], audit[i+5], audit[i+7], audit[i+9]})
  end
  audit = {audit[1], audit[2], audit[3], audit[4], audit[5], audit[6], 'changes', cjson.encode(packed)}
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], v .. '-0', unpack(fields))
redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[4 + n * F], '*', unpack(audit))
return v
`)

// Apply writes every change and bumps the config version, atomically: all
// or nothing. It returns the new version. Besides the sentinels of the
// single-object rules (ErrNotFound, ErrExists, ErrPrecondition) it returns
// ErrRouteTaken, ErrDanglingRef and ErrInUse for the cross-object ones,
// checked inside the same atomic write. The audit entry names the actor
// SystemActor; see ApplyAs.
func (s *Store) Apply(ctx context.Context, changes ...Change) (int64, error) {
	return s.ApplyAs(ctx, "", changes...)
}

// ApplyAs is Apply recording actor (SystemActor when empty) in the audit
// entry the same script appends (see audit.go): a write and its audit entry
// are both stored or neither is.
func (s *Store) ApplyAs(ctx context.Context, actor string, changes ...Change) (int64, error) {
	if len(changes) == 0 {
		return 0, errors.New("store: no changes")
	}
	args, err := applyArgs(s.changelogLen, changes)
	if err != nil {
		return 0, err
	}
	if actor == "" {
		actor = SystemActor
	}
	// A unique id of this call: go-redis sends a command again when its
	// answer times out, and Redis may have run the script already (a large
	// apply on a busy server); the script answers the id's version instead
	// of applying twice (and failing its own preconditions).
	var aid [16]byte
	if _, err := rand.Read(aid[:]); err != nil {
		return 0, fmt.Errorf("store: apply id: %w", err)
	}
	args = append(args, actor, s.auditLen, hex.EncodeToString(aid[:]), tracing.TraceParent(ctx))
	l := s.layout
	keys := []string{l.Version(), l.Changelog(), l.APIs(), l.Policies(), l.Keys(), l.KeyIDs(), l.Routes(), l.APIRoutes(), l.Audit(), l.Orgs(), l.OrgKeys()}
	for attempt := 0; ; attempt++ {
		v, err := applyScript.Run(ctx, s.rdb, keys, args...).Int64()
		if err == nil {
			return v, nil
		}
		if strings.HasPrefix(err.Error(), "NOINDEX") && attempt < 3 {
			if err := s.buildRouteIndex(ctx); err != nil {
				return 0, err
			}
			continue
		}
		return 0, applyError(err)
	}
}

func applyArgs(changelogLen int64, changes []Change) ([]any, error) {
	args := make([]any, 0, 2+11*len(changes))
	args = append(args, changelogLen, len(changes))
	for _, c := range changes {
		ifm := strings.Trim(c.IfMatch, `"`)
		if strings.HasPrefix(c.IfMatch, "W/") {
			ifm = strings.Trim(c.IfMatch[2:], `"`)
		}
		refs, routes := "", ""
		if len(c.Refs) > 0 {
			flat := make([]string, 0, 2*len(c.Refs))
			for _, r := range c.Refs {
				flat = append(flat, r.Kind, r.ID)
			}
			b, err := json.Marshal(flat)
			if err != nil {
				return nil, fmt.Errorf("store: refs: %w", err)
			}
			refs = string(b)
		}
		if c.Kind == KindAPI && c.Op == OpPut {
			routes = routeKeysJSON(c.Body)
		}
		args = append(args, c.Kind, c.Op, c.ID, c.Hash, c.OldHash, c.Body, ifm, flag(c.Create), refs, routes, flag(c.IfUnused))
	}
	return args, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// routeKeysJSON returns the route keys of an API body as a JSON array
// ("[]" when the body is not an API: such an API is never served).
func routeKeysJSON(body []byte) string {
	var a model.API
	keys := []string{}
	if json.Unmarshal(body, &a) == nil {
		keys = a.RouteKeys()
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

// applyError maps the script's error replies to the sentinel errors.
func applyError(err error) error {
	msg := err.Error()
	for _, e := range []struct {
		prefix   string
		sentinel error
	}{
		{"NOTFOUND ", ErrNotFound}, {"EXISTS ", ErrExists}, {"PRECONDITION ", ErrPrecondition},
		{"ROUTETAKEN ", ErrRouteTaken}, {"DANGLING ", ErrDanglingRef}, {"INUSE ", ErrInUse},
	} {
		if rest, ok := strings.CutPrefix(msg, e.prefix); ok {
			return fmt.Errorf("%s: %w", rest, e.sentinel)
		}
	}
	return fmt.Errorf("store: apply: %w", err)
}

// Version returns the current config version (0 when nothing was written).
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, s.layout.Version()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

// Entry is one object change in the changelog.
type Entry struct {
	Kind, Op, ID string
	// Hash and OldHash are set for keys: the hash written (or deleted) and,
	// on rotation, the hash that stopped working.
	Hash, OldHash string
}

// Version is one config version and the changes it made.
type Version struct {
	Version int64
	Changes []Entry
	// TraceParent is the W3C traceparent of the write's span ("" when it
	// was traced by nobody): a node that applies the version through
	// catch-up joins the admin call's trace with it. It is read from
	// Redis: parse it with tracing.SpanContextOf, which refuses a
	// malformed one.
	TraceParent string
}

// ErrChangelogGap means the changelog no longer reaches back to the version
// asked for: reload the full snapshot.
var ErrChangelogGap = errors.New("changelog does not reach back far enough")

// ChangesSince returns every version after since, in order, up to limit
// versions (0: all). It returns ErrChangelogGap when versions after since
// were trimmed away.
func (s *Store) ChangesSince(ctx context.Context, since int64, limit int64) ([]Version, error) {
	start := strconv.FormatInt(since+1, 10) + "-0"
	// The changelog and the version are read in one transaction: read apart,
	// a write landing between them would look like a trimmed changelog.
	var rng *redis.XMessageSliceCmd
	var ver *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if limit > 0 {
			rng = p.XRangeN(ctx, s.layout.Changelog(), start, "+", limit)
		} else {
			rng = p.XRange(ctx, s.layout.Changelog(), start, "+")
		}
		ver = p.Get(ctx, s.layout.Version())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: changelog: %w", err)
	}
	msgs := rng.Val()
	out := make([]Version, 0, len(msgs))
	next := since + 1
	for _, m := range msgs {
		v, _ := strconv.ParseInt(strings.TrimSuffix(m.ID, "-0"), 10, 64)
		if v != next {
			return nil, fmt.Errorf("version %d missing: %w", next, ErrChangelogGap)
		}
		next++
		out = append(out, parseVersion(v, m.Values))
	}
	if len(msgs) == 0 {
		cur, _ := ver.Int64() // 0 when nothing was ever written
		if cur > since {
			return nil, fmt.Errorf("version %d missing: %w", since+1, ErrChangelogGap)
		}
	}
	return out, nil
}

func parseVersion(v int64, vals map[string]any) Version {
	str := func(k string) string { s, _ := vals[k].(string); return s }
	n, _ := strconv.Atoi(str("n"))
	ver := Version{Version: v, Changes: make([]Entry, 0, n), TraceParent: str("tp")}
	if packed := str("changes"); packed != "" {
		var rows [][5]string
		_ = json.Unmarshal([]byte(packed), &rows)
		for _, r := range rows {
			ver.Changes = append(ver.Changes, Entry{Kind: r[0], Op: r[1], ID: r[2], Hash: r[3], OldHash: r[4]})
		}
		return ver
	}
	for i := 0; i < n; i++ {
		j := strconv.Itoa(i)
		ver.Changes = append(ver.Changes, Entry{
			Kind: str("kind" + j), Op: str("op" + j), ID: str("id" + j),
			Hash: str("hash" + j), OldHash: str("old" + j),
		})
	}
	return ver
}
