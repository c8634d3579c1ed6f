package redisstore

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Every script touches only keys of one poll, which share the hash tag
// {<poll id>}, so each runs on one Cluster node. Keys not declared in KEYS
// (the dedupe buckets and ledger chunks) are in the same slot as KEYS[1],
// which Redis allows.

// The apply scripts apply one poll's part of a batch. There is one per
// family of poll kinds, built from one template (applyTemplate) that
// differs only in how a ballot record is parsed, checked and counted:
// applyScript for single, multi and scale polls (the fast path, unchanged
// per vote), rankedScript and wordsScript.
//
//	KEYS[1] poll hash, KEYS[2] counts hash, KEYS[3] replay key
//	words only: KEYS[4] hidden words set, KEYS[5] word counts zset, KEYS[6] words HyperLogLog
//	ARGV[1] now (ms)          ARGV[2] replay TTL (ms)
//	ARGV[3] bucket count the caller assumed
//	ARGV[4] min vote time     ARGV[5] max vote time (ms)
//	ARGV[6] ledger chunk key prefix
//	ARGV[7] vote times, 6 bytes big-endian (ms) each, in vote order
//	ARGV[8] ledger records, one per vote: [n][n choices][voter id bytes 0..7],
//	        for words [n][len][word]…[voter id bytes 0..7]
//	ARGV[9] set members, 19 decimal digits each
//	ARGV[10] bucket set keys, all of the same length
//	ARGV[11] the batch marker record: [0][16 bytes batch id]
//
// Nothing is passed per vote as its own argument: each argument costs Redis
// a protocol parse, an object and a Lua string, more than a string.sub.
//
// Votes a known poll refuses are also added to its counts hash as
// _rej_<reason> (not part of the results version: snapshots do not change).
//
// Returns the stored receipt string "a,d,r1,...,r5" when the batch was seen
// before; {-1, buckets, kind} when the caller's bucket count is stale or
// the poll's kind is not this script's (nothing changed); otherwise
// {accepted, duplicate, r1..r5} with r indexed like shared.Reasons.
//
// When the whole batch's time range lies inside the poll's window (the usual
// case) the per-vote times are not even read. The records of accepted votes
// are appended to the ledger as runs (one string.sub per run of accepted
// votes, not per vote) after the batch marker, with one APPEND; when the
// batch fills its chunk, the chunk is rewritten once (GET, SET) so it keeps
// no growth slack.
const applyTemplate = `
local call, byte, sub = redis.call, string.byte, string.sub
local rep = call('GET', KEYS[3])
if rep then return rep end
local m = call('HMGET', KEYS[1], 'state', 'n', 'kind', 'max', 'opened_at', 'closed_at', 'opens_at', 'closes_at', 'buckets')
local recs, mem, ks = ARGV[8], ARGV[9], ARGV[10]
local nv = #mem / 19
local acc, dup, r1, r2, r3, r4, r5 = 0, 0, 0, 0, 0, 0, 0
if not m[1] then
  r1 = nv
else
  if m[9] ~= ARGV[3] or not ({{KINDS}})[m[3]] then return {-1, tonumber(m[9]), m[3]} end
  local state, nopt, multi, max = m[1], tonumber(m[2]), m[3] == 'multi', tonumber(m[4])
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
  -- a vote may lie as far in the future as a batch signature may (the
  -- signing window, half the replay TTL): an edge whose clock runs ahead
  -- inside the window is judged by that clock, at the edge and here alike
  local fut = tonumber(ARGV[1]) + math.max(60000, tonumber(ARGV[2]) / 2)
  local mx = tonumber(ARGV[5])
  local slow = not (tonumber(ARGV[4]) >= lo and mx < hi and mx <= fut)
  local ats = ARGV[7]
  local kl = #ks / nv
  local cnt, led = {}, {ARGV[11]}
  {{LOCALS}}
  local off, run, mp, kp, ap = 1, 1, 1, 1, 1
  for _ = 1, nv do
    {{PARSE}}
    local ok = true
    if slow then
      local a1, a2, a3, a4, a5, a6 = byte(ats, ap, ap + 5)
      local at = ((((a1 * 256 + a2) * 256 + a3) * 256 + a4) * 256 + a5) * 256 + a6
      if at > fut then r5 = r5 + 1; ok = false
      elseif at < lo then r2 = r2 + 1; ok = false
      elseif at >= hi then r3 = r3 + 1; ok = false end
    end
    if ok then
      local c
      {{CHECK}}
      if not c then
        r4 = r4 + 1; ok = false
      elseif call('SADD', sub(ks, kp, kp + kl - 1), sub(mem, mp, mp + 18)) == 1 then
        acc = acc + 1
        {{COUNT}}
      else
        dup = dup + 1; ok = false
      end
    end
    if not ok then
      if off > run then led[#led + 1] = sub(recs, run, off - 1) end
      run = nxt
    end
    off, mp, kp, ap = nxt, mp + 19, kp + kl, ap + 6
  end
  if acc > 0 then
    if off > run then led[#led + 1] = sub(recs, run, off - 1) end
    local v0 = tonumber(call('HGET', KEYS[2], '_voters') or '0')
    local per = math.min(65536, math.max(4096, 16 * tonumber(m[9])))
    per = per - per / 32 -- see chunkVoters
    local chunk = math.floor(v0 / per)
    local lk = ARGV[6] .. chunk
    call('APPEND', lk, table.concat(led))
    if math.floor((v0 + acc) / per) > chunk then
      call('SET', lk, call('GET', lk))
    end
    {{WRITE}}
    call('HINCRBY', KEYS[2], '_voters', acc)
    call('HINCRBY', KEYS[2], '_v', 1)
  end
  -- refused votes of a known poll, kept for the operator (admin results)
  if r2 > 0 then call('HINCRBY', KEYS[2], '_rej_poll_not_open', r2) end
  if r3 > 0 then call('HINCRBY', KEYS[2], '_rej_poll_closed', r3) end
  if r4 > 0 then call('HINCRBY', KEYS[2], '_rej_invalid_choice', r4) end
  if r5 > 0 then call('HINCRBY', KEYS[2], '_rej_invalid_vote', r5) end
end
local res = {acc, dup, r1, r2, r3, r4, r5}
call('SET', KEYS[3], table.concat(res, ','), 'PX', ARGV[2])
return res
`

// maxTableWords is the most words a words poll's count set holds (see
// docs/API.md, "Words polls: memory and moderation").
const maxTableWords = 50000

func applySource(kinds, locals, parse, check, count, write string) string {
	return strings.NewReplacer("{{KINDS}}", kinds, "{{LOCALS}}", locals, "{{PARSE}}", parse,
		"{{CHECK}}", check, "{{COUNT}}", count, "{{WRITE}}", write).Replace(applyTemplate)
}

// A choice record is [n][n choice bytes][voter id bytes 0..7].
const parseChoices = `local n, c1 = byte(recs, off, off + 1)
    local nxt = off + n + 9`

// distinctChoices sets c to the n choice bytes of the record at off, or to
// nil when one is not an option or repeats another: the check a multi and a
// ranked ballot share.
const distinctChoices = `local seen = {}
        c = {}
        for j = 1, n do
          local x = byte(recs, off + j)
          if x >= nopt or seen[x] then c = nil; break end
          seen[x] = true
          c[j] = x
        end`

// applyScript applies a part of a single, multi or scale poll: one ballot
// byte (an option, or value - min) or, for multi, up to max distinct ones,
// each counted once.
var applyScript = redis.NewScript(applySource(`{single = true, multi = true, scale = true}`, ``, parseChoices, `if n == 1 then
        if c1 < nopt then c = c1 end
      elseif multi and n <= max then
        `+distinctChoices+`
      end`, `if n == 1 then
          cnt[c] = (cnt[c] or 0) + 1
        else
          for j = 1, n do local x = c[j]; cnt[x] = (cnt[x] or 0) + 1 end
        end`, `local total = 0
    for o, c in pairs(cnt) do
      call('HINCRBY', KEYS[2], o, c)
      total = total + c
    end
    call('HINCRBY', KEYS[2], '_total', total)`))

// rankedScript applies a part of a ranked poll: 1..max distinct options in
// preference order. Counts hold first preferences (field o) and Borda
// points (field b<o>: nopt - rank for each ranked option).
var rankedScript = redis.NewScript(applySource(`{ranked = true}`, `local bor, tot = {}, 0`, parseChoices, `if n <= max then
        `+distinctChoices+`
      end`, `cnt[c1] = (cnt[c1] or 0) + 1
        tot = tot + n
        for j = 1, n do local x = c[j]; bor[x] = (bor[x] or 0) + nopt - j end`, `for o, c in pairs(cnt) do call('HINCRBY', KEYS[2], o, c) end
    for o, p in pairs(bor) do call('HINCRBY', KEYS[2], 'b' .. o, p) end
    call('HINCRBY', KEYS[2], '_total', tot)`))

// wordsScript applies a part of a words poll: 1..max words per ballot (in
// normal form: the caller checked). Each distinct word of the batch not in
// the hidden set is added to the count set once with its batch count; when
// the set is full, the lowest-count word makes way and the newcomer starts
// from its count (Space-Saving), whose largest value so far is kept as
// _werr. Shown words also go into the HyperLogLog for distinct counts.
var wordsScript = redis.NewScript(applySource(`{words = true}`, `local wc, wo, tot = {}, {}, 0`, `local n = byte(recs, off)
    local q, ws = off + 1, {}
    for j = 1, n do
      local l = byte(recs, q)
      ws[j] = sub(recs, q + 1, q + l)
      q = q + 1 + l
    end
    local nxt = q + 8`, `if n >= 1 and n <= max then c = ws end`, `tot = tot + n
        for j = 1, n do
          local w = c[j]
          local k = wc[w]
          if k then wc[w] = k + 1 else wc[w] = 1; wo[#wo + 1] = w end
        end`, `local hidden = call('SMISMEMBER', KEYS[4], unpack(wo))
    local shown = {}
    local card = call('ZCARD', KEYS[5])
    local err0 = tonumber(call('HGET', KEYS[2], '_werr') or '0')
    local werr = err0
    for i, w in ipairs(wo) do
      if hidden[i] == 0 then
        local c = wc[w]
        shown[#shown + 1] = w
        if not call('ZADD', KEYS[5], 'XX', 'INCR', c, w) then
          if card < `+strconv.Itoa(maxTableWords)+` then
            call('ZADD', KEYS[5], c, w)
            card = card + 1
          else
            local low = call('ZPOPMIN', KEYS[5])
            local s = tonumber(low[2])
            if s > werr then werr = s end
            call('ZADD', KEYS[5], s + c, w)
          end
        end
      end
    end
    if #shown > 0 then call('PFADD', KEYS[6], unpack(shown)) end
    if werr > err0 then call('HSET', KEYS[2], '_werr', werr) end
    call('HINCRBY', KEYS[2], '_total', tot)`))

// createScript stores a new poll unless one with the id exists.
//
//	KEYS[1] poll hash, KEYS[2] counts hash, KEYS[3] hidden words set
//	ARGV[1] count of counts; ARGV[2] h, the number of hidden words;
//	ARGV[3..2+h] the hidden words; ARGV[3+h..] field/value pairs
//
// Returns 1 when created, 0 when the poll exists.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
local h = tonumber(ARGV[2])
if h > 0 then redis.call('SADD', KEYS[3], unpack(ARGV, 3, 2 + h)) end
redis.call('HSET', KEYS[1], unpack(ARGV, 3 + h))
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

// dropScript deletes a poll's votes (all dedupe buckets, ledger chunks,
// counts and word counts) and, when ARGV[2] is "delete", the poll itself
// and its hidden words; otherwise (reset) it keeps the poll, bumps its
// version and bumps the results version so snapshots change. Keys go with
// UNLINK, 512 at a time.
//
//	KEYS[1] poll hash, KEYS[2] counts hash, KEYS[3] hidden words set,
//	KEYS[4] word counts zset, KEYS[5] words HyperLogLog
//	ARGV[1] bucket key prefix; ARGV[2] "delete" or "reset"; ARGV[3] ledger chunk key prefix
//
// Returns 0 if the poll does not exist, else 1.
var dropScript = redis.NewScript(`
local b = redis.call('HGET', KEYS[1], 'buckets')
if not b then return 0 end
b = tonumber(b)
local ks = {}
local function unlink(k)
  ks[#ks + 1] = k
  if #ks == 512 then redis.call('UNLINK', unpack(ks)); ks = {} end
end
for i = 0, b - 1 do unlink(ARGV[1] .. string.format('%04x', i)) end
local voters = tonumber(redis.call('HGET', KEYS[2], '_voters') or '0')
local per = math.min(65536, math.max(4096, 16 * b))
per = per - per / 32 -- see chunkVoters
for k = 0, math.floor(voters / per) do unlink(ARGV[3] .. k) end
if #ks > 0 then redis.call('UNLINK', unpack(ks)) end
redis.call('UNLINK', KEYS[4], KEYS[5])
if ARGV[2] == 'delete' then
  redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3])
  return 1
end
local c = redis.call('HMGET', KEYS[2], '_v', '_n')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], '_v', (tonumber(c[1]) or 0) + 1, '_n', c[2] or redis.call('HGET', KEYS[1], 'n'))
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
`)
