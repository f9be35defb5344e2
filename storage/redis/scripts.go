package redis

import goredis "github.com/redis/go-redis/v9"

// The registry writes are Lua scripts: each runs atomically on the node that owns the
// registry's hash tag, so a record and its index entries never disagree, and a check and
// the write it guards cannot interleave with another node's.
//
// Every write stores a random write_id. A script that finds its own write_id already there
// reports success: go-redis may resend a command whose reply was lost, and the resent write
// must not turn into ErrExists or ErrConflict for a write that in fact happened.

// createScript: KEYS reg, software index, org index; ARGV client_id, software_id, org_id,
// record, write_id. Returns 1 when created, 0 when the client_id is taken.
var createScript = goredis.NewScript(`
local wid = redis.call('HGET', KEYS[1], 'write_id')
if wid then
  if wid == ARGV[5] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'version', '1', 'software_id', ARGV[2], 'org_id', ARGV[3], 'record', ARGV[4], 'write_id', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
`)

// Results of updateScript and deleteScript besides success.
const (
	scriptNotFound = -1
	scriptConflict = -2
)

// updateScript: KEYS reg, old software index, old org index, new software index, new org
// index; ARGV client_id, expected version, software_id, org_id, record, write_id. Returns the
// new version, scriptNotFound or scriptConflict. The old index keys come from a read of the
// same version: every write changes the version, so a matching version proves they are
// still the record's.
var updateScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'deleted_at', 'write_id')
if not cur[1] then return -1 end
if cur[3] == ARGV[6] then return tonumber(cur[1]) end
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
return v
`)

// deleteScript: KEYS reg, software index, org index; ARGV client_id, expected version,
// deleted_at, write_id. Returns 1, scriptNotFound or scriptConflict. The record stays as a
// tombstone so that its client_id is never issued again.
var deleteScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'version', 'deleted_at', 'write_id')
if not cur[1] then return -1 end
if cur[3] == ARGV[4] then return 1 end
if cur[2] then return -1 end
if cur[1] ~= ARGV[2] then return -2 end
redis.call('HSET', KEYS[1], 'deleted_at', ARGV[3], 'write_id', ARGV[4])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`)

// discardScript undoes a Create that the replicas did not acknowledge, if the record is still
// exactly that Create (nobody else knows a client_id before its 201). KEYS reg, software
// index, org index; ARGV client_id, write_id. Returns 1 when it removed the record.
var discardScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'write_id') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`)
