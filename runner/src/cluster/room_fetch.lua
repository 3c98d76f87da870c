-- Reads a room's lines back from its stream, with its numbering, in one step.
-- KEYS[1] = chat:room:{NAME}:meta, KEYS[2] = chat:room:{NAME}:stream
-- ARGV[1] = the first entry wanted ("<seq>-0"), ARGV[2] = the most entries to return
-- Returns {top, epoch, entries, base}: top = the room's last sequence number as a string ("0"
-- for a room that never had a line), epoch ("" likewise), entries = XRANGE from ARGV[1] on,
-- base = the number its epoch's numbering went on after ("0" likewise).
local meta = redis.call("HMGET", KEYS[1], "seq", "epoch", "base")
local entries = redis.call("XRANGE", KEYS[2], ARGV[1], "+", "COUNT", ARGV[2])
return {meta[1] or "0", meta[2] or "", entries, meta[3] or "0"}
