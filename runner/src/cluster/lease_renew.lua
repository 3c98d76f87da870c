-- Keeps this node's lease alive, or starts a new one after a lapse (or at the start).
-- KEYS[1] = chat:nicks:{nicks}:owners      (hash: lowercased nick -> node id)
-- KEYS[2] = chat:nicks:{nicks}:lease:NODE  (this node's lease: its id, expiring after the lease)
-- KEYS[3] = chat:nicks:{nicks}:held:NODE   (set: the lowercased nicks this node holds)
-- KEYS[4] = chat:nicks:{nicks}:nodes       (hash: node id -> its lease in ms, for the others to
--                                           check it)
-- ARGV[1] = node id, ARGV[2] = the lease in milliseconds
-- Returns 1: renewed. 0: there was no lease (a lapse, or the first call): whatever the node
-- held under a lapsed lease was void, and others may have taken some of it, so all of it is
-- dropped here and the node claims its people's nicks again; a claim that half survived a
-- lapse would be neither clearly ours nor clearly free.
-- Listed among the nodes at every renewal: a Redis that restarted empty knows the node again
-- within a renewal.
redis.call("HSET", KEYS[4], ARGV[1], ARGV[2])
if redis.call("GET", KEYS[2]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[2], ARGV[2])
  return 1
end
-- At most one entry per person on the node (the runner's connection limit), so the loop is
-- bounded.
for _, nick in ipairs(redis.call("SMEMBERS", KEYS[3])) do
  if redis.call("HGET", KEYS[1], nick) == ARGV[1] then
    redis.call("HDEL", KEYS[1], nick)
  end
end
redis.call("DEL", KEYS[3])
redis.call("SET", KEYS[2], ARGV[1], "PX", ARGV[2])
return 0
