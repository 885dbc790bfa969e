-- qfill.lua: store a query page read from DynamoDB, only if no record moved its partition
-- since qread.lua saw the marker.
--
-- KEYS[1]  the partition's marker
-- KEYS[2]  the page key
-- ARGV[1]  the marker qread.lua returned ("" when there was none)
-- ARGV[2]  the page payload
-- ARGV[3]  expiry in seconds
-- ARGV[4]  settle ms: a global secondary index is updated asynchronously, apart from
--          the stream, so a page is stored only when the marker moved more than this
--          long before the read began (0: base table and local indexes, read consistently)
-- ARGV[5]  Redis ms when qread.lua ran (before the DynamoDB read)
-- ARGV[6]  a fresh random token
--
-- Returns 1 stored, 0 refused.
--
-- Every applied record moves the marker (apply.lua, kind "M"), so a read that raced a
-- record finds a different marker here and is not stored. A marker this script has to
-- create (none yet, or evicted) carries Redis's clock and the token: no marker value
-- repeats, so a page filled under an older marker can never match again. The marker
-- always outlives its pages (same or longer expiry).
local marker = redis.call("GET", KEYS[1])
if (marker or "") ~= ARGV[1] then
  return 0
end
if marker and string.sub(marker, 1, 1) ~= "M" then
  return 0
end
if marker and tonumber(ARGV[4]) > 0 then
  local moved = tonumber(string.sub(marker, 42, 54))
  if not moved or tonumber(ARGV[5]) - moved <= tonumber(ARGV[4]) then
    return 0
  end
end
local ttl = tonumber(ARGV[3])
if not marker then
  local now = redis.call("TIME")
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  marker = "M" .. string.rep("0", 40) .. string.format("%013.0f", ms) .. ARGV[6]
  redis.call("SET", KEYS[1], marker, "EX", ttl)
elseif redis.call("TTL", KEYS[1]) < ttl then
  redis.call("EXPIRE", KEYS[1], ttl)
end
redis.call("SET", KEYS[2], marker .. "|" .. ARGV[2], "EX", ttl)
return 1
