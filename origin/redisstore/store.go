// Package redisstore is the Redis implementation of origin.Store, and the
// only package of edgepoll that imports go-redis. It runs on a single Redis
// node or on Redis Cluster: every key of a poll carries the hash tag
// {<poll id>}, so a poll lives in one slot and each Lua script touches one node.
//
// Data model, for poll P:
//
//	ep:{P}:poll       hash: config fields, buckets, opened_at/closed_at (ms), version
//	ep:{P}:counts     hash: option (or scale value - min) index → count, b<index> → Borda
//	                  points (ranked), _total, _voters, _n (counts), _v (results version),
//	                  _werr (words: the Space-Saving error bound)
//	ep:{P}:s:<b>      set per dedupe bucket b (4 hex digits): one integer member per voter
//	ep:{P}:l:<k>      string, ledger chunk k (decimal): the records of counted ballots
//	ep:{P}:b:<batch>  string: the receipt of a batch's part for P, kept for the replay window
//	ep:{P}:w          zset (words polls): normal-form word → count, at most maxTableWords members
//	ep:{P}:wh         HyperLogLog (words polls): the shown words seen, for distinct once the zset is full
//	ep:{P}:wx         set (words polls): hidden words (default list, blocklist, bans)
//	ep:polls          set of poll ids (admin operations only)
//
// Dedupe. A voter's bucket comes from bytes 8..11 of its id (modulo the
// bucket count) and its member is 10^18 + (bytes 0..7 big-endian >> 2), a
// 19-digit decimal below 2^63, so a (bucket, member) pair keeps
// 62+log2(buckets) bits of identity. The bucket count is fixed when a poll
// is created, a power of two with at most 256 voters per bucket on average
// for the expected audience, so the sets stay intset-encoded
// (set-max-intset-entries defaults to 512): about 9 bytes per voter.
//
// Ledger. Each accepted vote appends a record [n u8][n choice bytes]
// [voter id bytes 0..7] (10 bytes for one choice; a words poll's record is
// [n words][len][word]…[voter id bytes 0..7]) to the current chunk; a
// script appends all of a batch's accepted records with one APPEND, after
// a batch marker [0][16-byte batch id] (docs/WIRE.md, "Ledger records"). Chunk k holds the records appended while _voters was in
// [k*C, (k+1)*C), C = 31/32 of min(65536, max(4096, 16*buckets)) voters (see
// chunkVoters); a full chunk
// is rewritten once to drop the slack of APPEND's greedy growth, so at most
// the open chunk carries slack. Dedupe plus ledger: about 20 bytes of
// Redis memory per voter.
package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var _ origin.Store = (*Store)(nil)

// Bucket and ledger sizing.
const (
	defaultExpectedVoters = 1_000_000
	votersPerBucket       = 256 // average at the expected audience; intsets hold 512
	minBuckets            = 16
	maxBuckets            = 65536 // bucket keys have 4 hex digits

	minChunkVoters = 4096
	maxChunkVoters = 65536
)

// memberBase is added to the 62-bit voter fragment so that every set
// member has exactly 19 decimal digits (and stays below 2^63, an intset
// integer): the script cuts members from one fixed-width argument.
const memberBase = 1_000_000_000_000_000_000

// pollsKey is the set of poll ids. It is not hash-tagged: only admin
// operations touch it, never in the same command as a poll's keys.
const pollsKey = "ep:polls"

// Store is an origin.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	single  *redis.Client        // nil on a Cluster
	cluster *redis.ClusterClient // nil on a single node
	dur     durabilityState      // the promise Apply keeps (SetDurability)

	// Now is the store's clock (votes more than a minute ahead of it are
	// refused; open and close default to it). Tests may replace it before use.
	Now func() time.Time

	mu      sync.RWMutex
	buckets map[string]pollCache // poll id → bucket count and family, verified by the apply script
}

// Open connects to Redis. url is redis://[user:pass@]host:port[/db] or
// rediss://… for a single node, or a comma-separated list of host:port
// seeds for Redis Cluster. It returns EINVALID for a malformed url and
// EUNAVAILABLE when Redis does not answer PING. The store acknowledges
// batches once Redis has applied them in memory (DurabilityNone) until
// SetDurability promises more.
func Open(ctx context.Context, url string) (*Store, error) {
	url = strings.TrimSpace(url)
	if url == "" {
		return nil, shared.Errorf(shared.EINVALID, "redis url is empty")
	}
	setLoggerOnce.Do(func() { redis.SetLogger(slogLogger{}) })
	poolSize := max(32, 8*runtime.GOMAXPROCS(0))
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	s := &Store{Now: time.Now, buckets: make(map[string]pollCache)}
	if strings.HasPrefix(url, "redis://") || strings.HasPrefix(url, "rediss://") {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, shared.Wrap(shared.EINVALID, err, "invalid redis url")
		}
		opt.PoolSize = poolSize
		opt.MinIdleConns = 2
		opt.MaintNotificationsConfig = noMaint
		s.single = redis.NewClient(opt)
		s.rdb = s.single
	} else {
		addrs := strings.Split(url, ",")
		for i, a := range addrs {
			a = strings.TrimSpace(a)
			_, port, err := net.SplitHostPort(a)
			if n, perr := strconv.Atoi(port); err != nil || perr != nil || n <= 0 || n > 65535 || strings.Contains(a, "/") {
				return nil, shared.Errorf(shared.EINVALID, "redis url: %q is neither redis://, rediss:// nor a host:port list of cluster nodes", url)
			}
			addrs[i] = a
		}
		s.cluster = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                    addrs,
			PoolSize:                 poolSize,
			MinIdleConns:             2,
			MaintNotificationsConfig: noMaint,
		})
		s.rdb = s.cluster
	}
	if err := s.Ping(ctx); err != nil {
		s.rdb.Close()
		return nil, err
	}
	s.checkIntsetConfig(ctx)
	return s, nil
}

// checkIntsetConfig warns when the server's intset limit would make dedupe
// buckets use hashtable encoding (several times the memory).
func (s *Store) checkIntsetConfig(ctx context.Context) {
	const name, want = "set-max-intset-entries", 2 * votersPerBucket
	res, err := s.rdb.ConfigGet(ctx, name).Result()
	if err != nil {
		return // CONFIG may be disabled on managed Redis
	}
	if n, err := strconv.Atoi(res[name]); err == nil && n < want {
		slog.Warn("redis intset limit is low: dedupe buckets will use more memory",
			"setting", name, "value", n, "want_at_least", want)
	}
}

// Ping returns nil when Redis answers, EUNAVAILABLE otherwise.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err, "redis ping")
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	s.closeNodes()
	return s.rdb.Close()
}

func unavailable(err error, what string) error {
	return shared.Wrap(shared.EUNAVAILABLE, err, what+": redis unavailable")
}

// Key names. All keys of a poll share the hash tag {id}.
func pollKey(id string) string      { return "ep:{" + id + "}:poll" }
func countsKey(id string) string    { return "ep:{" + id + "}:counts" }
func bucketPrefix(id string) string { return "ep:{" + id + "}:s:" }
func ledgerPrefix(id string) string { return "ep:{" + id + "}:l:" }
func hiddenKey(id string) string    { return "ep:{" + id + "}:wx" }
func wordsKey(id string) string     { return "ep:{" + id + "}:w" }
func wordsHLLKey(id string) string  { return "ep:{" + id + "}:wh" }

const hexDigits = "0123456789abcdef"

// appendHex4 appends b (< 65536) as exactly 4 lower-case hex digits.
func appendHex4(dst []byte, b uint32) []byte {
	return append(dst, hexDigits[b>>12&15], hexDigits[b>>8&15], hexDigits[b>>4&15], hexDigits[b&15])
}

// chunkVoters is how many voters' records one ledger chunk holds for a
// poll with the given bucket count; the apply script computes the same.
//
// It is 31/32 of a power of two (min(65536, max(4096, 16*buckets))): a
// chunk of one-choice records is then 3% below a jemalloc size class
// (10 × 2^n bytes is exactly one), leaving room for the batch markers,
// which would otherwise push every full chunk into the next class, 20%
// larger (measured: 21.7 instead of 20.0 bytes per voter at 1M voters).
// Ledgers written with the older 2^n chunks read the same: a smaller
// chunk size only ever maps a voter count to the same or a later chunk.
func chunkVoters(buckets int) int {
	per := min(maxChunkVoters, max(minChunkVoters, 16*buckets))
	return per - per/32
}

func appendReplayKey(dst []byte, id string, batch shared.BatchID) []byte {
	dst = append(dst, "ep:{"...)
	dst = append(dst, id...)
	dst = append(dst, "}:b:"...)
	for _, c := range batch {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// bucketCount returns the number of dedupe buckets for an audience of
// expected voters: a power of two near expected/votersPerBucket, within [16, 65536].
func bucketCount(expected int) int {
	if expected <= 0 {
		expected = defaultExpectedVoters
	}
	want := (expected + votersPerBucket - 1) / votersPerBucket
	n := minBuckets
	for n < want && n < maxBuckets {
		n *= 2
	}
	return n
}

// pollCache is what Apply remembers of a poll: its bucket count and the
// family of its kind. The apply scripts check both and answer with the
// right ones when they are stale.
type pollCache struct {
	buckets int
	family  family
}

// cachedPoll returns the bucket count (or 0) and family last seen for a poll.
func (s *Store) cachedPoll(id string) (int, family) {
	s.mu.RLock()
	c := s.buckets[id]
	s.mu.RUnlock()
	return c.buckets, c.family
}

// setCachedPoll remembers a poll's bucket count and family; n = 0 forgets it.
func (s *Store) setCachedPoll(id string, n int, f family) {
	s.mu.Lock()
	if len(s.buckets) >= 100_000 {
		clear(s.buckets) // bound memory; entries are re-learnt on demand
	}
	if n > 0 {
		s.buckets[id] = pollCache{buckets: n, family: f}
	} else {
		delete(s.buckets, id)
	}
	s.mu.Unlock()
}

// redisErr wraps a Redis failure as EUNAVAILABLE with what was being done.
func redisErr(err error, format string, args ...any) error {
	return unavailable(err, fmt.Sprintf(format, args...))
}

// slogLogger routes go-redis's internal messages (dial failures and the
// like) to log/slog at warning level instead of its own stderr logger.
type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.WarnContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

var setLoggerOnce sync.Once

// cachedBuckets returns the bucket count last seen for a poll, or 0.
func (s *Store) cachedBuckets(id string) int {
	n, _ := s.cachedPoll(id)
	return n
}

// setCachedBuckets remembers a poll's bucket count, keeping its family.
func (s *Store) setCachedBuckets(id string, n int) {
	_, f := s.cachedPoll(id)
	s.setCachedPoll(id, n, f)
}
