package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The registry writes are Lua scripts: each runs atomically on the node that owns the
// registry's hash tag, so a record and its index entries never disagree, and a check and
// the write it guards cannot interleave with another node's.
//
// Every write stores a random write_id. A script that finds its own write_id already there
// reports success: go-redis may resend a command whose reply was lost, and the resent write
// must not turn into ErrExists or ErrConflict for a write that in fact happened.

// A write's dcr.Commit follows the script's own KEYS and ARGV (see withCommit): KEYS the
// client's history, then the one-time keys; ARGV the history entry ("" for none), its max
// events, cutoff stamp and max age (ms), then each one-time key's ttl (ms). A script checks
// every one-time key before it writes anything and answers scriptOnceUsed-i for the i-th
// (1-based) that is taken; else it writes them, and the history entry, with the record.
const scriptOnceUsed = -100

// withCommit is a script's Lua with the commit functions used_once() and write_commit() in
// front; nkeys and nargs are the script's own KEYS and ARGV counts.
func withCommit(nkeys, nargs string, body string) *goredis.Script {
	lua := strings.NewReplacer("NK", nkeys, "NA", nargs).Replace(`
local function used_once()
  for i = NK + 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then return i - NK - 1 end
  end
  return 0
end
local function write_commit()
  if #KEYS <= NK then return end
  for i = NK + 2, #KEYS do
    redis.call('SET', KEYS[i], '1', 'PX', ARGV[NA + 5 + i - NK - 2])
  end
  local h = KEYS[NK + 1]
  if ARGV[NA + 1] == '' then return end
  redis.call('RPUSH', h, ARGV[NA + 1])
  redis.call('LTRIM', h, -tonumber(ARGV[NA + 2]), -1)
  while true do
    local head = redis.call('LINDEX', h, 0)
    if not head or string.sub(head, 1, 20) >= ARGV[NA + 3] then break end
    redis.call('LPOP', h)
  end
  redis.call('PEXPIRE', h, ARGV[NA + 4])
end
`)
	return goredis.NewScript(lua + body)
}

// createScript: KEYS reg, software index, org index; ARGV client_id, software_id, org_id,
// record, write_id; then the commit. Returns 1 when created, 0 when the client_id is taken,
// scriptOnceUsed-i when a one-time key is.
var createScript = withCommit("3", "5", `
local wid = redis.call('HGET', KEYS[1], 'write_id')
if wid then
  if wid == ARGV[5] then return 1 end
  return 0
end
local used = used_once()
if used > 0 then return -100 - used end
redis.call('HSET', KEYS[1], 'version', '1', 'software_id', ARGV[2], 'org_id', ARGV[3], 'record', ARGV[4], 'write_id', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
write_commit()
return 1
`)

// Results of updateScript and deleteScript besides success.
const (
	scriptNotFound = -1
	scriptConflict = -2
)

// updateScript: KEYS reg, old software index, old org index, new software index, new org
// index; ARGV client_id, expected version, software_id, org_id, record, write_id; then the
// commit. Returns the new version, scriptNotFound, scriptConflict or scriptOnceUsed-i. The
// old index keys come from a read of the same version: every write changes the version, so
// a matching version proves they are still the record's.
var updateScript = withCommit("5", "6", `
local cur = redis.call('HMGET', KEYS[1], 'version', 'deleted_at', 'write_id')
if not cur[1] then return -1 end
if cur[3] == ARGV[6] then return tonumber(cur[1]) end
local used = used_once()
if used > 0 then return -100 - used end
if cur[2] then return -1 end
if cur[1] ~= ARGV[2] then return -2 end
local v = tonumber(cur[1]) + 1
redis.call('HSET', KEYS[1], 'version', tostring(v), 'software_id', ARGV[3], 'org_id', ARGV[4], 'record', ARGV[5], 'write_id', ARGV[6])
if KEYS[2] ~= KEYS[4] then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[1])
end
if KEYS[3] ~= KEYS[5] then
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[1])
end
write_commit()
return v
`)

// deleteScript: KEYS reg, software index, org index; ARGV client_id, expected version,
// deleted_at, write_id; then the commit. Returns 1, scriptNotFound, scriptConflict or
// scriptOnceUsed-i. The record stays as a tombstone so that its client_id is never issued
// again.
var deleteScript = withCommit("3", "4", `
local cur = redis.call('HMGET', KEYS[1], 'version', 'deleted_at', 'write_id')
if not cur[1] then return -1 end
if cur[3] == ARGV[4] then return 1 end
local used = used_once()
if used > 0 then return -100 - used end
if cur[2] then return -1 end
if cur[1] ~= ARGV[2] then return -2 end
redis.call('HSET', KEYS[1], 'deleted_at', ARGV[3], 'write_id', ARGV[4])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
write_commit()
return 1
`)

// discardScript undoes a Create that the replicas did not acknowledge, if the record is still
// exactly that Create (nobody else knows a client_id before its 201), with its commit: the
// one-time keys are given back and the history entry removed. KEYS reg, software index, org
// index, then the commit's keys; ARGV client_id, write_id, then the history entry. Returns 1
// when it removed the record.
var discardScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'write_id') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
if #KEYS >= 4 and ARGV[3] and ARGV[3] ~= '' then redis.call('LREM', KEYS[4], 1, ARGV[3]) end
return 1
`)
