-- Records what a person on this node is now (or that they left), and tells every node.
-- KEYS[1] = chat:nicks:{nicks}:people:NODE (hash: person id -> their state, JSON)
-- ARGV[1] = person id, ARGV[2] = their state, or "" when they left
-- ARGV[3] = the people channel, ARGV[4] = the message for it
-- Returns how many subscribers heard it. In one step, so that a node that reads the hash
-- after subscribing misses nothing, and one that reads it before hears what changed since.
if ARGV[2] == "" then
  redis.call("HDEL", KEYS[1], ARGV[1])
else
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
end
return redis.call("PUBLISH", ARGV[3], ARGV[4])
