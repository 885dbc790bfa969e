-- apply.lua: apply one stream record to one cache key, only if it is newer.
--
-- KEYS[1]  the cache key (streamcache.keys.cache_key)
-- ARGV[1]  kind to write: "I" item, "T" tombstone (not found), "X" invalidation,
--          "M" a query-cache partition marker (this script appends Redis's clock in ms, 13 digits)
-- ARGV[2]  the record's SequenceNumber, zero-padded to 40 digits
-- ARGV[3]  the entry to store: ARGV[1] .. ARGV[2] .. the item's typed JSON for "I"
--          (built by the client: concatenating a 1 KB item in Lua cost ~30% of the call)
-- ARGV[4]  expiry in seconds
-- ARGV[5]  the record's ApproximateCreationDateTime in epoch ms, "0" when unknown
-- ARGV[6]  FILL_CLOCK_MARGIN_MS: allowed skew between DynamoDB's clock and Redis's
--
-- Returns 1 written, 0 skipped (the key already holds this version or a newer one),
-- 2 invalidated instead (the key is "reader-filled", see below).
--
-- Reader-filled keys: a reader fill "F" shows DynamoDB as of its read, which may be
-- newer than records the stream has not delivered yet. Writing such a record's image
-- would step the cache back (F(state 7) -> I(state 6)), and so would writing it after
-- a first record turned the F into an X (F(7) -> X(5) -> I(6)). Found by
-- tests/consistency. fill.lua stamps the F with Redis's clock after the read
-- ("F" .. version .. fill_ms(13 digits) .. payload), and the stamp is carried by
-- the X / lease descended from it ("X" .. version .. "F" .. fill_ms,
-- "L" .. version .. "F" .. fill_ms .. token). A record meeting such an entry:
-- - created more than margin ms after fill_ms: it was written after the fill's read,
--   so its state is newer than anything the fill showed: it writes its own entry,
--   unmarked, and the key leaves fill mode;
-- - else (or creation time unknown): it writes the marked invalidation
--   "X" .. version .. "F" .. fill_ms; readers refill the key.
-- An entry marked before the stamp existed (no 13 digits) is stamped "now": its
-- fill happened before now, so that is a safe, later-than-true bound.
--
-- Any write replaces a reader's lease "L", so a fill that raced it is rejected.
-- Versions are compared as fixed-width strings: Lua numbers are doubles and would
-- round a 40-digit sequence number (13-digit epoch ms are exact).
local head = redis.call("GETRANGE", KEYS[1], 0, 54)
if #head >= 41 then
  if ARGV[2] <= string.sub(head, 2, 41) then
    return 0
  end
  local kind = string.sub(head, 1, 1)
  local stamp = nil
  if kind == "F" then
    stamp = string.sub(head, 42, 54)
  elseif string.sub(head, 42, 42) == "F" and (kind == "X" or kind == "L") then
    stamp = string.sub(head, 43, 55)
  end
  if stamp then
    local fill_ms = nil
    if string.match(stamp, "^%d%d%d%d%d%d%d%d%d%d%d%d%d$") then
      fill_ms = tonumber(stamp)
    else
      local now = redis.call("TIME")
      fill_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    end
    local created_ms = tonumber(ARGV[5]) or 0
    if created_ms <= fill_ms + tonumber(ARGV[6]) then
      redis.call("SET", KEYS[1], "X" .. ARGV[2] .. "F" .. string.format("%013.0f", fill_ms), "EX", ARGV[4])
      return 2
    end
  end
end
local entry = ARGV[3]
if ARGV[1] == "M" then
  -- A query-cache marker also says when it moved, on the clock the reader's fill reads too.
  local now = redis.call("TIME")
  entry = entry .. string.format("%013.0f", tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
end
redis.call("SET", KEYS[1], entry, "EX", ARGV[4])
return 1
