-- lease.lua: on a read miss, take a short lease on the key (memcache leases, NSDI '13).
--
-- KEYS[1]  the cache key
-- ARGV[1]  lease token, unique to this read (lowercase hex: never starts with "F")
-- ARGV[2]  lease expiry in milliseconds
--
-- Returns the value now at the key. It is the caller's own lease
-- ("L" .. version .. token) when the lease was granted: the key was empty or held
-- an invalidation "X", whose version the lease inherits. Otherwise it is what
-- answers the read (an "I", "T" or "F" entry) or another reader's lease "L".
--
-- A lease taken on a reader-filled invalidation ("X" .. version .. "F" .. fill_ms,
-- see apply.lua) is stored as "L" .. version .. "F" .. fill_ms .. token so that the
-- mark and its stamp survive; the caller is still handed "L" .. version .. token,
-- and fill.lua accepts both.
local current = redis.call("GET", KEYS[1])
local version = "0000000000000000000000000000000000000000"
local mark = ""
if current and #current >= 41 then
  if string.sub(current, 1, 1) ~= "X" then
    return current
  end
  version = string.sub(current, 2, 41)
  if string.sub(current, 42, 42) == "F" then
    mark = string.sub(current, 42, 55)
  end
end
redis.call("SET", KEYS[1], "L" .. version .. mark .. ARGV[1], "PX", ARGV[2])
return "L" .. version .. ARGV[1]
