//! The Lua scripts of [`RedisInbox`](super::RedisInbox): every operation is one of
//! them, atomic on the server, timed by the server's clock.

use redis::Script;

/// The server's clock in milliseconds, the same for every replica.
const NOW: &str = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

/// KEYS: stream, delayed, dead, done, leases, payloads. ARGV[1]: the record prefix.
/// Stores the record and appends it to the stream, unless the key is known.
const ENQUEUE: &str = r"
local rec = ARGV[1] .. ARGV[2]
if redis.call('EXISTS', rec) == 1 then return 0 end
redis.call('HSET', rec, 'id', ARGV[3], 'type', ARGV[4], 'headers', ARGV[5], 'body', ARGV[6], 'signed_at', ARGV[7],
  'state', 'queued', 'attempts', 0, 'received_at', now, 'updated_at', now)
redis.call('HSET', rec, 'entry', redis.call('XADD', KEYS[1], '*', 'key', ARGV[2]))
return 1
";

/// ARGV: prefix, consumer, token, lease ms. Moves due retries into the stream, then
/// takes over an expired lease (XCLAIM) or reads a new entry (XREADGROUP).
const TAKE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, key in ipairs(due) do
  redis.call('ZREM', KEYS[2], key)
  local rec = ARGV[1] .. key
  if redis.call('HGET', rec, 'state') == 'retrying' then
    redis.call('HSET', rec, 'entry', redis.call('XADD', KEYS[1], '*', 'key', key))
  end
end
local key, rec
for _ = 1, 16 do
  local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1)
  if #expired > 0 then
    key = expired[1]
    rec = ARGV[1] .. key
    local entry = redis.call('HGET', rec, 'entry')
    if entry and redis.call('HGET', rec, 'state') == 'running' then
      redis.call('XCLAIM', KEYS[1], 'hookroute', ARGV[2], 0, entry, 'JUSTID')
      break
    end
    redis.call('ZREM', KEYS[5], key)
    key = nil
  else
    local read = redis.call('XREADGROUP', 'GROUP', 'hookroute', ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
    if not read then return false end
    local entry = read[1][2][1][1]
    key = read[1][2][1][2][2]
    rec = ARGV[1] .. key
    local state = redis.call('HGET', rec, 'state')
    if redis.call('HGET', rec, 'entry') == entry and (state == 'queued' or state == 'retrying') then break end
    -- An entry its record no longer points at: drop it.
    redis.call('XACK', KEYS[1], 'hookroute', entry)
    redis.call('XDEL', KEYS[1], entry)
    key = nil
  end
end
if not key then return false end
local attempts = redis.call('HINCRBY', rec, 'attempts', 1)
redis.call('HSET', rec, 'state', 'running', 'token', ARGV[3], 'updated_at', now)
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), key)
local f = redis.call('HMGET', rec, 'id', 'type', 'headers', 'body', 'signed_at', 'last_error', 'received_at')
return {key, f[1], f[2], f[3], f[4], f[5], attempts, f[6] or '', f[7], f[6] and 1 or 0}
";

/// ARGV: prefix, key, token. Checks the lease, then leaves `rec` for the caller.
const HELD: &str = r"
local rec = ARGV[1] .. ARGV[2]
if redis.call('HGET', rec, 'token') ~= ARGV[3] or redis.call('HGET', rec, 'state') ~= 'running' then return 0 end
";

/// Takes the record's entry off the stream and its lease off the lease set.
const UNLEASE: &str = r"
local entry = redis.call('HGET', rec, 'entry')
redis.call('XACK', KEYS[1], 'hookroute', entry)
redis.call('XDEL', KEYS[1], entry)
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('HDEL', rec, 'token', 'entry')
";

/// ARGV[4]: the new lease in ms.
const RENEW: &str = r"
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), ARGV[2])
return 1
";

/// ARGV[4]: the TTL in ms. Done records expire on their own; the done set is scored
/// by expiry and trimmed here. The payloads set (done keys by completion, for
/// `FORGET_PAYLOADS`) loses here the keys whose records have expired.
const COMPLETE: &str = r"
redis.call('HSET', rec, 'state', 'done', 'updated_at', now)
redis.call('PEXPIRE', rec, ARGV[4])
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - tonumber(ARGV[4]))
redis.call('ZADD', KEYS[6], now, ARGV[2])
return 1
";

/// ARGV: prefix, age ms. Empties the body and headers of done records completed at
/// least that long ago (the payloads set holds done keys by completion), 1,000 a call.
const FORGET_PAYLOADS: &str = r"
local forgotten = 0
local keys = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, 1000)
for _, key in ipairs(keys) do
  local rec = ARGV[1] .. key
  if redis.call('HGET', rec, 'state') == 'done' then
    redis.call('HSET', rec, 'body', '', 'headers', '')
    forgotten = forgotten + 1
  end
  redis.call('ZREM', KEYS[6], key)
end
return {forgotten, #keys}
";

/// ARGV[4]: the delay in ms, ARGV[5]: the error.
const RETRY: &str = r"
redis.call('HSET', rec, 'state', 'retrying', 'last_error', ARGV[5], 'updated_at', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
return 1
";

/// ARGV[4]: the error.
const DEAD: &str = r"
redis.call('HSET', rec, 'state', 'dead', 'last_error', ARGV[4], 'updated_at', now)
redis.call('HSET', rec, 'dead_entry', redis.call('XADD', KEYS[3], '*', 'key', ARGV[2], 'error', ARGV[4]))
return 1
";

const RELEASE: &str = r"
local attempts = redis.call('HINCRBY', rec, 'attempts', -1)
redis.call('HSET', rec, 'state', attempts > 0 and 'retrying' or 'queued', 'updated_at', now)
redis.call('HSET', rec, 'entry', redis.call('XADD', KEYS[1], '*', 'key', ARGV[2]))
return 1
";

/// ARGV: prefix, key.
const REPLAY: &str = r"
local rec = ARGV[1] .. ARGV[2]
local state = redis.call('HGET', rec, 'state')
if not state or state == 'running' then return 0 end
if state == 'dead' then
  redis.call('XDEL', KEYS[3], redis.call('HGET', rec, 'dead_entry'))
  redis.call('HDEL', rec, 'dead_entry')
elseif state == 'retrying' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif state == 'done' then
  redis.call('PERSIST', rec)
  redis.call('ZREM', KEYS[4], ARGV[2])
end
redis.call('HSET', rec, 'attempts', 0, 'updated_at', now)
if state ~= 'queued' then
  redis.call('HSET', rec, 'state', 'queued', 'entry', redis.call('XADD', KEYS[1], '*', 'key', ARGV[2]))
end
return 1
";

/// `last_delivered()`: the id of the last stream entry the group handed out; the
/// entries after it are the queued ones.
const LAST_DELIVERED: &str = r"
local function last_delivered()
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    for i = 1, #group, 2 do
      if group[i] == 'last-delivered-id' then return group[i + 1] end
    end
  end
  return '0-0'
end
";

/// Counts per state, and the age of the delivery due longest.
const STATS: &str = r"
local running = redis.call('ZCARD', KEYS[5])
local queued = redis.call('XLEN', KEYS[1]) - running
local oldest = -1
local first = redis.call('XRANGE', KEYS[1], '(' .. last_delivered(), '+', 'COUNT', 1)
if #first > 0 then oldest = now - tonumber(string.match(first[1][1], '^(%d+)')) end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #due > 0 then oldest = math.max(oldest, now - tonumber(due[2])) end
return {queued, running, redis.call('ZCARD', KEYS[2]), redis.call('ZCOUNT', KEYS[4], now, '+inf'),
  redis.call('XLEN', KEYS[3]), oldest}
";

/// ARGV: prefix, state, limit. The keys in a state, oldest first.
const LIST: &str = r"
local limit = tonumber(ARGV[3])
local keys = {}
local function from_stream(stream, start)
  for _, entry in ipairs(redis.call('XRANGE', stream, start, '+', 'COUNT', limit)) do
    table.insert(keys, entry[2][2])
  end
end
if ARGV[2] == 'queued' then
  from_stream(KEYS[1], '(' .. last_delivered())
elseif ARGV[2] == 'dead' then
  from_stream(KEYS[3], '-')
elseif ARGV[2] == 'running' then
  keys = redis.call('ZRANGE', KEYS[5], 0, limit - 1)
elseif ARGV[2] == 'retrying' then
  keys = redis.call('ZRANGE', KEYS[2], 0, limit - 1)
elseif ARGV[2] == 'done' then
  keys = redis.call('ZRANGEBYSCORE', KEYS[4], now, '+inf', 'LIMIT', 0, limit)
end
return keys
";

/// ARGV: prefix, age ms. Deletes done records last updated at least that long ago.
const PURGE_DONE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local purged = 0
for _, key in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local rec = ARGV[1] .. key
  local updated = tonumber(redis.call('HGET', rec, 'updated_at') or '0')
  if updated <= now - tonumber(ARGV[2]) then
    if redis.call('HGET', rec, 'state') == 'done' then
      redis.call('DEL', rec)
      purged = purged + 1
    end
    redis.call('ZREM', KEYS[4], key)
  end
end
return purged
";

#[derive(Clone)]
pub(super) struct Scripts {
    pub(super) enqueue: Script,
    pub(super) take: Script,
    pub(super) renew: Script,
    pub(super) complete: Script,
    pub(super) retry: Script,
    pub(super) dead: Script,
    pub(super) release: Script,
    pub(super) replay: Script,
    pub(super) stats: Script,
    pub(super) list: Script,
    pub(super) purge_done: Script,
    pub(super) forget_payloads: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_now = |body: &str| Script::new(&format!("{NOW}{body}"));
        let held = |body: &str| Script::new(&format!("{NOW}{HELD}{UNLEASE}{body}"));
        Self {
            enqueue: with_now(ENQUEUE),
            take: with_now(TAKE),
            renew: Script::new(&format!("{NOW}{HELD}{RENEW}")),
            complete: held(COMPLETE),
            retry: held(RETRY),
            dead: held(DEAD),
            release: held(RELEASE),
            replay: with_now(REPLAY),
            stats: with_now(&format!("{LAST_DELIVERED}{STATS}")),
            list: with_now(&format!("{LAST_DELIVERED}{LIST}")),
            purge_done: with_now(PURGE_DONE),
            forget_payloads: with_now(FORGET_PAYLOADS),
        }
    }
}
