-- Finds the nodes whose lease has lapsed: forgets their people and tells every node.
-- KEYS[1] = chat:nicks:{nicks}:nodes (hash: node id -> its lease in ms, set at each renewal)
-- ARGV[1] = the lease key prefix (chat:nicks:{nicks}:lease:), ARGV[2] = the people key
-- prefix (chat:nicks:{nicks}:people:), ARGV[3] = the people channel, ARGV[4] = the id of the
-- node asking
-- Returns {1 if the asking node's people are in Redis else 0, node, lease, node, lease, ...}
-- for the nodes alive. The keys built here share the hash tag of KEYS[1].
local answer = {redis.call("EXISTS", ARGV[2] .. ARGV[4])}
local nodes = redis.call("HGETALL", KEYS[1])
for i = 1, #nodes, 2 do
  local node, lease = nodes[i], nodes[i + 1]
  if redis.call("EXISTS", ARGV[1] .. node) == 1 then
    table.insert(answer, node)
    table.insert(answer, lease)
  else
    redis.call("HDEL", KEYS[1], node)
    redis.call("DEL", ARGV[2] .. node)
    redis.call("PUBLISH", ARGV[3], cjson.encode({v = 1, lost = node}))
  end
end
return answer
