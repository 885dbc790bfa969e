-- apply.lua: apply one stream record to one cache key, only if it is newer.
--
-- KEYS[1]  the cache key (streamcache.keys.cache_key)
-- ARGV[1]  kind to write: "I" item, "T" tombstone (not found), "X" invalidation
-- ARGV[2]  the record's SequenceNumber, zero-padded to 40 digits
-- ARGV[3]  payload: the item's typed JSON for "I", empty otherwise
-- ARGV[4]  expiry in seconds
--
-- Returns 1 written, 0 skipped (the key already holds this version or a newer one),
-- 2 invalidated instead (the key held a reader fill "F" of unknown age, which may
-- be newer than this record: writing the record's image could step the cache back).
--
-- Any write replaces a reader's lease "L", so a fill that raced it is rejected.
-- Versions are compared as fixed-width strings: Lua numbers are doubles and would
-- round a 40-digit sequence number.
local head = redis.call("GETRANGE", KEYS[1], 0, 40)
if #head == 41 then
  if ARGV[2] <= string.sub(head, 2, 41) then
    return 0
  end
  if string.sub(head, 1, 1) == "F" then
    redis.call("SET", KEYS[1], "X" .. ARGV[2], "EX", ARGV[4])
    return 2
  end
end
redis.call("SET", KEYS[1], ARGV[1] .. ARGV[2] .. ARGV[3], "EX", ARGV[4])
return 1
