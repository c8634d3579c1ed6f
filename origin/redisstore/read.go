package redisstore

import (
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/redis/go-redis/v9"
)

// Snapshot returns a poll's current results: one pipelined HGETALL of the
// counts and HMGET of the poll's kind; a words poll's word table then comes
// from one script (wordsSnapshotScript). Returns ENOTFOUND.
func (s *Store) Snapshot(ctx context.Context, id string) (*shared.Snapshot, error) {
	if !shared.ValidPollID(id) {
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	}
	var hc *redis.MapStringStringCmd
	var kc *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		hc = p.HGetAll(ctx, countsKey(id))
		kc = p.HMGet(ctx, pollKey(id), "kind", "scale_min")
		return nil
	})
	if err != nil {
		return nil, redisErr(err, "read results of poll %s", id)
	}
	h := hc.Val()
	if len(h) == 0 {
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
	}
	kv := kc.Val()
	kind, _ := kv[0].(string)
	snap, err := s.snapshotOf(id, h)
	if err != nil {
		return nil, err
	}
	switch k := shared.Kind(kind); k {
	case shared.KindScale:
		snap.Kind = k
		smin, _ := kv[1].(string)
		snap.ScaleMin, _ = strconv.ParseInt(smin, 10, 64)
		for i, c := range snap.Counts {
			snap.ScaleSum += int64(c) * (snap.ScaleMin + int64(i))
		}
	case shared.KindRanked:
		snap.Kind = k
		snap.Borda = make([]uint64, len(snap.Counts))
		for f, v := range h {
			if o, ok := strings.CutPrefix(f, "b"); ok {
				if i, err := strconv.Atoi(o); err == nil && i >= 0 && i < len(snap.Borda) {
					snap.Borda[i], _ = strconv.ParseUint(v, 10, 64)
				}
			}
		}
	case shared.KindWords:
		snap.Kind = k
		if err := s.wordsSnapshot(ctx, id, snap); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// snapshotOf reads a counts hash into a snapshot.
func (s *Store) snapshotOf(id string, h map[string]string) (*shared.Snapshot, error) {
	n, err := strconv.Atoi(h["_n"])
	if err != nil || n < 0 || n > shared.MaxScaleSteps {
		return nil, shared.Errorf(shared.EINTERNAL, "poll %s: stored option count %q is invalid", id, h["_n"])
	}
	snap := &shared.Snapshot{
		Poll:        id,
		Counts:      make([]uint64, n),
		GeneratedAt: s.Now().UnixMilli(),
	}
	for k, v := range h {
		c, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, shared.Errorf(shared.EINTERNAL, "poll %s: stored count %s=%q is invalid", id, k, v)
		}
		switch k {
		case "_v":
			snap.Version = c
		case "_total":
			snap.Total = c
		case "_voters":
			snap.Voters = c
		case "_werr":
			snap.CountError = c
		case "_n":
		default:
			if reason, ok := strings.CutPrefix(k, "_rej_"); ok {
				if i := shared.ReasonIndex(reason); i >= 0 {
					snap.Rejected[i] = c
				}
				continue
			}
			if o, err := strconv.Atoi(k); err == nil && o >= 0 && o < n {
				snap.Counts[o] = c
			}
		}
	}
	return snap, nil
}

// wordsSnapshotScript reads a words poll's shown words in one step, so the
// table and the counts hash belong to the same moment.
//
//	KEYS[1] counts hash, KEYS[2] word counts zset, KEYS[3] words HyperLogLog
//	ARGV[1] how many words to show
//
// Returns {results version, top words with scores (ZREVRANGE), the
// members tied at the last shown score in ascending order (as many as the
// slots they compete for), ZCARD, PFCOUNT}. The ties are needed because a
// zset orders equal scores by member descending in ZREVRANGE, and the
// snapshot shows them ascending.
var wordsSnapshotScript = redis.NewScript(`
local lim = tonumber(ARGV[1])
local top = redis.call('ZREVRANGE', KEYS[2], 0, lim - 1, 'WITHSCORES')
local ties = {}
if #top == 2 * lim then
  local last = top[#top]
  local above = redis.call('ZCOUNT', KEYS[2], '(' .. last, '+inf')
  ties = redis.call('ZRANGEBYSCORE', KEYS[2], last, last, 'LIMIT', 0, lim - above)
end
return {redis.call('HGET', KEYS[1], '_v') or '0', top, ties, redis.call('ZCARD', KEYS[2]), redis.call('PFCOUNT', KEYS[3])}
`)

// wordsSnapshot fills a words poll's snapshot fields: the top
// shared.MaxSnapshotWords words (count descending, word ascending),
// distinct and whether it is exact.
func (s *Store) wordsSnapshot(ctx context.Context, id string, snap *shared.Snapshot) error {
	res, err := wordsSnapshotScript.Run(ctx, s.rdb, []string{countsKey(id), wordsKey(id), wordsHLLKey(id)}, shared.MaxSnapshotWords).Slice()
	if err != nil {
		return redisErr(err, "read the words of poll %s", id)
	}
	if len(res) != 5 {
		return shared.Errorf(shared.EINTERNAL, "poll %s: unexpected words snapshot reply", id)
	}
	if v, _ := res[0].(string); v != strconv.FormatUint(snap.Version, 10) {
		// votes landed between the two reads: take the table's version
		// so the ETag changes with what is shown.
		snap.Version, _ = strconv.ParseUint(v, 10, 64)
	}
	top, _ := res[1].([]any)
	ties, _ := res[2].([]any)
	words := make([]shared.WordCount, 0, len(top)/2)
	var last uint64
	for i := 0; i+1 < len(top); i += 2 {
		w, _ := top[i].(string)
		sc, _ := top[i+1].(string)
		c, err := strconv.ParseUint(sc, 10, 64)
		if err != nil {
			return shared.Errorf(shared.EINTERNAL, "poll %s: word %q has count %q", id, w, sc)
		}
		words = append(words, shared.WordCount{Word: w, Count: c})
		last = c
	}
	if len(ties) > 0 { // replace the entries at the last score by the ascending ties
		words = slices.DeleteFunc(words, func(w shared.WordCount) bool { return w.Count == last })
		for _, t := range ties {
			w, _ := t.(string)
			words = append(words, shared.WordCount{Word: w, Count: last})
		}
	}
	sortWords(words)
	snap.Words = words
	card, _ := res[3].(int64)
	hll, _ := res[4].(int64)
	snap.DistinctExact = snap.CountError == 0
	snap.Distinct = uint64(card)
	if !snap.DistinctExact {
		snap.Distinct = uint64(hll)
	}
	return nil
}

// sortWords orders word counts as snapshots show them: count descending,
// then word ascending.
func sortWords(ws []shared.WordCount) {
	slices.SortFunc(ws, func(a, b shared.WordCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Word, b.Word)
	})
}

// AllWords returns every word a words poll's count set holds (at most
// maxTableWords), in the snapshots' order. Returns ENOTFOUND.
func (s *Store) AllWords(ctx context.Context, id string) ([]shared.WordCount, error) {
	if _, err := s.meta(ctx, id); err != nil {
		return nil, err
	}
	zs, err := s.rdb.ZRevRangeWithScores(ctx, wordsKey(id), 0, -1).Result()
	if err != nil {
		return nil, redisErr(err, "read the words of poll %s", id)
	}
	out := make([]shared.WordCount, len(zs))
	for i, z := range zs {
		out[i] = shared.WordCount{Word: z.Member.(string), Count: uint64(z.Score)}
	}
	sortWords(out)
	return out, nil
}

// HiddenWords returns a words poll's blocklist and bans (not the default
// list), sorted. Returns ENOTFOUND, or ECONFLICT for another kind of poll.
func (s *Store) HiddenWords(ctx context.Context, id string) ([]string, error) {
	m, err := s.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Kind != shared.KindWords {
		return nil, shared.Errorf(shared.ECONFLICT, "poll %s is not a words poll", id)
	}
	ws, err := s.rdb.SMembers(ctx, hiddenKey(id)).Result()
	if err != nil {
		return nil, redisErr(err, "read the hidden words of poll %s", id)
	}
	ws = slices.DeleteFunc(ws, func(w string) bool { return slices.Contains(shared.DefaultHiddenWords(), w) })
	slices.Sort(ws)
	return ws, nil
}

// banScript hides a word of a words poll: adds it to the hidden set, drops
// it from the count set and bumps the results version when it was shown.
//
//	KEYS[1] poll hash, KEYS[2] counts hash, KEYS[3] hidden set, KEYS[4] word counts zset
//	ARGV[1] the word (normal form)
//
// Returns "notfound", "kind", or "ok".
var banScript = redis.NewScript(`
local k = redis.call('HGET', KEYS[1], 'kind')
if not k then return 'notfound' end
if k ~= 'words' then return 'kind' end
redis.call('SADD', KEYS[3], ARGV[1])
if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], '_v', 1) end
return 'ok'
`)

// BanWord hides word (normalised first) in a words poll from the next
// snapshot on; its ballots stay in the ledger. Returns the normal form,
// EINVALID for a word that fails normalisation, ENOTFOUND, or ECONFLICT for
// another kind of poll.
func (s *Store) BanWord(ctx context.Context, id, word string) (string, error) {
	w, err := shared.NormalizeWord(word)
	if err != nil {
		return "", err
	}
	if !shared.ValidPollID(id) {
		return "", shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	}
	res, err := banScript.Run(ctx, s.rdb, []string{pollKey(id), countsKey(id), hiddenKey(id), wordsKey(id)}, w).Text()
	if err != nil {
		return "", redisErr(err, "ban a word in poll %s", id)
	}
	switch res {
	case "notfound":
		return "", shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
	case "kind":
		return "", shared.Errorf(shared.ECONFLICT, "poll %s is not a words poll", id)
	}
	return w, nil
}

// SnapshotVersion returns a poll's current results version with one HGET.
// It changes whenever the counts change (votes applied, reset). Returns ENOTFOUND.
func (s *Store) SnapshotVersion(ctx context.Context, id string) (uint64, error) {
	if !shared.ValidPollID(id) {
		return 0, shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	}
	v, err := s.rdb.HGet(ctx, countsKey(id), "_v").Uint64()
	if err == redis.Nil {
		return 0, shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
	}
	if err != nil {
		return 0, redisErr(err, "read results version of poll %s", id)
	}
	return v, nil
}

// ledgerPiece is how many bytes of a ledger chunk one GETRANGE reads.
const ledgerPiece = 256 << 10

// Ledger streams every counted ballot of a poll to fn in the order they
// were counted, stopping at fn's first error. VoterKey is voter id bytes
// 0..7 as 16 hex digits; Batch the id of the batch the ballot came in (from
// the marker record before it). The ledger chunks are read in pieces
// (GETRANGE), so memory stays bounded whatever the poll's size. It reads
// live data: ballots applied while it runs may or may not be seen. Returns
// ENOTFOUND, or EINTERNAL for a corrupt ledger.
func (s *Store) Ledger(ctx context.Context, id string, fn func(origin.LedgerEntry) error) error {
	m, err := s.meta(ctx, id)
	if err != nil {
		return err
	}
	voters, err := s.rdb.HGet(ctx, countsKey(id), "_voters").Int64()
	if err != nil && err != redis.Nil {
		return redisErr(err, "read ledger of poll %s", id)
	}
	words := m.Kind == shared.KindWords
	per := int64(chunkVoters(m.Buckets))
	prefix := ledgerPrefix(id)
	var vk []byte
	var batch string
	for chunk := int64(0); chunk <= voters/per; chunk++ {
		key := prefix + strconv.FormatInt(chunk, 10)
		var carry []byte // the start of a record cut by the previous piece
		corrupt := func() error {
			return shared.Errorf(shared.EINTERNAL, "poll %s: ledger chunk %d is corrupt", id, chunk)
		}
		for off := int64(0); ; off += ledgerPiece {
			piece, err := s.rdb.GetRange(ctx, key, off, off+ledgerPiece-1).Result()
			if err != nil {
				return redisErr(err, "read ledger of poll %s", id)
			}
			// A fresh buffer per piece: entries' Choices point into it.
			buf := make([]byte, 0, len(carry)+len(piece))
			buf = append(append(buf, carry...), piece...)
			for len(buf) > 0 {
				n := int(buf[0])
				if n == 0 { // batch marker
					if len(buf) < 17 {
						break
					}
					batch = hex.EncodeToString(buf[1:17])
					buf = buf[17:]
					continue
				}
				e := origin.LedgerEntry{Batch: batch}
				var size int
				if words {
					if n > shared.MaxWordsCap {
						return corrupt()
					}
					q := 1
					for j := 0; j < n && q < len(buf); j++ {
						q += 1 + int(buf[q])
					}
					size = q + 8
					if len(buf) < size {
						break
					}
					e.Words = make([]string, n)
					q = 1
					for j := range e.Words {
						l := int(buf[q])
						if l == 0 || l > shared.MaxWordBytes {
							return corrupt()
						}
						e.Words[j] = string(buf[q+1 : q+1+l])
						q += 1 + l
					}
				} else {
					if n > shared.MaxChoicesCap {
						return corrupt()
					}
					size = 1 + n + 8
					if len(buf) < size {
						break
					}
					e.Choices = buf[1 : 1+n : 1+n]
				}
				vk = hex.AppendEncode(vk[:0], buf[size-8:size])
				e.VoterKey = string(vk)
				if err := fn(e); err != nil {
					return err
				}
				buf = buf[size:]
			}
			carry = buf
			if len(piece) < ledgerPiece {
				break // end of the chunk (appends keep it whole)
			}
		}
		if len(carry) > 0 {
			return shared.Errorf(shared.EINTERNAL, "poll %s: ledger chunk %d ends in a partial record", id, chunk)
		}
	}
	return nil
}

// MemoryUsed returns Redis's used_memory, summed over the masters of a cluster.
func (s *Store) MemoryUsed(ctx context.Context) (int64, error) {
	var total int64
	err := s.forEachMaster(ctx, func(info map[string]string) {
		n, _ := strconv.ParseInt(info["used_memory"], 10, 64)
		total += n
	})
	return total, err
}

// forEachMaster runs INFO on every master (the one node when not a
// cluster) and hands fn the parsed fields, one node at a time.
func (s *Store) forEachMaster(ctx context.Context, fn func(info map[string]string)) error {
	var infos []string
	if s.cluster != nil {
		ch := make(chan string, 64)
		err := s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			v, err := c.Info(ctx, "memory", "server").Result()
			if err == nil {
				ch <- v
			}
			return err
		})
		close(ch)
		if err != nil {
			return redisErr(err, "redis info")
		}
		for v := range ch {
			infos = append(infos, v)
		}
	} else {
		v, err := s.rdb.Info(ctx, "memory", "server").Result()
		if err != nil {
			return redisErr(err, "redis info")
		}
		infos = append(infos, v)
	}
	for _, v := range infos {
		fn(parseInfo(v))
	}
	return nil
}

func parseInfo(s string) map[string]string {
	m := make(map[string]string)
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

// Stats returns store-wide figures: polls, votes and voters over all polls,
// Redis memory and nodes (masters).
func (s *Store) Stats(ctx context.Context) (origin.Stats, error) {
	var st origin.Stats
	err := s.forEachMaster(ctx, func(info map[string]string) {
		n, _ := strconv.ParseInt(info["used_memory"], 10, 64)
		st.UsedMemory += n
		st.RedisNodes++
		st.RedisVersion = info["redis_version"]
	})
	if err != nil {
		return st, err
	}
	ids, err := s.rdb.SMembers(ctx, pollsKey).Result()
	if err != nil {
		return st, redisErr(err, "list polls")
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return !shared.ValidPollID(id) })
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, countsKey(id), "_total", "_voters", "_v")
		}
		return nil
	})
	if err != nil {
		return st, redisErr(err, "read poll counts")
	}
	for _, c := range cmds {
		v := c.Val()
		if len(v) != 3 || v[2] == nil {
			continue // deleted half-way
		}
		st.Polls++
		st.Votes += parseUint(v[0])
		st.Voters += parseUint(v[1])
	}
	return st, nil
}

func parseUint(v any) uint64 {
	s, _ := v.(string)
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
