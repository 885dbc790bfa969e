-- fill.lua: store what a reader read from DynamoDB, only if its lease still stands.
--
-- KEYS[1]  the cache key
-- ARGV[1]  the lease value the reader was granted by lease.lua ("L" .. version .. token)
-- ARGV[2]  payload: the item's typed JSON, empty for "not found"
-- ARGV[3]  expiry in seconds
--
-- Returns 1 filled, 0 rejected: the lease is gone because the invalidator wrote
-- the key after the reader's DynamoDB read began, so the read may be stale.
-- The lease may be stored with apply.lua's reader-filled mark
-- ("L" .. version .. "F" .. fill_ms(13 digits) .. token) while the reader holds it
-- unmarked: both forms are its lease.
-- The fill "F" keeps the lease's version (the reader cannot know which stream record
-- its read reflects) and is stamped with Redis's clock now, which is after the read:
-- "F" .. version .. fill_ms(13 digits) .. payload. apply.lua lets a record created
-- after that stamp write its image (see there). A marked lease's older stamp is kept
-- if it is later (a clock step back), so the stamp never moves backward.
local current = redis.call("GET", KEYS[1])
local lease = ARGV[1]
local prefix = string.sub(lease, 1, 41)
local token = string.sub(lease, 42)
local now = redis.call("TIME")
local fill_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if current ~= lease then
  if not current or #current ~= #lease + 14 or string.sub(current, 1, 42) ~= prefix .. "F"
      or string.sub(current, 56) ~= token then
    return 0
  end
  local marked = tonumber(string.sub(current, 43, 55))
  if marked and marked > fill_ms then
    fill_ms = marked
  end
end
local stamp = string.format("%013.0f", fill_ms)
redis.call("SET", KEYS[1], "F" .. string.sub(lease, 2, 41) .. stamp .. ARGV[2], "EX", ARGV[3])
return 1
