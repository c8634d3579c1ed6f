package redisstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/redis/go-redis/v9"
)

// part is one poll's share of a batch, with its script arguments. The
// arguments are laid out in one buffer and passed as substrings of one
// string: a few allocations per batch, none per vote.
type part struct {
	poll    string
	votes   []int32 // indexes into the batch
	buckets int     // bucket count the arguments were built for
	family  family  // the script the arguments were built for
	// misfit counts the votes build left out because their shape does not
	// fit the family (choices for words, words for the others, words not
	// in normal form): rejected as invalid_choice without reaching Redis.
	misfit uint32

	arena []byte
	keys  []string
	args  []any
}

// family is a group of poll kinds that share an apply script and a ledger
// record layout.
type family uint8

const (
	familyChoice family = iota // single, multi, scale
	familyRanked
	familyWords
)

// familyOf returns the family of a poll kind (single for unknown kinds:
// the choice script then answers with the right kind, or refuses).
func familyOf(k shared.Kind) family {
	switch k {
	case shared.KindRanked:
		return familyRanked
	case shared.KindWords:
		return familyWords
	}
	return familyChoice
}

func (f family) script() *redis.Script {
	switch f {
	case familyRanked:
		return rankedScript
	case familyWords:
		return wordsScript
	}
	return applyScript
}

// fits reports whether v's shape is a ballot of family f.
func (f family) fits(v *shared.Vote) bool {
	if f != familyWords {
		return len(v.Words) == 0
	}
	if len(v.Choices) != 0 || len(v.Words) == 0 {
		return false
	}
	for _, w := range v.Words {
		if n, err := shared.NormalizeWord(w); err != nil || n != w {
			return false
		}
	}
	return true
}

var partPool = sync.Pool{New: func() any { return new(part) }}

// Apply counts a batch atomically per poll (one Lua script per poll, the
// scripts of a multi-poll batch pipelined): each voter at most once per
// poll, whatever other batches or processes do. A batch seen within window
// gets its original receipt with Replayed set (set only when every poll's
// part was seen before) and changes nothing. Votes whose shape is invalid
// (bad poll id, zero voter, no time: invalid_vote; no or too many choices:
// invalid_choice) are rejected without touching Redis. Returns EUNAVAILABLE
// when Redis fails, or when the promised durability (SetDurability) does not
// hold for the batch: fsync mode while Redis no longer fsyncs every write,
// replica mode when too few replicas acknowledged it in time. The batch may
// then have been applied in part, and applying it again is safe.
func (s *Store) Apply(ctx context.Context, b *shared.Batch, window time.Duration) (*shared.Receipt, error) {
	rec := &shared.Receipt{Batch: b.ID}
	if window <= 0 {
		window = time.Minute
	}
	var parts []*part
	var index map[string]*part // only for batches spanning many polls
	defer func() {
		for _, p := range parts {
			p.release()
		}
	}()
	for i := range b.Votes {
		v := &b.Votes[i]
		switch {
		case !shared.ValidPollID(v.Poll) || v.Voter.IsZero() || v.At <= 0:
			rec.Rejected[shared.ReasonIndex(shared.RejectInvalidVote)]++
			continue
		case !v.ShapeOK():
			rec.Rejected[shared.ReasonIndex(shared.RejectInvalidChoice)]++
			continue
		}
		p := index[v.Poll]
		if p == nil && index == nil {
			for _, q := range parts {
				if q.poll == v.Poll {
					p = q
					break
				}
			}
		}
		if p == nil {
			p = partPool.Get().(*part)
			p.poll = v.Poll
			parts = append(parts, p)
			switch {
			case index != nil:
				index[p.poll] = p
			case len(parts) == 8: // many polls in one batch: index them
				index = make(map[string]*part)
				for _, q := range parts {
					index[q.poll] = q
				}
			}
		}
		p.votes = append(p.votes, int32(i))
	}
	if len(parts) == 0 {
		return rec, nil
	}
	mode := s.dur.d.Mode
	if mode == DurabilityFsync {
		if err := s.durable(); err != nil {
			return nil, err
		}
	}

	now := s.Now().UnixMilli()
	ttl := (2 * window).Milliseconds()
	for _, p := range parts {
		buckets, fam := s.cachedPoll(p.poll)
		p.family = fam
		p.build(b, buckets, now, ttl)
	}
	if mode == DurabilityReplica {
		replayed, err := s.applyReplicated(ctx, b, parts, now, ttl, rec)
		if err != nil {
			return nil, err
		}
		rec.Replayed = replayed == len(parts)
		return rec, nil
	}

	replayed := 0
	pending := parts
	if len(parts) > 1 {
		// One round trip for all polls; parts that need a retry (script
		// not loaded yet, stale bucket count) go through the loop below.
		cmds := make([]*redis.Cmd, len(parts))
		_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, p := range parts {
				cmds[i] = p.family.script().EvalSha(ctx, pipe, p.keys, p.args...)
			}
			return nil
		})
		pending = pending[:0:0]
		for i, p := range parts {
			done, rep, err := s.result(p, cmds[i], rec)
			switch {
			case err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT"):
				return nil, redisErr(err, "apply batch %s to poll %s", b.ID, p.poll)
			case done:
				if rep {
					replayed++
				}
			default:
				p.build(b, p.buckets, now, ttl) // result updated p.buckets and p.family
				pending = append(pending, p)
			}
		}
	}
	for _, p := range pending {
		for attempt := 0; ; attempt++ {
			if attempt == 5 {
				return nil, shared.Errorf(shared.EUNAVAILABLE, "apply batch %s to poll %s: bucket count keeps changing", b.ID, p.poll)
			}
			cmd := p.family.script().Run(ctx, s.rdb, p.keys, p.args...)
			done, rep, err := s.result(p, cmd, rec)
			if err != nil {
				return nil, redisErr(err, "apply batch %s to poll %s", b.ID, p.poll)
			}
			if done {
				if rep {
					replayed++
				}
				break
			}
			p.build(b, p.buckets, now, ttl) // result updated p.buckets and p.family
		}
	}
	rec.Replayed = replayed == len(parts)
	return rec, nil
}

// result reads one script reply into rec. done is false when the part must
// be sent again: the script was not loaded, or the bucket count or kind was
// stale (then p.buckets and p.family hold the right ones).
func (s *Store) result(p *part, cmd *redis.Cmd, rec *shared.Receipt) (done, replayed bool, err error) {
	v, err := cmd.Result()
	if err != nil {
		return false, false, err
	}
	var n [2 + shared.NumReasons]int64
	switch v := v.(type) {
	case string: // stored receipt of a replayed batch
		f := strings.Split(v, ",")
		if len(f) != len(n) {
			return false, false, fmt.Errorf("bad stored receipt %q", v)
		}
		for i := range f {
			if n[i], err = strconv.ParseInt(f[i], 10, 64); err != nil {
				return false, false, fmt.Errorf("bad stored receipt %q", v)
			}
		}
		replayed = true
	case []any:
		if len(v) == 2 || len(v) == 3 {
			if c, _ := v[0].(int64); c == -1 {
				b, _ := v[1].(int64)
				if b <= 0 {
					return false, false, fmt.Errorf("poll %s has no bucket count", p.poll)
				}
				fam := p.family
				if len(v) == 3 {
					k, _ := v[2].(string)
					fam = familyOf(shared.Kind(k))
					if fam == p.family && int(b) == p.buckets {
						return false, false, fmt.Errorf("poll %s: kind %q is not applied by any script", p.poll, k)
					}
				}
				p.buckets, p.family = int(b), fam
				s.setCachedPoll(p.poll, int(b), fam)
				return false, false, nil
			}
		}
		if len(v) != len(n) {
			return false, false, fmt.Errorf("unexpected script reply %v", v)
		}
		for i := range v {
			n[i], _ = v[i].(int64)
		}
	default:
		return false, false, fmt.Errorf("unexpected script reply %T", v)
	}
	rec.Accepted += uint32(n[0])
	rec.Duplicate += uint32(n[1])
	for i := range shared.NumReasons {
		rec.Rejected[i] += uint32(n[2+i])
	}
	rec.Rejected[shared.ReasonIndex(shared.RejectInvalidChoice)] += p.misfit
	return true, replayed, nil
}

// atLimit is the largest vote time the script's 6-byte field holds (year
// 10889); later times are clamped, and the script refuses them as future.
const atLimit = 1<<48 - 1

// build lays out p's script keys and arguments (see applyTemplate) for a
// bucket count and p.family. Votes that do not fit the family are left out
// (counted in p.misfit).
func (p *part) build(b *shared.Batch, buckets int, now, ttl int64) {
	p.buckets = buckets
	p.misfit = 0
	mask := uint32(0)
	if buckets > 0 {
		mask = uint32(buckets - 1)
	}
	votes := p.votes
	for i, vi := range votes {
		if !p.family.fits(&b.Votes[vi]) {
			// rare: copy the fitting ones aside, once
			kept := append([]int32(nil), votes[:i]...)
			for _, vj := range votes[i:] {
				if p.family.fits(&b.Votes[vj]) {
					kept = append(kept, vj)
				} else {
					p.misfit++
				}
			}
			votes = kept
			break
		}
	}
	a := p.arena[:0]
	a = append(a, "ep:{"...)
	a = append(a, p.poll...)
	a = append(a, "}:poll"...)
	k0 := len(a)
	a = append(a, "ep:{"...)
	a = append(a, p.poll...)
	a = append(a, "}:counts"...)
	k1 := len(a)
	a = appendReplayKey(a, p.poll, b.ID)
	k2 := len(a)
	a = append(a, "ep:{"...)
	a = append(a, p.poll...)
	a = append(a, "}:l:"...)
	lp := len(a)
	// Vote times: 6 bytes big-endian each.
	minAt, maxAt := int64(1<<62), int64(0)
	for _, i := range votes {
		at := b.Votes[i].At
		minAt, maxAt = min(minAt, at), max(maxAt, at)
		at = min(at, atLimit)
		a = append(a, byte(at>>40), byte(at>>32), byte(at>>24), byte(at>>16), byte(at>>8), byte(at))
	}
	ats := len(a)
	// Ledger records: [n][choices][voter id bytes 0..7], or for words
	// [n][len][word]…[voter id bytes 0..7].
	for _, i := range votes {
		v := &b.Votes[i]
		if p.family == familyWords {
			a = append(a, byte(len(v.Words)))
			for _, w := range v.Words {
				a = append(a, byte(len(w)))
				a = append(a, w...)
			}
		} else {
			a = append(a, byte(len(v.Choices)))
			a = append(a, v.Choices...)
		}
		a = append(a, v.Voter[:8]...)
	}
	recs := len(a)
	// Set members: 19 digits each.
	for _, i := range votes {
		a = strconv.AppendUint(a, binary.BigEndian.Uint64(b.Votes[i].Voter[:8])>>2+memberBase, 10)
	}
	mems := len(a)
	// Bucket keys: the prefix and 4 hex digits each.
	for _, i := range votes {
		a = append(a, "ep:{"...)
		a = append(a, p.poll...)
		a = append(a, "}:s:"...)
		a = appendHex4(a, binary.BigEndian.Uint32(b.Votes[i].Voter[8:12])&mask)
	}
	bks := len(a)
	// The batch marker record.
	a = append(a, 0)
	a = append(a, b.ID[:]...)
	marker := len(a)
	if p.family == familyWords {
		a = append(a, "ep:{"...)
		a = append(a, p.poll...)
		a = append(a, "}:wx"...)
		a = append(a, "ep:{"...)
		a = append(a, p.poll...)
		a = append(a, "}:w"...)
		a = append(a, "ep:{"...)
		a = append(a, p.poll...)
		a = append(a, "}:wh"...)
	}
	p.arena = a
	str := string(a) // the one copy; everything below is a substring of it

	p.keys = append(p.keys[:0], str[:k0], str[k0:k1], str[k1:k2])
	if p.family == familyWords {
		w := marker
		n := 4 + len(p.poll)
		p.keys = append(p.keys, str[w:w+n+4], str[w+n+4:w+2*n+7], str[w+2*n+7:])
	}
	p.args = append(p.args[:0], now, ttl, strconv.Itoa(buckets), minAt, maxAt,
		str[k2:lp], str[lp:ats], str[ats:recs], str[recs:mems], str[mems:bks], str[bks:marker])
}

func (p *part) release() {
	if cap(p.arena) > 1<<20 {
		return // do not keep huge buffers around
	}
	p.poll = ""
	p.votes = p.votes[:0]
	clear(p.args)
	p.args = p.args[:0]
	clear(p.keys)
	p.keys = p.keys[:0]
	partPool.Put(p)
}
