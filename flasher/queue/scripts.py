"""The queue's Lua scripts. Each runs atomically in Redis, reads time from Redis (``TIME``) and touches only the
keys it receives in ``KEYS``: the lease scripts (:data:`CHECK`, :data:`EXTEND`, :data:`ACK`) the five of
:attr:`~flasher.queue.keys.QueueKeys.lease` after :data:`LEASE_PRELUDE`; every other script all of
:attr:`~flasher.queue.keys.QueueKeys.all` after :data:`PRELUDE`.

Replies are arrays whose first element says what happened; task records travel as the JSON text kept in the
``tasks`` hash, with the ``holders`` value and lease expiry beside them when in flight. The hot path (claim,
check, extend, ack) decodes no JSON. Scripts that end a lease (ack, fail, release) leave a mark in ``done``:
the same call retried after its reply was lost is recognised and answered with the first call's outcome.
"""

from __future__ import annotations

from typing import Final

#: Keys 1..5 and what the lease scripts need: Redis' clock, the holder of a task, the lease test.
LEASE_PRELUDE: Final = r"""
local META, TASKS, HOLDERS, LEASES, DONE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function clock()  -- Redis time: milliseconds, microseconds
  local t = redis.call('TIME')
  local sec, usec = tonumber(t[1]), tonumber(t[2])
  return sec * 1000 + math.floor(usec / 1000), sec * 1000000 + usec
end

-- token, cancel requested, owner of the server's in-flight task; nil when none is in flight
local function holder(server)
  local value = redis.call('HGET', HOLDERS, server)
  if not value then return nil end
  local token, cancel, owner = string.match(value, '^(%d+) (%d) (.*)$')
  return token, cancel == '1', owner
end

-- While (token, epoch) holds the server's task: the lease's expiry (ms) and whether a cancel was requested;
-- else nil, nil and why not.
local function held(server, token, epoch, now)
  if redis.call('HGET', META, 'epoch') ~= epoch then
    return nil, nil, 'Redis lost its data since the claim (epoch changed)'
  end
  local current, cancel = holder(server)
  if current ~= token then
    if current then return nil, nil, 'a newer claim (token ' .. current .. ') holds the task' end
    local raw = redis.call('HGET', TASKS, server)
    if not raw then return nil, nil, 'the task is no longer in Redis' end
    local rec = cjson.decode(raw)
    return nil, nil, "the server's task is now " .. rec.task_id .. ' (' .. rec.state .. ')'
  end
  local expires = tonumber(redis.call('ZSCORE', LEASES, server))
  if not expires or expires <= now then return nil, nil, 'the lease expired' end
  return expires, cancel
end

-- The outcome recorded when this lease already ended through `op` (a retry after a lost reply), else nil.
local function ended_by(server, token, epoch, op)
  local mark = redis.call('HGET', DONE, server)
  if not mark then return nil end
  local head = epoch .. ' ' .. token .. ' ' .. op .. ' '
  if string.sub(mark, 1, #head) == head then return string.sub(mark, #head + 1) end
  return nil
end

local function end_lease(server, token, epoch, op, outcome)
  redis.call('ZREM', LEASES, server)
  redis.call('HDEL', HOLDERS, server)
  redis.call('HSET', DONE, server, epoch .. ' ' .. token .. ' ' .. op .. ' ' .. outcome)
end

-- The task of (token, epoch)'s lease succeeded: remove it. {'ok'}, or {'lost', why}; a repeat after a lost reply
-- is recognised and answered 'ok'.
local function ack(server, token, epoch, now)
  local expires, _, why = held(server, token, epoch, now)
  if not expires then
    if ended_by(server, token, epoch, 'ack') then return {'ok'} end
    return {'lost', why}
  end
  redis.call('HDEL', TASKS, server)
  end_lease(server, token, epoch, 'ack', 'acked')
  return {'ok'}
end
"""

#: All keys: the lease keys, then delayed, dead, dead:fresh and one ready zset per kind; record helpers.
PRELUDE: Final = (
    LEASE_PRELUDE
    + r"""
local DELAYED, DEAD, FRESH_DEAD = KEYS[6], KEYS[7], KEYS[8]
local READY = {}
do
  -- KEYS[9..] are "{prefix}:ready:<kind>"; META is "{prefix}:meta", so a kind starts at #META + 3.
  local start = #META + 3
  for i = 9, #KEYS do READY[string.sub(KEYS[i], start)] = KEYS[i] end
end
local BAND = 1125899906842624  -- 2^50: one score band per priority
local MID = 562949953421312    -- 2^49: orders are offsets from the middle of their band

local function load(server)
  local raw = redis.call('HGET', TASKS, server)
  if not raw then return nil, nil end
  return cjson.decode(raw), raw
end

local function save(server, rec)
  local raw = cjson.encode(rec)
  redis.call('HSET', TASKS, server, raw)
  return raw
end

local function score(rec)
  return (3 - rec.priority) * BAND + MID + rec.order
end

local function make_ready(server, rec)
  rec.state = 'queued'; rec.ready_at = 0
  redis.call('ZADD', READY[rec.kind], score(rec), server)
end

local function make_dead(server, rec, reason, now)
  rec.state = 'dead'; rec.reason = reason; rec.died_at = now; rec.ready_at = 0
  redis.call('ZADD', DEAD, now, server)
  redis.call('SADD', FRESH_DEAD, server)
end

-- A server's task as replies carry it: record (or false), holder value, lease expiry.
local function view(server, raw)
  return raw or false, redis.call('HGET', HOLDERS, server), redis.call('ZSCORE', LEASES, server)
end

local function described(outcome, server, raw)
  return {outcome, view(server, raw)}
end

-- An in-flight task whose lease ran out: back to the queue with one more attempt, or dead.
local function expire(server, now, max_attempts)
  local _, cancel, owner = holder(server)
  redis.call('ZREM', LEASES, server)
  redis.call('HDEL', HOLDERS, server)
  local rec = load(server)
  if not rec or not owner then return end
  rec.attempts = rec.attempts + 1
  local why = 'lease of ' .. owner .. ' expired'
  if cancel then
    make_dead(server, rec, why .. ' after a cancel request', now)
  elseif rec.attempts >= max_attempts then
    make_dead(server, rec, why .. '; attempt ' .. rec.attempts .. ' of ' .. max_attempts, now)
  else
    rec.reason = why
    make_ready(server, rec)
  end
  save(server, rec)
end

-- Requeue up to `limit` expired leases and make up to `limit` due retries claimable; true when more remain.
local function reclaim(now, max_attempts, limit)
  local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
  for _, server in ipairs(expired) do expire(server, now, max_attempts) end
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, limit)
  for _, server in ipairs(due) do
    redis.call('ZREM', DELAYED, server)
    local rec = load(server)
    if rec and rec.state == 'delayed' then
      make_ready(server, rec)
      save(server, rec)
    end
  end
  return #expired == limit or #due == limit
end

-- Lease the next task of the ready queues `queues` (kind -> key) for `worker`, after reclaiming expired leases
-- and due retries: {record, epoch, token, expires}, or false when nothing is claimable.
local function claim(now, now_us, worker, lease_ms, max_attempts, candidate, queues)
  reclaim(now, max_attempts, 64)
  for _ = 1, 64 do  -- the head of the queues, skipping stray members (hand edits) up to 64 times
    local best_key, best_server, best_score
    for _, key in pairs(queues) do
      local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      if head[1] then
        local s = tonumber(head[2])
        if best_score == nil or s < best_score then best_key, best_server, best_score = key, head[1], s end
      end
    end
    if not best_server then return false end
    redis.call('ZREM', best_key, best_server)
    local raw = redis.call('HGET', TASKS, best_server)
    if raw and redis.call('HEXISTS', HOLDERS, best_server) == 0 then
      local meta = redis.call('HMGET', META, 'epoch', 'token')
      local epoch = meta[1] or candidate  -- the first claim after Redis lost its data names the new epoch
      local token = string.format('%.0f', math.max((tonumber(meta[2]) or 0) + 1, now_us))
      local expires = now + lease_ms
      redis.call('HSET', META, 'epoch', epoch, 'token', token)
      redis.call('HSET', HOLDERS, best_server, token .. ' 0 ' .. worker)
      redis.call('ZADD', LEASES, expires, best_server)
      return {raw, epoch, token, expires}
    end
  end
  return false
end

-- The ready queues of the kinds ARGV[first..] (none: every kind).
local function wanted(first)
  if #ARGV < first then return READY end
  local queues = {}
  for i = first, #ARGV do queues[ARGV[i]] = READY[ARGV[i]] end
  return queues
end
"""
)

# ARGV: server, kind, task_id, priority  ->  {outcome, record, holder, lease expiry}
ENQUEUE: Final = r"""
local server, kind, task_id, priority = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local rec, raw = load(server)
if rec then
  if rec.state == 'dead' then
    if rec.task_id == task_id and rec.kind == kind then return described('dead', server, raw) end
    redis.call('ZREM', DEAD, server)
    redis.call('SREM', FRESH_DEAD, server)
  elseif rec.task_id ~= task_id or rec.kind ~= kind then
    return described('held_by_other', server, raw)
  elseif priority <= rec.priority then
    return described('unchanged', server, raw)
  else
    rec.priority = priority
    if rec.state == 'queued' and redis.call('HEXISTS', HOLDERS, server) == 0 then
      redis.call('ZADD', READY[kind], score(rec), server)
    end
    return described('raised', server, save(server, rec))
  end
end
rec = {server_id = server, kind = kind, task_id = task_id, priority = priority, attempts = 0, state = 'queued',
       order = redis.call('HINCRBY', META, 'seq', 1), enqueued_at = clock(), ready_at = 0, died_at = 0,
       reason = ''}
redis.call('HDEL', DONE, server)
make_ready(server, rec)
return {'added', save(server, rec)}
"""

# ARGV: worker, lease_ms, max_attempts, epoch_candidate, kind... (none: every kind)
#   ->  {record, epoch, token, expires} or nil
CLAIM: Final = r"""
local now, now_us = clock()
return claim(now, now_us, ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], wanted(5))
"""

# ARGV: server, token, epoch, worker, lease_ms, max_attempts, epoch_candidate, kind... (none: every kind)
#   ->  {'ok'} or {'lost', why}, then the claim's {record, epoch, token, expires} (nil when nothing is claimable)
# The ack of one lease and the claim of the next, as one worker does them back to back: ACK then CLAIM, in one
# atomic step. The claim happens whatever the ack found (a lost lease is no reason not to take the next task).
ACK_CLAIM: Final = r"""
local now, now_us = clock()
local acked = ack(ARGV[1], ARGV[2], ARGV[3], now)
return {acked, claim(now, now_us, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], wanted(8))}
"""

# ARGV: server, token, epoch, lease_ms  ->  {'ok', expires_ms, cancel, now_ms} or {'lost', why}
EXTEND: Final = r"""
local now = clock()
local expires, cancel, why = held(ARGV[1], ARGV[2], ARGV[3], now)
if not expires then return {'lost', why} end
expires = now + tonumber(ARGV[4])
redis.call('ZADD', LEASES, expires, ARGV[1])
return {'ok', expires, cancel and 1 or 0, now}
"""

# ARGV: server, token, epoch, min_remaining_ms  ->  {'ok', expires_ms, cancel, now_ms} or {'lost', why}
CHECK: Final = r"""
local now = clock()
local expires, cancel, why = held(ARGV[1], ARGV[2], ARGV[3], now)
if not expires then return {'lost', why} end
if expires - now < tonumber(ARGV[4]) then
  return {'lost', 'only ' .. (expires - now) .. ' ms of the lease left, ' .. ARGV[4] .. ' ms needed'}
end
return {'ok', expires, cancel and 1 or 0, now}
"""

# ARGV: server, token, epoch  ->  {'ok'} or {'lost', why}
ACK: Final = r"""
return ack(ARGV[1], ARGV[2], ARGV[3], clock())
"""

# ARGV: server, token, epoch, retry (0|1), delay_ms (-1: backoff), reason, max_attempts, base_ms, cap_ms
#   ->  {'ok', 'retry_scheduled'|'dead'|'ended'} or {'lost', why}
FAIL: Final = r"""
local server, token, epoch = ARGV[1], ARGV[2], ARGV[3]
local now = clock()
local expires, cancel, why = held(server, token, epoch, now)
if not expires then
  local outcome = ended_by(server, token, epoch, 'fail')
  if outcome then return {'ok', outcome} end
  return {'lost', why}
end
local outcome
if ARGV[4] == '0' then
  redis.call('HDEL', TASKS, server)
  outcome = 'ended'
else
  local rec = load(server)
  local reason, max_attempts = ARGV[6], tonumber(ARGV[7])
  rec.attempts = rec.attempts + 1
  if cancel then
    make_dead(server, rec, 'cancelled; ' .. reason, now)
    outcome = 'dead'
  elseif rec.attempts >= max_attempts then
    make_dead(server, rec, reason .. ' (attempt ' .. rec.attempts .. ' of ' .. max_attempts .. ')', now)
    outcome = 'dead'
  else
    rec.reason = reason
    local delay = tonumber(ARGV[5])
    if delay < 0 then delay = math.min(tonumber(ARGV[8]) * 2 ^ (rec.attempts - 1), tonumber(ARGV[9])) end
    delay = math.floor(delay)
    if delay <= 0 then
      make_ready(server, rec)
    else
      rec.state = 'delayed'; rec.ready_at = now + delay
      redis.call('ZADD', DELAYED, rec.ready_at, server)
    end
    outcome = 'retry_scheduled'
  end
  save(server, rec)
end
end_lease(server, token, epoch, 'fail', outcome)
return {'ok', outcome}
"""

# ARGV: server, token, epoch  ->  {'ok'} or {'lost', why}
RELEASE: Final = r"""
local server, token, epoch = ARGV[1], ARGV[2], ARGV[3]
local now = clock()
local expires, cancel, why = held(server, token, epoch, now)
if not expires then
  if ended_by(server, token, epoch, 'release') then return {'ok'} end
  return {'lost', why}
end
local rec = load(server)
if cancel then
  local _, _, owner = holder(server)
  make_dead(server, rec, 'cancelled; released by ' .. owner, now)
else
  rec.order = redis.call('HINCRBY', META, 'front', -1)
  make_ready(server, rec)
end
save(server, rec)
end_lease(server, token, epoch, 'release', 'released')
return {'ok'}
"""

# ARGV: server, task_id ('' = whichever)  ->  {'removed'|'flagged'|'not_found'}
CANCEL: Final = r"""
local server = ARGV[1]
local rec = load(server)
if not rec or rec.state == 'dead' or (ARGV[2] ~= '' and rec.task_id ~= ARGV[2]) then return {'not_found'} end
local token, _, owner = holder(server)
if token then
  redis.call('HSET', HOLDERS, server, token .. ' 1 ' .. owner)
  return {'flagged'}
end
redis.call('ZREM', READY[rec.kind], server)
redis.call('ZREM', DELAYED, server)
redis.call('HDEL', TASKS, server)
return {'removed'}
"""

# ARGV: server  ->  {record, holder, lease expiry} of what was removed (record nil when nothing was there)
DROP: Final = r"""
local server = ARGV[1]
local reply = {view(server, redis.call('HGET', TASKS, server))}
for _, key in pairs(READY) do redis.call('ZREM', key, server) end
redis.call('ZREM', DELAYED, server)
redis.call('ZREM', LEASES, server)
redis.call('ZREM', DEAD, server)
redis.call('SREM', FRESH_DEAD, server)
redis.call('HDEL', TASKS, server)
redis.call('HDEL', HOLDERS, server)
redis.call('HDEL', DONE, server)
return reply
"""

# ARGV: server  ->  {record, holder, lease expiry} (record nil when there is none)
ENTRY: Final = r"""
return {view(ARGV[1], redis.call('HGET', TASKS, ARGV[1]))}
"""

# ARGV: server, task_id  ->  1 when a dead entry of that task was removed, else 0
FORGET_DEAD: Final = r"""
local server = ARGV[1]
local rec = load(server)
if not rec or rec.state ~= 'dead' or rec.task_id ~= ARGV[2] then return 0 end
redis.call('ZREM', DEAD, server)
redis.call('SREM', FRESH_DEAD, server)
redis.call('HDEL', TASKS, server)
return 1
"""

# ARGV: max_attempts, limit  ->  {more (0|1), record...}: records of tasks that died since the last reap
REAP: Final = r"""
local more = reclaim(clock(), tonumber(ARGV[1]), tonumber(ARGV[2]))
local out = {more and 1 or 0}
for _, server in ipairs(redis.call('SMEMBERS', FRESH_DEAD)) do
  local rec, raw = load(server)
  if rec and rec.state == 'dead' then out[#out + 1] = raw end
end
redis.call('DEL', FRESH_DEAD)
return out
"""

# ARGV: (none)  ->  {now_ms, {server, record, ...}, {server, holder, ...}, {server, lease expiry, ...}}
SNAPSHOT: Final = r"""
return {clock(), redis.call('HGETALL', TASKS), redis.call('HGETALL', HOLDERS),
        redis.call('ZRANGE', LEASES, 0, -1, 'WITHSCORES')}
"""

# ARGV: (none)  ->  {record...} of dead tasks, oldest death first
LIST_DEAD: Final = r"""
local out = {}
for _, server in ipairs(redis.call('ZRANGE', DEAD, 0, -1)) do
  local raw = redis.call('HGET', TASKS, server)
  if raw then out[#out + 1] = raw end
end
return out
"""

#: The lease scripts: run with the lease keys only, after :data:`LEASE_PRELUDE`.
LEASE_BODIES: Final[dict[str, str]] = {"extend": EXTEND, "check": CHECK, "ack": ACK}
#: Every other script: run with all keys, after :data:`PRELUDE`.
BODIES: Final[dict[str, str]] = {
    "enqueue": ENQUEUE,
    "claim": CLAIM,
    "ack_claim": ACK_CLAIM,
    "fail": FAIL,
    "release": RELEASE,
    "cancel": CANCEL,
    "drop": DROP,
    "entry": ENTRY,
    "forget_dead": FORGET_DEAD,
    "reap": REAP,
    "snapshot": SNAPSHOT,
    "list_dead": LIST_DEAD,
}
