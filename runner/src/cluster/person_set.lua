-- Records what a person on this node is now (or that they left), and tells every node.
-- KEYS[1] = chat:nicks:{nicks}:people:NODE (hash: person id -> their state, JSON)
-- KEYS[2] = chat:nicks:{nicks}:nodes       (set: the ids of the nodes with people)
-- ARGV[1] = node id, ARGV[2] = person id, ARGV[3] = their state, or "" when they left
-- ARGV[4] = the people channel, ARGV[5] = the message for it
-- Returns how many subscribers heard it. In one step, so that a node that reads the hash
-- after subscribing misses nothing, and one that reads it before hears what changed since.
if ARGV[3] == "" then
  redis.call("HDEL", KEYS[1], ARGV[2])
else
  redis.call("HSET", KEYS[1], ARGV[2], ARGV[3])
end
redis.call("SADD", KEYS[2], ARGV[1])
return redis.call("PUBLISH", ARGV[4], ARGV[5])
