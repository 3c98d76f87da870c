-- Gives a line the room's next sequence number, appends it to the room's stream and publishes
-- it on the room's channel, in one step: every node sees a room's lines in one order.
-- KEYS[1] = chat:room:{NAME}:meta    (hash: seq = the last number given, epoch, topic)
-- KEYS[2] = chat:room:{NAME}:stream  (entries "<seq>-0", field d = the payload)
-- ARGV[1] = payload, ARGV[2] = the stream's bound (XADD MAXLEN ~),
-- ARGV[3] = the epoch to start if the room has none, ARGV[4] = channel chat:room:{NAME}:live,
-- ARGV[5] = "1" if the payload is the room's new topic, kept in the meta hash as field topic
-- ("<seq>:<epoch>:<payload>") for nodes that come later.
-- ARGV[6] = the last number the publishing node knows the room had (0 if none): a numbering
-- started again goes on after it (meta field base), so that new numbers do not reuse the
-- numbers of lines the nodes' stores keep.
-- Publishes "<seq>:<epoch>:<payload>". Returns {seq, epoch}.
local epoch = redis.call("HGET", KEYS[1], "epoch")
if not epoch then
  -- A room new to this Redis, or one whose numbering was lost (a restart without
  -- persistence): a new epoch tells readers that its numbers start again, after base.
  epoch = ARGV[3]
  redis.call("HSET", KEYS[1], "epoch", epoch, "seq", ARGV[6], "base", ARGV[6])
  redis.call("DEL", KEYS[2])  -- entries of an earlier epoch would block the new numbers
end
local seq = redis.call("HINCRBY", KEYS[1], "seq", 1)
-- "%d", not tostring: tostring writes numbers from 10^14 on with an exponent.
local id = string.format("%d-0", seq)
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[2], id, "d", ARGV[1])
local placed = string.format("%d:", seq) .. epoch .. ":" .. ARGV[1]
if ARGV[5] == "1" then
  redis.call("HSET", KEYS[1], "topic", placed)
end
redis.call("PUBLISH", ARGV[4], placed)
return {seq, epoch}
