-- fill.lua: store what a reader read from DynamoDB, only if its lease still stands.
--
-- KEYS[1]  the cache key
-- ARGV[1]  the lease value the reader was granted by lease.lua
-- ARGV[2]  payload: the item's typed JSON, empty for "not found"
-- ARGV[3]  expiry in seconds
--
-- Returns 1 filled, 0 rejected: the lease is gone because the invalidator wrote
-- the key after the reader's DynamoDB read began, so the read may be stale.
-- The lease may be stored with apply.lua's reader-filled mark ("L" .. version ..
-- "F" .. token) while the reader holds it unmarked: both forms are its lease.
-- The fill "F" keeps the lease's version: the reader cannot know which stream
-- record its read reflects.
local current = redis.call("GET", KEYS[1])
local lease = ARGV[1]
if current ~= lease and current ~= string.sub(lease, 1, 41) .. "F" .. string.sub(lease, 42) then
  return 0
end
redis.call("SET", KEYS[1], "F" .. string.sub(lease, 2, 41) .. ARGV[2], "EX", ARGV[3])
return 1
