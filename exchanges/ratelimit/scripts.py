"""The limiter's Redis scripts: every decision is one atomic round trip on Redis's clock.

Keys are built inside the scripts from the base names passed in KEYS (window keys carry the
window start), all under one hash tag per limiter, so one limiter stays on one slot.
"""

# ACQUIRE: find the earliest time T >= now at which every pool has room for this request
# (a reservation: FIFO by arrival at Redis, no polling, no thundering herd), count it there,
# and answer how long to wait.
#
# KEYS[1]  block key (hash: until ms, kind 'pause'|'ban'), shared by all processes on the IP
# KEYS[2]  due zset (reservations not yet due: queue depth)
# ARGV[1]  venue clock offset ms (venue minus Redis)
# ARGV[2]  max wait ms (beyond: refuse)
# ARGV[3]  guard ms (a request sent this close to a window end counts in the next one too)
# ARGV[4]  ticket id (for the due zset)
# ARGV[5]  the pools, packed (one argument is far cheaper to send than four per pool):
#          "kind limit param amount key;..." with kind 'f' (param: window ms) or 'd' (param:
#          decay per ms); pools with nothing to count are left out by the caller.
#
# Returns {code, wait_ms, detail}:
#   0 granted, wait_ms until it may be sent (0 = now)
#   1 blocked by a pause or ban: detail = kind, wait_ms = until it lifts (nothing counted)
#   2 refused: it could not be sent within max wait (nothing counted); detail = pool key
ACQUIRE = """
local t = redis.call('TIME')
local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local offset = tonumber(ARGV[1])
local now = rnow + offset
local max_wait = tonumber(ARGV[2])
local guard = tonumber(ARGV[3])

local block_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if block_until > rnow then
  return {1, block_until - rnow, redis.call('HGET', KEYS[1], 'kind') or 'pause'}
end

local kinds, limits, params, amounts, keys = {}, {}, {}, {}, {}
local n = 0
for kind, limit, param, amount, key in string.gmatch(ARGV[5], '(%a) (%S+) (%S+) (%S+) ([^;]+)') do
  n = n + 1
  kinds[n] = kind
  limits[n] = tonumber(limit)
  params[n] = tonumber(param)
  amounts[n] = tonumber(amount)
  keys[n] = key
end

-- Fast path: nothing queued ahead, every pool is a fixed window with room now, and the
-- request is not near a window's end. Count optimistically; undo if any pool overflows.
if redis.call('ZCOUNT', KEYS[2], now, '+inf') == 0 then
  local done, fast = {}, true
  for i = 1, n do
    if kinds[i] ~= 'f' then fast = false; break end
    local w = params[i]
    local start = math.floor(now / w) * w
    if now + guard >= start + w then fast = false; break end
    local key = keys[i] .. ':' .. start
    local v = tonumber(redis.call('INCRBYFLOAT', key, amounts[i]))
    done[#done + 1] = i
    if v == amounts[i] then redis.call('PEXPIREAT', key, start + 2 * w + 60000 - offset) end
    if v > limits[i] then fast = false; break end
  end
  if fast then return {0, 0, ''} end
  for _, i in ipairs(done) do
    local w = params[i]
    redis.call('INCRBYFLOAT', keys[i] .. ':' .. (math.floor(now / w) * w), -amounts[i])
  end
end

local levels = {}
local function used_in(i, start)
  return tonumber(redis.call('GET', keys[i] .. ':' .. start) or '0')
end
local function decay_level(i)
  if levels[i] == nil then
    local h = redis.call('HMGET', keys[i], 'level', 'ts')
    local level = tonumber(h[1] or '0')
    local ts = tonumber(h[2] or tostring(now))
    levels[i] = math.max(0, level - (now - ts) * params[i])
  end
  return levels[i]
end

-- Earliest T at which pool i has room, given a candidate T.
local function earliest(i, T)
  if kinds[i] == 'f' then
    local w = params[i]
    local start = math.floor(T / w) * w
    for _ = 1, 100000 do
      local room = used_in(i, start) + amounts[i] <= limits[i]
      if room and (T + guard) >= start + w then
        room = used_in(i, start + w) + amounts[i] <= limits[i]
      end
      if room then return T end
      start = start + w
      T = start
      if T - now > max_wait then return T end
    end
    return T
  else
    local need = decay_level(i) + amounts[i] - limits[i]
    if need <= 0 then return T end
    return math.max(T, now + math.ceil(need / params[i]))
  end
end

local T = now
for _ = 1, 1000 do
  local moved = false
  for i = 1, n do
    local e = earliest(i, T)
    if e > T then T = e; moved = true end
    if T - now > max_wait then return {2, T - now, keys[i]} end
  end
  if not moved then break end
end

local function count(key, amount, expire_at)
  if tonumber(redis.call('INCRBYFLOAT', key, amount)) == amount then
    redis.call('PEXPIREAT', key, expire_at)  -- a new window key: give it an end
  end
end

for i = 1, n do
  if kinds[i] == 'f' then
    local w = params[i]
    local start = math.floor(T / w) * w
    count(keys[i] .. ':' .. start, amounts[i], start + 2 * w + 60000 - offset)
    if (T + guard) >= start + w then
      count(keys[i] .. ':' .. (start + w), amounts[i], start + 3 * w + 60000 - offset)
    end
  else
    redis.call('HSET', keys[i], 'level', decay_level(i) + amounts[i], 'ts', now)
    redis.call('PEXPIRE', keys[i], math.ceil((limits[i] * 2) / params[i]) + 60000)
  end
end
if T > now then
  redis.call('ZADD', KEYS[2], T, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('PEXPIRE', KEYS[2], T - now + 60000)
end
return {0, T - now, ''}
"""

# ADOPT: the venue reported its own count for the current window; keep the higher number.
# KEYS[1] pool base; ARGV[1] offset ms, ARGV[2] window ms, ARGV[3] reported value
ADOPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local start = math.floor(now / w) * w
local key = KEYS[1] .. ':' .. start
local ours = tonumber(redis.call('GET', key) or '0')
local theirs = tonumber(ARGV[3])
if theirs > ours then
  redis.call('SET', key, theirs, 'PXAT', start + 2 * w + 60000 - tonumber(ARGV[1]))
  return 1
end
return 0
"""

# ADOPT_DECAY: the venue reported a decaying counter's level (or that it is full); keep the
# higher of its level and ours (ours may hold reservations not yet due: never lower it).
# KEYS[1] pool key (hash level, ts); ARGV[1] offset ms, ARGV[2] decay per ms, ARGV[3] level
ADOPT_DECAY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local decay = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'level', 'ts')
local ts = tonumber(h[2] or tostring(now))
local ours = math.max(0, tonumber(h[1] or '0') - (now - ts) * decay)
local theirs = tonumber(ARGV[3])
if theirs > ours then
  redis.call('HSET', KEYS[1], 'level', theirs, 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil((theirs * 2) / decay) + 60000)
  return 1
end
return 0
"""

# BLOCK: stop every process on this IP until a time (429 Retry-After: 'pause'; 418: 'ban').
# KEYS[1] block hash, KEYS[2] events hash; ARGV[1] seconds, ARGV[2] kind, ARGV[3] status
BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untl = now + math.ceil(tonumber(ARGV[1]) * 1000)
local current = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if untl > current then
  redis.call('HSET', KEYS[1], 'until', untl, 'kind', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], untl + 1000)
end
redis.call('HSET', KEYS[2], 'last_' .. ARGV[3], now)
redis.call('HINCRBY', KEYS[2], 'count_' .. ARGV[3], 1)
return untl
"""
