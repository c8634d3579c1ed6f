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

// Snapshot returns a poll's current results, read with one HGETALL.
// Returns ENOTFOUND.
func (s *Store) Snapshot(ctx context.Context, id string) (*shared.Snapshot, error) {
	if !shared.ValidPollID(id) {
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	}
	h, err := s.rdb.HGetAll(ctx, countsKey(id)).Result()
	if err != nil {
		return nil, redisErr(err, "read results of poll %s", id)
	}
	if len(h) == 0 {
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
	}
	n, err := strconv.Atoi(h["_n"])
	if err != nil || n < 0 || n > shared.MaxOptions {
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
// 0..7 as 16 hex digits. The ledger chunks are read in pieces (GETRANGE),
// so memory stays bounded whatever the poll's size. It reads live data: ballots applied while it
// runs may or may not be seen. Returns ENOTFOUND, or EINTERNAL for a
// corrupt ledger.
func (s *Store) Ledger(ctx context.Context, id string, fn func(origin.LedgerEntry) error) error {
	m, err := s.meta(ctx, id)
	if err != nil {
		return err
	}
	voters, err := s.rdb.HGet(ctx, countsKey(id), "_voters").Int64()
	if err != nil && err != redis.Nil {
		return redisErr(err, "read ledger of poll %s", id)
	}
	per := int64(chunkVoters(m.Buckets))
	prefix := ledgerPrefix(id)
	var vk []byte
	for chunk := int64(0); chunk <= voters/per; chunk++ {
		key := prefix + strconv.FormatInt(chunk, 10)
		var carry []byte // the start of a record cut by the previous piece
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
				if n == 0 || n > shared.MaxChoicesCap {
					return shared.Errorf(shared.EINTERNAL, "poll %s: ledger chunk %d is corrupt", id, chunk)
				}
				size := 1 + n + 8
				if len(buf) < size {
					break
				}
				vk = hex.AppendEncode(vk[:0], buf[1+n:size])
				if err := fn(origin.LedgerEntry{VoterKey: string(vk), Choices: buf[1 : 1+n : 1+n]}); err != nil {
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
