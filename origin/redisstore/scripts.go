package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches only keys of one poll, which share the hash tag
// {<poll id>}, so each runs on one Cluster node. Keys not declared in KEYS
// (the dedupe buckets) are in the same slot as KEYS[1], which Redis allows.

// applyScript applies one poll's part of a batch.
//
//	KEYS[1] poll hash, KEYS[2] counts hash, KEYS[3] replay key
//	ARGV[1] now (ms)          ARGV[2] replay TTL (ms)
//	ARGV[3] bucket count the caller assumed
//	ARGV[4] min vote time     ARGV[5] max vote time (ms)
//	ARGV[6] vote times, 20 decimal digits each, in vote order
//	ARGV[7..] three per vote: bucket key, voter field (8 bytes), choices (raw bytes)
//
// Returns the stored receipt string "a,d,r1,...,r5" when the batch was seen
// before; {-1, buckets} when the caller's bucket count is stale (nothing
// changed); otherwise {accepted, duplicate, r1..r5} with r indexed like
// shared.Reasons.
//
// When the whole batch's time range lies inside the poll's window (the usual
// case) the per-vote times are not even parsed.
var applyScript = redis.NewScript(`
local call = redis.call
local rep = call('GET', KEYS[3])
if rep then return rep end
local m = call('HMGET', KEYS[1], 'state', 'n', 'kind', 'max', 'opened_at', 'closed_at', 'opens_at', 'closes_at', 'buckets')
local nv = (#ARGV - 6) / 3
local acc, dup, r1, r2, r3, r4, r5 = 0, 0, 0, 0, 0, 0, 0
if not m[1] then
  r1 = nv
else
  if m[9] ~= ARGV[3] then return {-1, tonumber(m[9])} end
  local state, n, multi, max = m[1], tonumber(m[2]), m[3] == 'multi', tonumber(m[4])
  local opened, closed = tonumber(m[5]) or 0, tonumber(m[6]) or 0
  local opens, closes = tonumber(m[7]) or 0, tonumber(m[8]) or 0
  -- not open if at < lo; closed if at >= hi
  local lo = math.max(opened, opens)
  local hi = math.huge
  if closes > 0 then hi = closes end
  if state == 'draft' then
    lo = math.huge
  elseif state == 'closed' then
    if opened == 0 or closed == 0 then lo, hi = -math.huge, -math.huge
    elseif closed < hi then hi = closed end
  end
  local fut = tonumber(ARGV[1]) + 60000
  local mx = tonumber(ARGV[5])
  local slow = not (tonumber(ARGV[4]) >= lo and mx < hi and mx <= fut)
  local ats = ARGV[6]
  local valid = {}
  for o = 0, n - 1 do valid[string.char(o)] = o end
  local cnt = {}
  local p = 1
  for i = 7, #ARGV, 3 do
    local ok = true
    if slow then
      local at = tonumber(string.sub(ats, p, p + 19))
      p = p + 20
      if at > fut then r5 = r5 + 1; ok = false
      elseif at < lo then r2 = r2 + 1; ok = false
      elseif at >= hi then r3 = r3 + 1; ok = false end
    end
    if ok then
      local c = ARGV[i + 2]
      local o = valid[c]
      if not o and multi and #c > 1 and #c <= max then
        local seen = {}
        o = {}
        for j = 1, #c do
          local x = valid[string.sub(c, j, j)]
          if not x or seen[x] then o = nil; break end
          seen[x] = true
          o[j] = x
        end
      end
      if not o then
        r4 = r4 + 1
      elseif call('HSETNX', ARGV[i], ARGV[i + 1], c) == 1 then
        acc = acc + 1
        if type(o) == 'number' then
          cnt[o] = (cnt[o] or 0) + 1
        else
          for _, x in ipairs(o) do cnt[x] = (cnt[x] or 0) + 1 end
        end
      else
        dup = dup + 1
      end
    end
  end
  if acc > 0 then
    local total = 0
    for o, c in pairs(cnt) do
      redis.call('HINCRBY', KEYS[2], o, c)
      total = total + c
    end
    redis.call('HINCRBY', KEYS[2], '_total', total)
    redis.call('HINCRBY', KEYS[2], '_voters', acc)
    redis.call('HINCRBY', KEYS[2], '_v', 1)
  end
end
local res = {acc, dup, r1, r2, r3, r4, r5}
redis.call('SET', KEYS[3], table.concat(res, ','), 'PX', ARGV[2])
return res
`)

// createScript stores a new poll unless one with the id exists.
//
//	KEYS[1] poll hash, KEYS[2] counts hash; ARGV[1] option count; ARGV[2..] field/value pairs
//
// Returns 1 when created, 0 when the poll exists.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('HSET', KEYS[2], '_v', 0, '_n', ARGV[1])
return 1
`)

// updateScript replaces a poll's fields if its version is still the one
// the caller read (optimistic concurrency).
//
//	KEYS[1] poll hash, KEYS[2] counts hash
//	ARGV[1] expected version, ARGV[2] "1" if options or kind change,
//	ARGV[3] option count, ARGV[4..] field/value pairs
//
// Returns "ok", "notfound", "stale" or "conflict" (votes exist).
var updateScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return 'notfound' end
if v ~= ARGV[1] then return 'stale' end
if ARGV[2] == '1' then
  if tonumber(redis.call('HGET', KEYS[2], '_voters') or '0') > 0 then return 'conflict' end
  redis.call('HSET', KEYS[2], '_n', ARGV[3])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
return 'ok'
`)

// dropScript deletes a poll's votes (all dedupe buckets and counts) and,
// when ARGV[2] is "delete", the poll itself; otherwise (reset) it keeps the
// poll, bumps its version and bumps the results version so snapshots change.
//
//	KEYS[1] poll hash, KEYS[2] counts hash; ARGV[1] bucket key prefix; ARGV[2] "delete" or "reset"
//
// Returns 0 if the poll does not exist, else 1.
var dropScript = redis.NewScript(`
local b = redis.call('HGET', KEYS[1], 'buckets')
if not b then return 0 end
local ks = {}
for i = 0, tonumber(b) - 1 do
  ks[#ks + 1] = ARGV[1] .. string.format('%x', i)
  if #ks == 512 then redis.call('UNLINK', unpack(ks)); ks = {} end
end
if #ks > 0 then redis.call('UNLINK', unpack(ks)) end
if ARGV[2] == 'delete' then
  redis.call('UNLINK', KEYS[1], KEYS[2])
  return 1
end
local c = redis.call('HMGET', KEYS[2], '_v', '_n')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], '_v', (tonumber(c[1]) or 0) + 1, '_n', c[2] or redis.call('HGET', KEYS[1], 'n'))
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
`)
