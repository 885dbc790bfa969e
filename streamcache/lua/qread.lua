-- qread.lua: read a cached query page, its partition's marker, and Redis's clock.
--
-- KEYS[1]  the partition's marker (streamcache.partitions.marker_key)
-- KEYS[2]  the page (marker .. ":" .. digest of the request: same hash slot)
--
-- Returns {marker or nil, page or nil, now_ms (13 digits)}. A page answers only
-- when it was filled under the marker that is there now (checked by the caller:
-- a page is marker .. "|" .. payload). now_ms is what qfill.lua's settle rule
-- compares with the marker's move time, on the same clock.
local marker = redis.call("GET", KEYS[1])
local page = redis.call("GET", KEYS[2])
local now = redis.call("TIME")
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return {marker, page, string.format("%013.0f", ms)}
