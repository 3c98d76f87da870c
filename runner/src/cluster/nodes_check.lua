-- Finds the nodes whose lease has lapsed: forgets their people and tells every node.
-- KEYS[1] = chat:nicks:{nicks}:nodes (set: the ids of the nodes with people)
-- ARGV[1] = the lease key prefix (chat:nicks:{nicks}:lease:), ARGV[2] = the people key
-- prefix (chat:nicks:{nicks}:people:), ARGV[3] = the people channel
-- Returns the nodes alive. The keys built here share the hash tag of KEYS[1].
local alive = {}
for _, node in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  if redis.call("EXISTS", ARGV[1] .. node) == 1 then
    table.insert(alive, node)
  else
    redis.call("SREM", KEYS[1], node)
    redis.call("DEL", ARGV[2] .. node)
    redis.call("PUBLISH", ARGV[3], cjson.encode({v = 1, lost = node}))
  end
end
return alive
