-- Gives a nick back, if this node holds it.
-- KEYS[1] = chat:nicks:{nicks}:owners, KEYS[2] = chat:nicks:{nicks}:held:NODE
-- ARGV[1] = lowercased nick, ARGV[2] = node id
-- Returns 1 released, 0 not held by this node (free already, or another node's).
redis.call("SREM", KEYS[2], ARGV[1])
if redis.call("HGET", KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call("HDEL", KEYS[1], ARGV[1])
  return 1
end
return 0
