package redisstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

var _ origin.IdentityStatsStore = (*Store)(nil)

// identityKey is a poll's identity figures (hash: tokens, refused:<reason>);
// identityAddrsKey its tokens by address (sorted set, the top MaxKeptAddrs).
func identityKey(id string) string      { return "ep:{" + id + "}:ids" }
func identityAddrsKey(id string) string { return "ep:{" + id + "}:ida" }

// addIdentityScript adds one edge's delta.
//
//	KEYS[1] poll hash, KEYS[2] figures hash, KEYS[3] addresses zset
//	ARGV[1] tokens, ARGV[2] kept addresses, ARGV[3] reason count n,
//	then n reason/count pairs, then address/count pairs
//
// Returns 0 for an unknown poll, else 1.
var addIdentityScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[1]) end
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  redis.call('HINCRBY', KEYS[2], 'refused:' .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
local added = false
while i <= #ARGV do
  redis.call('ZINCRBY', KEYS[3], ARGV[i + 1], ARGV[i])
  added = true
  i = i + 2
end
if added then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[2]) - 1)
end
return 1
`)

// AddIdentityStats implements origin.IdentityStatsStore.
func (s *Store) AddIdentityStats(ctx context.Context, poll string, d *origin.IdentityDelta) error {
	if !shared.ValidPollID(poll) {
		return shared.Errorf(shared.ENOTFOUND, "poll %q not found", poll)
	}
	args := []any{d.Tokens, origin.MaxKeptAddrs, len(d.Refused)}
	for r, n := range d.Refused {
		args = append(args, r, n)
	}
	for a, n := range d.Addrs {
		args = append(args, a, n)
	}
	ok, err := addIdentityScript.Run(ctx, s.rdb, []string{pollKey(poll), identityKey(poll), identityAddrsKey(poll)}, args...).Int()
	if err != nil {
		return redisErr(err, "add identity figures of poll %s", poll)
	}
	if ok == 0 {
		return shared.Errorf(shared.ENOTFOUND, "poll %s not found", poll)
	}
	return nil
}

// IdentityStats implements origin.IdentityStatsStore.
func (s *Store) IdentityStats(ctx context.Context, poll string, top int) (*origin.IdentityReport, error) {
	if _, err := s.meta(ctx, poll); err != nil {
		return nil, err
	}
	h, err := s.rdb.HGetAll(ctx, identityKey(poll)).Result()
	if err != nil {
		return nil, redisErr(err, "read identity figures of poll %s", poll)
	}
	r := &origin.IdentityReport{TopAddresses: []origin.AddrCount{}}
	for k, v := range h {
		n, _ := strconv.ParseUint(v, 10, 64)
		if k == "tokens" {
			r.TokensIssued = n
		} else if reason, ok := strings.CutPrefix(k, "refused:"); ok {
			if r.Refused == nil {
				r.Refused = map[string]uint64{}
			}
			r.Refused[reason] = n
		}
	}
	if top > 0 {
		zs, err := s.rdb.ZRevRangeWithScores(ctx, identityAddrsKey(poll), 0, int64(top-1)).Result()
		if err != nil {
			return nil, redisErr(err, "read top addresses of poll %s", poll)
		}
		for _, z := range zs {
			a, _ := z.Member.(string)
			r.TopAddresses = append(r.TopAddresses, origin.AddrCount{Addr: a, Tokens: uint64(z.Score)})
		}
	}
	return r, nil
}
