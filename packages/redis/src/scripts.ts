/**
 * Lua scripts, each touching a single key so they run unchanged on Redis Cluster.
 */

/**
 * Adds an id to an index set and stretches the set's TTL to cover the new session, never
 * shortening it (`EXPIRE .. GT` cannot do this: it treats a key without TTL as infinite).
 * KEYS[1] index, ARGV[1] session id, ARGV[2] TTL in ms. Returns the set's size.
 */
export const INDEX_ADD = `
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('SCARD', KEYS[1])
`

/**
 * Deletes a session only if it still belongs to the subject or sid an index listed it under, so a
 * stale index entry can never remove a session that has since been replaced. Reads both record
 * formats: the header line before the first newline (version 2), or the whole JSON (version 1).
 * KEYS[1] session, ARGV[1] field (`sub` or `sid`), ARGV[2] expected value. Returns 1 if deleted.
 */
export const DELETE_IF_OWNED = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local nl = string.find(v, '\\n', 1, true)
if nl then v = string.sub(v, 1, nl - 1) end
local ok, s = pcall(cjson.decode, v)
if ok and type(s) == 'table' and s[ARGV[1]] == ARGV[2] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * The per-subject cap, decided atomically: adds a session id to the subject's age index (a
 * sorted set whose scores count up in the order Redis ran the additions, so every instance
 * agrees on it without a clock; an id already there keeps its age), stretches the index's TTL as
 * INDEX_ADD does, then removes and returns the ids past the cap, oldest first, never the id just
 * added. Two concurrent sign-ins each see the other's id, so the cap holds under races.
 * KEYS[1] age index, ARGV[1] session id, ARGV[2] TTL in ms, ARGV[3] cap. Returns the evicted ids.
 */
export const CAP_SUBJECT = `
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local next = 1
if last[2] then next = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[1], 'NX', next, ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over <= 0 then return {} end
local evicted = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, over)) do
  if id ~= ARGV[1] and #evicted < over then evicted[#evicted + 1] = id end
end
if #evicted > 0 then redis.call('ZREM', KEYS[1], unpack(evicted)) end
return evicted
`

/** Frees a lock only for the holder of its token. KEYS[1] lock, ARGV[1] token. */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`
