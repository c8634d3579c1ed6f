package redisstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
)

var _ origin.InviteStore = (*Store)(nil)

// invitesKey is a poll's invite codes: a hash of code hash (16 bytes) to
// its serial, prefixed "u" once used. Its figures live in the poll hash
// (inv_created, inv_redeemed, inv_reused, inv_unknown), which a reset keeps.
func invitesKey(id string) string { return "ep:{" + id + "}:inv" }

// addInvitesScript reserves serials and stores unused codes.
//
//	KEYS[1] poll hash, KEYS[2] invites hash
//	ARGV[1..n] code hashes
//
// Returns -1 for an unknown poll, -2 unless its identity is invite, else
// the first serial.
var addInvitesScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], 'identity')
if not id then
  if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
  return -2
end
if id ~= 'invite' then return -2 end
local n = #ARGV
local last = redis.call('HINCRBY', KEYS[1], 'inv_created', n)
local first = last - n + 1
for i = 1, n do
  redis.call('HSETNX', KEYS[2], ARGV[i], first + i - 1)
end
return first
`)

// redeemScript marks a code used.
//
//	KEYS[1] poll hash, KEYS[2] invites hash; ARGV[1] code hash
//
// Returns 1 redeemed, 0 already used, -1 unknown code, -2 unknown poll.
var redeemScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then
  if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
  redis.call('HINCRBY', KEYS[1], 'inv_unknown', 1)
  return -1
end
if string.sub(v, 1, 1) == 'u' then
  redis.call('HINCRBY', KEYS[1], 'inv_reused', 1)
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], 'u' .. v)
redis.call('HINCRBY', KEYS[1], 'inv_redeemed', 1)
return 1
`)

// AddInvites implements origin.InviteStore.
func (s *Store) AddInvites(ctx context.Context, poll string, hashes [][invite.HashLen]byte) (uint64, error) {
	if !shared.ValidPollID(poll) {
		return 0, shared.Errorf(shared.ENOTFOUND, "poll %q not found", poll)
	}
	if len(hashes) == 0 {
		return 0, shared.Errorf(shared.EINVALID, "no invite codes to add")
	}
	args := make([]any, len(hashes))
	for i := range hashes {
		args[i] = string(hashes[i][:])
	}
	first, err := addInvitesScript.Run(ctx, s.rdb, []string{pollKey(poll), invitesKey(poll)}, args...).Int64()
	if err != nil {
		return 0, redisErr(err, "add invites to poll %s", poll)
	}
	switch first {
	case -1:
		return 0, shared.Errorf(shared.ENOTFOUND, "poll %s not found", poll)
	case -2:
		return 0, shared.Errorf(shared.ECONFLICT, "poll %s does not use invite codes (its identity mode is not invite)", poll)
	}
	return uint64(first), nil
}

// RedeemInvite implements origin.InviteStore.
func (s *Store) RedeemInvite(ctx context.Context, poll string, hash [invite.HashLen]byte) error {
	if !shared.ValidPollID(poll) {
		return shared.Errorf(shared.ENOTFOUND, "poll %q not found", poll)
	}
	n, err := redeemScript.Run(ctx, s.rdb, []string{pollKey(poll), invitesKey(poll)}, string(hash[:])).Int()
	if err != nil {
		return redisErr(err, "redeem an invite of poll %s", poll)
	}
	switch n {
	case 1:
		return nil
	case 0:
		return shared.Errorf(shared.ECONFLICT, "this invite code has already been used")
	case -1:
		return shared.Errorf(shared.EFORBIDDEN, "unknown invite code")
	}
	return shared.Errorf(shared.ENOTFOUND, "poll %s not found", poll)
}

// Invites implements origin.InviteStore with HSCAN, so a poll with
// millions of codes is never read at once.
func (s *Store) Invites(ctx context.Context, poll string, fn func(serial uint64, used bool) error) error {
	if _, err := s.meta(ctx, poll); err != nil {
		return err
	}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, invitesKey(poll), cursor, "", 1000).Result()
		if err != nil {
			return redisErr(err, "scan invites of poll %s", poll)
		}
		for i := 1; i < len(kv); i += 2 {
			v, used := strings.CutPrefix(kv[i], "u")
			serial, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return shared.Errorf(shared.EINTERNAL, "stored invite of poll %s: bad serial %q", poll, kv[i])
			}
			if err := fn(serial, used); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// InviteStats implements origin.InviteStore.
func (s *Store) InviteStats(ctx context.Context, poll string) (origin.InviteStats, error) {
	var st origin.InviteStats
	if !shared.ValidPollID(poll) {
		return st, shared.Errorf(shared.ENOTFOUND, "poll %q not found", poll)
	}
	v, err := s.rdb.HMGet(ctx, pollKey(poll), "id", "inv_created", "inv_redeemed", "inv_reused", "inv_unknown").Result()
	if err != nil {
		return st, redisErr(err, "read invite figures of poll %s", poll)
	}
	if v[0] == nil {
		return st, shared.Errorf(shared.ENOTFOUND, "poll %s not found", poll)
	}
	num := func(x any) uint64 { s, _ := x.(string); n, _ := strconv.ParseUint(s, 10, 64); return n }
	st.Created, st.Redeemed, st.Reused, st.Unknown = num(v[1]), num(v[2]), num(v[3]), num(v[4])
	return st, nil
}
