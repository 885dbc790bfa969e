-- sample.lua: add the invalidator's consistency samples, only while a checker is draining them.
--
-- KEYS[1]  the sample set (streamcache.ops.sampling.samples_key): a sorted set, score = due ms
-- ARGV[1]  the most members the set may hold; the earliest due beyond it are dropped
-- ARGV[2], ARGV[3], ...  pairs: due time (epoch ms), member (one encoded sample)
--
-- Returns the number of samples added, or -1 when no checker armed the set.
--
-- The set exists only while a checker has armed it recently (the checker adds
-- a marker member at +inf and sets the expiry on every run): a deployment
-- without a checker, a laptop or a test never grows a set nobody drains.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local added = 0
for i = 2, #ARGV, 2 do
  added = added + redis.call("ZADD", KEYS[1], ARGV[i], ARGV[i + 1])
end
local limit = tonumber(ARGV[1])
local size = redis.call("ZCARD", KEYS[1])
if size > limit then
  redis.call("ZREMRANGEBYRANK", KEYS[1], 0, size - limit - 1)
end
return added
