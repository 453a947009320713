//! The Lua scripts of [`RedisInbox`](super::RedisInbox): every operation is one of
//! them, atomic on the server, timed by the server's clock.

use redis::Script;

/// The server's clock in milliseconds, the same for every replica.
const NOW: &str = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

/// The done records that may be read for Redis to delete them: those whose expiry
/// (`PEXPIREAT`, their done-set score) passed at least 10 ms ago. A script judges
/// expiry by the time it started, a moment before its `TIME`, and a record read a
/// moment too soon would stay, left to the expiry cycle with the done set no longer
/// naming it. `COMPLETE` and `PURGE_DONE` read by it.
const PAST_TTL: &str = "local past_ttl = now - 10\n";

/// Counts `n` (1 unless given) more completions (`done:`) or failed attempts
/// (`failed:`) in this minute: `<prefix><what><unix minute>`, kept 25 hours, for the
/// console's chart.
const MINUTES: &str = r"
local function count_minute(what, n)
  n = n or 1
  local counter = string.sub(ARGV[1], 1, -3) .. what .. math.floor(now / 60000)
  if redis.call('INCRBY', counter, n) == n then redis.call('PEXPIRE', counter, 90000000) end
end
";

/// Ordered lanes and type caps (see `Order`). Each key of a delivery with an ordering
/// key has `<prefix>lp:<key>` (its pending deliveries by creation time, members
/// `<16-digit arrival>:<record key>`), `<prefix>lr:<key>` (its running ones by lease
/// end), `<prefix>lw:<key>` (the ones parked until it frees up), `<prefix>ls:<key>`
/// (the last start of its rate-limited deliveries) and `<prefix>ld:<key>` (the newest
/// creation time done, as the score of one member, raised by `ZADD GT`). A capped
/// type has `<prefix>tr:<type>` (running, by lease end) and `<prefix>tw:<type>`
/// (parked); a paused type `<prefix>pw:<type>` (parked until `RESUME`). A take
/// that reads a delivery that may not run parks it there; whatever frees the key or
/// the type puts the oldest parked one back at the stream's end (the back of the line).
/// `<prefix>parked` and `<prefix>parked_rate` count the parked ones for stats.
const ORDER: &str = r"
local base = string.sub(ARGV[1], 1, -3)
-- The record's order (7 fields), then the fields named after it, in one read.
local function order_of(rec, ...)
  return redis.call('HMGET', rec, 'lane', 'member', 'in_flight', 'interval', 'type_cap', 'type', 'created', ...)
end
-- Why the delivery may not run now ('lane', 'type' or 'rate' with when), or nil.
local function blocked(o, key)
  if o[1] then
    local n = tonumber(o[3])
    local rank = redis.call('ZRANK', base .. 'lp:' .. o[1], o[2])
    if rank and rank >= n then return 'lane' end
    local lr = base .. 'lr:' .. o[1]
    local live = redis.call('ZCOUNT', lr, '(' .. now, '+inf')
    local mine = redis.call('ZSCORE', lr, key)
    if mine and tonumber(mine) > now then live = live - 1 end
    if live >= n then return 'lane' end
    if o[4] then
      local last = redis.call('HGET', base .. 'ls:' .. o[1], 'start')
      if last and now < tonumber(last) + tonumber(o[4]) then return 'rate', tonumber(last) + tonumber(o[4]) end
    end
  end
  if o[5] then
    local tr = base .. 'tr:' .. o[6]
    local live = redis.call('ZCOUNT', tr, '(' .. now, '+inf')
    local mine = redis.call('ZSCORE', tr, key)
    if mine and tonumber(mine) > now then live = live - 1 end
    if live >= tonumber(o[5]) then return 'type' end
  end
  return nil
end
local function park(o, key, why, at)
  if why == 'lane' then
    redis.call('ZADD', base .. 'lw:' .. o[1], o[7], o[2])
    redis.call('INCR', base .. 'parked')
  elseif why == 'type' then
    redis.call('RPUSH', base .. 'tw:' .. o[6], key)
    redis.call('INCR', base .. 'parked')
  elseif why == 'paused' then
    redis.call('RPUSH', base .. 'pw:' .. o[6], key)
    redis.call('INCR', base .. 'parked')
  else
    redis.call('ZADD', KEYS[2], at, key)
    redis.call('INCR', base .. 'parked_rate')
  end
end
local function requeue(key)
  local r = ARGV[1] .. key
  local state = redis.call('HGET', r, 'state')
  if state == 'queued' or state == 'retrying' then
    redis.call('HSET', r, 'entry', redis.call('XADD', KEYS[1], '*', 'key', key))
  end
end
-- Puts back the oldest parked deliveries of the key (up to its in-flight limit).
local function unpark_lane(o)
  local lw = base .. 'lw:' .. o[1]
  for _, member in ipairs(redis.call('ZRANGE', lw, 0, tonumber(o[3]) - 1)) do
    redis.call('ZREM', lw, member)
    redis.call('DECR', base .. 'parked')
    requeue(string.sub(member, 18))
  end
end
local function unpark_type(o)
  local key = redis.call('LPOP', base .. 'tw:' .. o[6])
  if key then
    redis.call('DECR', base .. 'parked')
    requeue(key)
  end
end
-- The key's next deliveries waiting in the stream go to its end: the back of the line.
local function behind(o, key)
  for _, member in ipairs(redis.call('ZRANGE', base .. 'lp:' .. o[1], 0, tonumber(o[3]) - 1)) do
    local k = string.sub(member, 18)
    local r = ARGV[1] .. k
    local f = redis.call('HMGET', r, 'entry', 'state')
    local entry, state = f[1], f[2]
    if k ~= key and entry and (state == 'queued' or state == 'retrying') then
      redis.call('XDEL', KEYS[1], entry)
      redis.call('HSET', r, 'entry', redis.call('XADD', KEYS[1], '*', 'key', k))
    end
  end
end
-- After an attempt ended: the delivery no longer runs; a finished one leaves its key.
local function freed(o, key, finished)
  if o[1] then
    redis.call('ZREM', base .. 'lr:' .. o[1], key)
    if finished then
      redis.call('ZREM', base .. 'lp:' .. o[1], o[2])
      behind(o, key)
      unpark_lane(o)
    end
  end
  if o[5] then
    redis.call('ZREM', base .. 'tr:' .. o[6], key)
    unpark_type(o)
  end
end
";

/// KEYS: stream, delayed, dead, done, leases, payloads. ARGV[1]: the record prefix.
/// Stores the record and appends it to the stream, unless the key is known. ARGV[8..12]:
/// the ordering key, creation time, in-flight limit, type cap and key interval (empty
/// when none). One `HSET` writes the record. A key's pending set orders equal creation
/// times by arrival: the member starts with the server's time in microseconds.
const ENQUEUE: &str = r"
local rec = ARGV[1] .. ARGV[2]
if redis.call('EXISTS', rec) == 1 then return 0 end
local f = {'id', ARGV[3], 'type', ARGV[4], 'headers', ARGV[5], 'body', ARGV[6], 'signed_at', ARGV[7],
  'state', 'queued', 'attempts', 0, 'received_at', now, 'updated_at', now}
if ARGV[11] ~= '' then table.insert(f, 'type_cap') table.insert(f, ARGV[11]) end
local parked = false
if ARGV[8] ~= '' then
  local base = string.sub(ARGV[1], 1, -3)
  local created = ARGV[9] ~= '' and ARGV[9] or now
  local member = string.format('%016d', t[1] * 1000000 + t[2]) .. ':' .. ARGV[2]
  table.insert(f, 'lane') table.insert(f, ARGV[8])
  table.insert(f, 'created') table.insert(f, created)
  table.insert(f, 'member') table.insert(f, member)
  table.insert(f, 'in_flight') table.insert(f, ARGV[10])
  if ARGV[12] ~= '' then table.insert(f, 'interval') table.insert(f, ARGV[12]) end
  local lp = base .. 'lp:' .. ARGV[8]
  redis.call('ZADD', lp, created, member)
  -- Behind as many older ones of its key as may run at once: parked now, as a take
  -- would park it, and put back in the stream when its key frees up.
  if redis.call('ZRANK', lp, member) >= tonumber(ARGV[10]) then
    redis.call('ZADD', base .. 'lw:' .. ARGV[8], created, member)
    redis.call('INCR', base .. 'parked')
    parked = true
  end
end
if not parked then
  table.insert(f, 'entry') table.insert(f, redis.call('XADD', KEYS[1], '*', 'key', ARGV[2]))
end
redis.call('HSET', rec, unpack(f))
return 1
";

/// ARGV: prefix, consumer, lease ms, then one lease token per delivery wanted. Moves
/// due retries (and deliveries a key's rate held back) into the stream, then takes up
/// to as many deliveries as it has tokens, one after the other (one call for a batch:
/// the script's own cost is paid once), each taking over an expired lease (XCLAIM) or
/// the next new entry (read by XREADGROUP, as many at once as tokens are left), and
/// parking each one its order, or a pause of its type, does not let run yet. Answers
/// the deliveries taken, in the tokens' order; `again` when it parked many and took
/// none; nil when nothing is due.
const TAKE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, key in ipairs(due) do
  redis.call('ZREM', KEYS[2], key)
  local rec = ARGV[1] .. key
  local state = redis.call('HGET', rec, 'state')
  if state == 'queued' then redis.call('DECR', base .. 'parked_rate') end
  if redis.call('HDEL', rec, 'releases') == 1 then
    -- A retry that released its key takes its place in the key's order again.
    local o = order_of(rec)
    if o[1] then redis.call('ZADD', base .. 'lp:' .. o[1], o[7], o[2]) end
  end
  if state == 'retrying' or state == 'queued' then
    redis.call('HSET', rec, 'entry', redis.call('XADD', KEYS[1], '*', 'key', key))
  end
end
-- Entries a call reads or claims, all its takes together: 64 more than it may take,
-- so that parking a busy key's backlog never holds the server long.
local budget = 64 + #ARGV - 3
-- Asked once a call: nothing in it changes them but its own leases, due after now.
local expired_left = true
local any_paused = redis.call('SCARD', base .. 'paused') > 0
-- A record's order (o[1..7]), then its state, entry, attempts and what a take answers
-- (o[8..17]), in one read.
local function read(rec)
  return order_of(rec, 'state', 'entry', 'attempts', 'id', 'type', 'headers', 'body', 'signed_at', 'last_error',
    'received_at')
end
-- Entries read from the stream and not yet looked at, oldest first, and the next one.
-- A read asks for no more than there are tokens left, and each entry read either
-- takes a token or is parked or dropped, so none is left unread when the call ends:
-- an entry read and left would be pending under no lease, a lost delivery.
local entries, next_entry = {}, 1
local tokens_left = #ARGV - 3
-- The new leases of the deliveries taken from the stream, as score and key pairs for
-- one `ZADD` when the call ends: nothing reads the lease set after the first stream
-- read of a call (the expired leases are looked for until none is left, before it). A
-- lease taken over is set at once, for the next look.
local leases = {}
-- One delivery under the lease `token`: its fields, `again` or false.
local function take_one(token)
  local key, rec, o
  local parked, claimed = 0, false
  while budget > 0 or next_entry <= #entries do
    budget = budget - 1
    local expired = {}
    if expired_left then
      expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1)
      expired_left = #expired > 0
    end
    if #expired > 0 then
      key = expired[1]
      rec = ARGV[1] .. key
      o = read(rec)
      if o[9] and o[8] == 'running' then
        redis.call('XCLAIM', KEYS[1], 'hookroute', ARGV[2], 0, o[9], 'JUSTID')
        claimed = true
        break
      end
      redis.call('ZREM', KEYS[5], key)
      key, o = nil, nil
    else
      if next_entry > #entries then
        local batch = redis.call('XREADGROUP', 'GROUP', 'hookroute', ARGV[2], 'COUNT', math.min(tokens_left, budget + 1),
          'STREAMS', KEYS[1], '>')
        if not batch then return false end
        entries, next_entry = batch[1][2], 1
      end
      local entry = entries[next_entry][1]
      key = entries[next_entry][2][2]
      next_entry = next_entry + 1
      rec = ARGV[1] .. key
      o = read(rec)
      local current = o[9] == entry and (o[8] == 'queued' or o[8] == 'retrying')
      local why, at
      if current then
        if any_paused and redis.call('SISMEMBER', base .. 'paused', o[6]) == 1 then
          why = 'paused'
        else
          why, at = blocked(o, key)
        end
        if not why then break end
      end
      -- An entry its record no longer points at, or one parked until its order allows.
      redis.call('XACK', KEYS[1], 'hookroute', entry)
      redis.call('XDEL', KEYS[1], entry)
      if why then
        redis.call('HDEL', rec, 'entry')
        park(o, key, why, at)
        parked = parked + 1
      end
      key, o = nil, nil
    end
  end
  if not key then
    if parked > 0 then return 'again' end
    return false
  end
  tokens_left = tokens_left - 1
  local attempts = tonumber(o[10]) + 1
  redis.call('HSET', rec, 'state', 'running', 'token', token, 'updated_at', now, 'attempts', attempts)
  local until_ = now + tonumber(ARGV[3])
  if claimed then
    redis.call('ZADD', KEYS[5], until_, key)
  else
    leases[#leases + 1] = until_
    leases[#leases + 1] = key
  end
  local superseded = 0
  if o[1] then
    redis.call('ZADD', base .. 'lr:' .. o[1], until_, key)
    if o[4] then
      local ls = base .. 'ls:' .. o[1]
      redis.call('HSET', ls, 'start', now)
      if redis.call('PTTL', ls) < 0 then redis.call('PEXPIRE', ls, 86400000) end
    end
    local done = redis.call('ZSCORE', base .. 'ld:' .. o[1], 'done')
    if done and tonumber(done) > tonumber(o[7]) then superseded = 1 end
  end
  if o[5] then redis.call('ZADD', base .. 'tr:' .. o[6], until_, key) end
  return {key, o[11], o[12], o[13], o[14], o[15], attempts, o[16] or '', o[17], o[16] and 1 or 0, o[1] or '',
    o[7] or o[17], superseded}
end
local taken = {}
for i = 4, #ARGV do
  local one = take_one(ARGV[i])
  -- Nothing due, or only deliveries that may not run yet: the batch ends there.
  if not one then break end
  if one == 'again' then
    if #taken == 0 then return 'again' end
    break
  end
  taken[#taken + 1] = one
end
if #taken == 0 then return false end
if #leases > 0 then redis.call('ZADD', KEYS[5], unpack(leases)) end
return taken
";

/// Whether a lease `token` holds a record read with `order_of(rec, 'token', 'state',
/// 'entry')`, and taking a lease off.
const LEASES: &str = r"
local function holds(o, token)
  return o[8] == token and o[9] == 'running'
end
-- Takes the record's stream entry off the stream and its lease off the lease set.
local function unlease(rec, key, entry)
  redis.call('XACK', KEYS[1], 'hookroute', entry)
  redis.call('XDEL', KEYS[1], entry)
  redis.call('ZREM', KEYS[5], key)
  redis.call('HDEL', rec, 'token', 'entry')
end
";

/// ARGV: prefix, key, token. Checks the lease, then leaves `rec` and its order `o`
/// (and its lease's fields) for the caller.
const HELD: &str = r"
local rec = ARGV[1] .. ARGV[2]
local o = order_of(rec, 'token', 'state', 'entry')
if not holds(o, ARGV[3]) then return 0 end
";

/// Takes the lease of `HELD`'s record off.
const UNLEASE: &str = "unlease(rec, ARGV[2], o[10])\n";

/// ARGV[4]: the new lease in ms.
const RENEW: &str = r"
local until_ = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[5], until_, ARGV[2])
if o[1] then redis.call('ZADD', base .. 'lr:' .. o[1], 'XX', until_, ARGV[2]) end
if o[5] then redis.call('ZADD', base .. 'tr:' .. o[6], 'XX', until_, ARGV[2]) end
return 1
";

/// ARGV: prefix, then each lease's key, token and TTL in ms. Completes the leases in
/// turn (one call for a batch: the script's own cost is paid once), answering 1 for
/// each one done and 0 for each lease lost. What a batch writes to the stream and the
/// lease, done and payload sets goes in one command each, after the loop (each command
/// a script runs costs it about a microsecond besides its own work: a drain's scripts
/// went from 35 to 28.5 µs a delivery). Done records expire with their TTL; the
/// done set is scored by expiry and trimmed here. The payloads set (done keys by
/// completion, for `FORGET_PAYLOADS`) loses here the keys whose records have expired.
///
/// The records past their TTL go here too, a few with each call: each is read once
/// (`EXISTS`), which makes Redis delete an expired key as it would on any read, and
/// never a live one. Left to Redis's expiry cycle they went in bursts: the cycle works
/// hard only once many of the keys it samples have expired, then deletes them in
/// slices of up to 25 ms, and every request waits behind it (a soak's p99 went from
/// 2–3 ms to 6–25 ms when the first records expired, 330,000 of them piled up;
/// `bench/soak`). A record expires at its score (`PEXPIREAT`), and only those past
/// [`PAST_TTL`] are read. (With `PEXPIRE`, which counts from when the command ran,
/// later in the script, the soak's completions caught almost none.) At
/// most 64 more than twice the call's completions: a backlog goes soon, and no call
/// takes long.
const COMPLETE: &str = r"
local answers, done, longest = {}, 0, 0
-- The stream entries, lease-set members and done-set and payload-set pairs of the
-- batch, each written by one command after the loop: nothing in the loop reads them.
local entries, keys, expiring, completed = {}, {}, {}, {}
for i = 2, #ARGV - 2, 3 do
  local key, ttl = ARGV[i], tonumber(ARGV[i + 2])
  local rec = ARGV[1] .. key
  local o = order_of(rec, 'token', 'state', 'entry')
  if holds(o, ARGV[i + 1]) then
    if o[10] then entries[#entries + 1] = o[10] end
    keys[#keys + 1] = key
    redis.call('HDEL', rec, 'token', 'entry')
    freed(o, key, true)
    if o[1] then
      local ld = base .. 'ld:' .. o[1]
      redis.call('ZADD', ld, 'GT', o[7], 'done')
      redis.call('PEXPIRE', ld, ttl)
    end
    -- The record expires at its score in the done set, to the millisecond.
    local expires = now + ttl
    redis.call('HSET', rec, 'state', 'done', 'updated_at', now)
    redis.call('PEXPIREAT', rec, expires)
    expiring[#expiring + 1] = expires
    expiring[#expiring + 1] = key
    completed[#completed + 1] = now
    completed[#completed + 1] = key
    done, longest = done + 1, math.max(longest, ttl)
    answers[#answers + 1] = 1
  else
    answers[#answers + 1] = 0
  end
end
if done > 0 then
  if #entries > 0 then
    redis.call('XACK', KEYS[1], 'hookroute', unpack(entries))
    redis.call('XDEL', KEYS[1], unpack(entries))
  end
  redis.call('ZREM', KEYS[5], unpack(keys))
  redis.call('ZADD', KEYS[4], unpack(expiring))
  redis.call('ZADD', KEYS[6], unpack(completed))
  count_minute('done:', done)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', past_ttl, 'LIMIT', 0, 64 + 2 * done)
  for _, key in ipairs(expired) do redis.call('EXISTS', ARGV[1] .. key) end
  if #expired > 0 then redis.call('ZREM', KEYS[4], unpack(expired)) end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - longest)
end
return answers
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

/// The record's history with a line for its failed attempt (`retry` or `dead`) and
/// `error` (see `HistoryLine`).
const REMEMBERED: &str = r#"
local function remembered(rec, outcome, error)
  count_minute('failed:')
  -- At most 1,000 bytes of the error, cut between two UTF-8 characters.
  if #error > 1000 then
    local cut = 1001
    while cut > 1 and string.byte(error, cut) >= 128 and string.byte(error, cut) < 192 do cut = cut - 1 end
    error = string.sub(error, 1, cut - 1)
  end
  local f = redis.call('HMGET', rec, 'history', 'attempts')
  return (f[1] or '') .. string.format('{"n":%d,"at":%d,"o":"%s","error":%s}\n', tonumber(f[2]), now, outcome,
    cjson.encode(error))
end
"#;

/// ARGV[4]: the delay in ms, ARGV[5]: the error, ARGV[6]: `1` when the retry releases
/// its ordering key (it leaves the key's pending set until due).
const RETRY: &str = r"
freed(o, ARGV[2], false)
if ARGV[6] == '1' and o[1] then
  redis.call('ZREM', base .. 'lp:' .. o[1], o[2])
  redis.call('HSET', rec, 'releases', 1)
  behind(o, ARGV[2])
  unpark_lane(o)
end
redis.call('HSET', rec, 'state', 'retrying', 'last_error', ARGV[5], 'updated_at', now,
  'history', remembered(rec, 'retry', ARGV[5]))
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
return 1
";

/// ARGV[4]: the error.
const DEAD: &str = r"
freed(o, ARGV[2], true)
redis.call('HSET', rec, 'state', 'dead', 'last_error', ARGV[4], 'updated_at', now,
  'history', remembered(rec, 'dead', ARGV[4]))
redis.call('HSET', rec, 'dead_entry', redis.call('XADD', KEYS[3], '*', 'key', ARGV[2], 'error', ARGV[4]))
return 1
";

const RELEASE: &str = r"
freed(o, ARGV[2], false)
local attempts = redis.call('HINCRBY', rec, 'attempts', -1)
redis.call('HSET', rec, 'state', attempts > 0 and 'retrying' or 'queued', 'updated_at', now)
redis.call('HSET', rec, 'entry', redis.call('XADD', KEYS[1], '*', 'key', ARGV[2]))
return 1
";

/// ARGV: prefix, key.
const REPLAY: &str = r#"
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
redis.call('HSET', rec, 'attempts', 0, 'updated_at', now, 'history', (redis.call('HGET', rec, 'history') or '')
  .. string.format('{"replayed":%d,"at":%d,"from":"%s"}\n', tonumber(redis.call('HGET', rec, 'attempts')), now, state))
local o = order_of(rec)
if o[1] and (state == 'dead' or state == 'done') then redis.call('ZADD', base .. 'lp:' .. o[1], o[7], o[2]) end
if state ~= 'queued' then
  redis.call('HSET', rec, 'state', 'queued', 'entry', redis.call('XADD', KEYS[1], '*', 'key', ARGV[2]))
end
return 1
"#;

/// ARGV: prefix, event type, at most this many. Resumes the type (`<prefix>paused`,
/// a set) and puts back in the stream up to that many of the deliveries a take parked
/// while it was paused (`<prefix>pw:<type>`): {was paused, how many put back}.
const RESUME: &str = r"
local resumed = redis.call('SREM', base .. 'paused', ARGV[2])
local back = 0
for _ = 1, tonumber(ARGV[3]) do
  local key = redis.call('LPOP', base .. 'pw:' .. ARGV[2])
  if not key then break end
  redis.call('DECR', base .. 'parked')
  requeue(key)
  back = back + 1
end
return {resumed, back}
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
local parked = tonumber(redis.call('GET', base .. 'parked') or '0')
local parked_rate = tonumber(redis.call('GET', base .. 'parked_rate') or '0')
local queued = redis.call('XLEN', KEYS[1]) - running + parked + parked_rate
local oldest = -1
local first = redis.call('XRANGE', KEYS[1], '(' .. last_delivered(), '+', 'COUNT', 1)
if #first > 0 then oldest = now - tonumber(string.match(first[1][1], '^(%d+)')) end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #due > 0 then oldest = math.max(oldest, now - tonumber(due[2])) end
return {queued, running, redis.call('ZCARD', KEYS[2]) - parked_rate, redis.call('ZCOUNT', KEYS[4], now, '+inf'),
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

/// ARGV: prefix, age ms, the most entries to read, then where the last call stopped:
/// a score (`-inf` at first) and how many entries kept at that score to pass over.
/// Deletes the done records last updated at least `age` ago, reading the done set in
/// order of expiry, a bounded slice a call: one call over the whole set held the
/// server for 1.95 s at 300,000 records, and every receiver and worker waited behind
/// it. A record past its TTL is read once (`EXISTS`), so that Redis deletes it as
/// `COMPLETE` has it do, not in a burst of its expiry cycle. Answers the records
/// purged, the entries read, and where to go on from.
const PURGE_DONE: &str = r"
local cutoff, limit = now - tonumber(ARGV[2]), tonumber(ARGV[3])
local entries = redis.call('ZRANGEBYSCORE', KEYS[4], ARGV[4], '+inf', 'WITHSCORES', 'LIMIT', tonumber(ARGV[5]), limit)
local purged, last, kept = 0, ARGV[4], tonumber(ARGV[5])
for i = 1, #entries, 2 do
  local key, score = entries[i], entries[i + 1]
  local rec = ARGV[1] .. key
  local gone = false
  if tonumber(score) <= past_ttl then
    redis.call('EXISTS', rec)
    gone = true
  else
    local f = redis.call('HMGET', rec, 'updated_at', 'state')
    if not f[2] then
      gone = true
    elseif tonumber(f[1] or '0') <= cutoff then
      if f[2] == 'done' then
        redis.call('DEL', rec)
        purged = purged + 1
      end
      gone = true
    end
  end
  if gone then redis.call('ZREM', KEYS[4], key) end
  if score ~= last then last, kept = score, 0 end
  if not gone then kept = kept + 1 end
end
return {purged, #entries / 2, last, kept}
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
    pub(super) resume: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_now = |body: &str| Script::new(&format!("{NOW}{body}"));
        let ordered = |body: &str| Script::new(&format!("{NOW}{ORDER}{body}"));
        let held = |body: &str| Script::new(&format!("{NOW}{MINUTES}{ORDER}{LEASES}{HELD}{UNLEASE}{body}"));
        Self {
            enqueue: with_now(ENQUEUE),
            take: ordered(TAKE),
            renew: Script::new(&format!("{NOW}{ORDER}{LEASES}{HELD}{RENEW}")),
            complete: Script::new(&format!("{NOW}{PAST_TTL}{MINUTES}{ORDER}{LEASES}{COMPLETE}")),
            retry: held(&format!("{REMEMBERED}{RETRY}")),
            dead: held(&format!("{REMEMBERED}{DEAD}")),
            release: held(RELEASE),
            replay: ordered(REPLAY),
            stats: ordered(&format!("{LAST_DELIVERED}{STATS}")),
            list: with_now(&format!("{LAST_DELIVERED}{LIST}")),
            purge_done: with_now(&format!("{PAST_TTL}{PURGE_DONE}")),
            forget_payloads: with_now(FORGET_PAYLOADS),
            resume: ordered(RESUME),
        }
    }
}
