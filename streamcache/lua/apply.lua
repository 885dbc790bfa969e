-- apply.lua: apply one stream record to one cache key, only if it is newer.
--
-- KEYS[1]  the cache key (streamcache.keys.cache_key)
-- ARGV[1]  kind to write: "I" item, "T" tombstone (not found), "X" invalidation
-- ARGV[2]  the record's SequenceNumber, zero-padded to 40 digits
-- ARGV[3]  payload: the item's typed JSON for "I", empty otherwise
-- ARGV[4]  expiry in seconds
--
-- Returns 1 written, 0 skipped (the key already holds this version or a newer one),
-- 2 invalidated instead (the key is "reader-filled", see below).
--
-- Reader-filled keys: a reader fill "F" shows DynamoDB as of its read, which may be
-- newer than records the stream has not delivered yet; nothing says which. Writing
-- such a record's image would step the cache back (F(state 7) -> I(state 6)), and so
-- would writing it after a first record turned the F into an X (F(7) -> X(5) -> I(6)).
-- So a record meeting an F, or an X / lease descended from one (marked by an "F"
-- right after the version: "X" .. version .. "F", "L" .. version .. "F" .. token),
-- writes the marked invalidation "X" .. version .. "F": the key stays invalidate-only,
-- and readers fill it, until it expires. Found by tests/consistency.
--
-- Any write replaces a reader's lease "L", so a fill that raced it is rejected.
-- Versions are compared as fixed-width strings: Lua numbers are doubles and would
-- round a 40-digit sequence number.
local head = redis.call("GETRANGE", KEYS[1], 0, 41)
if #head >= 41 then
  if ARGV[2] <= string.sub(head, 2, 41) then
    return 0
  end
  local kind = string.sub(head, 1, 1)
  if kind == "F" or (string.sub(head, 42, 42) == "F" and (kind == "X" or kind == "L")) then
    redis.call("SET", KEYS[1], "X" .. ARGV[2] .. "F", "EX", ARGV[4])
    return 2
  end
end
redis.call("SET", KEYS[1], ARGV[1] .. ARGV[2] .. ARGV[3], "EX", ARGV[4])
return 1
