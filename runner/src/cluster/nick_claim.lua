-- Claims a nick for this node, atomically across every node.
-- KEYS[1] = chat:nicks:{nicks}:owners      (hash: lowercased nick -> node id)
-- KEYS[2] = chat:nicks:{nicks}:lease:NODE  (this node's lease)
-- KEYS[3] = chat:nicks:{nicks}:held:NODE   (set: the lowercased nicks this node holds)
-- ARGV[1] = lowercased nick, ARGV[2] = node id,
-- ARGV[3] = "chat:nicks:{nicks}:lease:", ARGV[4] = "chat:nicks:{nicks}:held:" (to reach the
--           owner's keys, which the caller cannot name in advance; same hash tag, same slot),
-- ARGV[5] = the claimer's previous lowercased nick, released in the same step, or ""
-- Returns {1, ""} granted, {0, owner} taken (owner may be this node: a second person here),
-- {-1, ""} this node's lease has lapsed: it claims nothing until it has renewed.
if redis.call("EXISTS", KEYS[2]) == 0 then
  return {-1, ""}
end
local owner = redis.call("HGET", KEYS[1], ARGV[1])
if owner == ARGV[2] then
  if ARGV[5] == ARGV[1] then
    return {1, ""}  -- a change of case of the claimer's own nick: still theirs
  end
  return {0, owner}
end
if owner then
  if redis.call("EXISTS", ARGV[3] .. owner) == 1 then
    return {0, owner}
  end
  -- The owner's lease lapsed: its claim is void.
  redis.call("SREM", ARGV[4] .. owner, ARGV[1])
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("SADD", KEYS[3], ARGV[1])
if ARGV[5] ~= "" and redis.call("HGET", KEYS[1], ARGV[5]) == ARGV[2] then
  redis.call("HDEL", KEYS[1], ARGV[5])
  redis.call("SREM", KEYS[3], ARGV[5])
end
return {1, ""}
