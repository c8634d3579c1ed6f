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

// ledgerChunk is how many buckets one pipelined round trip reads.
const ledgerChunk = 256

// Ledger streams every counted ballot of a poll to fn, bucket by bucket
// (fields sorted within a bucket), stopping at fn's first error. It reads
// live data: ballots applied while it runs may or may not be seen.
// Returns ENOTFOUND.
func (s *Store) Ledger(ctx context.Context, id string, fn func(origin.LedgerEntry) error) error {
	m, err := s.meta(ctx, id)
	if err != nil {
		return err
	}
	cmds := make([]*redis.MapStringStringCmd, ledgerChunk)
	var key []byte
	var vk strings.Builder
	fields := make([]string, 0, 2*votersPerBucket)
	for first := 0; first < m.Buckets; first += ledgerChunk {
		n := min(ledgerChunk, m.Buckets-first)
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range n {
				key = appendBucketKey(key[:0], id, uint32(first+i))
				cmds[i] = p.HGetAll(ctx, string(key))
			}
			return nil
		})
		if err != nil {
			return redisErr(err, "read ledger of poll %s", id)
		}
		for i := range n {
			h := cmds[i].Val()
			fields = fields[:0]
			for f := range h {
				fields = append(fields, f)
			}
			slices.Sort(fields)
			for _, f := range fields {
				vk.Reset()
				vk.WriteString(strconv.FormatUint(uint64(first+i)|1<<16, 16)[1:]) // %04x
				vk.WriteString(hex.EncodeToString([]byte(f)))
				if err := fn(origin.LedgerEntry{VoterKey: vk.String(), Choices: []uint8(h[f])}); err != nil {
					return err
				}
			}
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
