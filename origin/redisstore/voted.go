package redisstore

import (
	"context"
	"encoding/binary"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/edgepoll/edgepoll/shared"
)

// Voted reports whether voter's vote is counted in poll: one SISMEMBER on
// the voter's dedupe bucket, pipelined with a read of the poll's bucket
// count that proves the poll exists and the bucket right (a stale cached
// count costs a second round trip). Returns ENOTFOUND for an unknown poll.
func (s *Store) Voted(ctx context.Context, poll string, voter shared.VoterID) (bool, error) {
	if !shared.ValidPollID(poll) {
		return false, shared.Errorf(shared.ENOTFOUND, "poll %q not found", poll)
	}
	member := strconv.FormatUint(binary.BigEndian.Uint64(voter[:8])>>2+memberBase, 10)
	buckets := s.cachedBuckets(poll)
	for attempt := 0; attempt < 3; attempt++ {
		var bc *redis.StringCmd
		var mc *redis.BoolCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			bc = p.HGet(ctx, pollKey(poll), "buckets")
			if buckets > 0 {
				mc = p.SIsMember(ctx, bucketKey(poll, voter, buckets), member)
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			return false, redisErr(err, "check voter in poll %s", poll)
		}
		got, err := bc.Int()
		if err == redis.Nil {
			return false, shared.Errorf(shared.ENOTFOUND, "poll %s not found", poll)
		}
		if err != nil || got <= 0 {
			return false, shared.Errorf(shared.EINTERNAL, "poll %s has no valid bucket count", poll)
		}
		if got == buckets && mc != nil {
			return mc.Val(), nil
		}
		buckets = got
		s.setCachedBuckets(poll, got)
	}
	return false, shared.Errorf(shared.EUNAVAILABLE, "check voter in poll %s: bucket count keeps changing", poll)
}

// bucketKey is the dedupe bucket holding voter in a poll of buckets buckets
// (the apply script's layout, see build).
func bucketKey(poll string, voter shared.VoterID, buckets int) string {
	return string(appendHex4([]byte(bucketPrefix(poll)), binary.BigEndian.Uint32(voter[8:12])&uint32(buckets-1)))
}
