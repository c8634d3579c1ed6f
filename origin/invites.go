package origin

import (
	"context"

	"github.com/edgepoll/edgepoll/shared/invite"
)

// InviteStats are a poll's invite-code figures for the integrity report.
type InviteStats struct {
	Created  uint64 `json:"created"`  // codes created
	Redeemed uint64 `json:"redeemed"` // codes traded for a voter token
	Reused   uint64 `json:"reused"`   // redeem attempts refused because the code was already used
	Unknown  uint64 `json:"unknown"`  // redeem attempts with a well-formed code that does not exist
}

// InviteStore keeps a poll's single-use invite codes as keyed hashes
// (invite.Hash), never in clear. Each code has a serial number, 1 for the
// poll's first code, so an admin can tell which codes were used from the
// list they were given; nothing links a code to the voter token it bought
// or to a vote.
type InviteStore interface {
	// AddInvites stores hashes as unused codes numbered from the serial it
	// returns (reserved atomically, so concurrent calls never share one).
	// Returns ENOTFOUND for an unknown poll, ECONFLICT unless the poll's
	// identity mode is invite.
	AddInvites(ctx context.Context, poll string, hashes [][invite.HashLen]byte) (first uint64, err error)
	// RedeemInvite marks a code used, atomically: of any number of
	// concurrent calls for one code, exactly one succeeds. Returns
	// ECONFLICT for a code already used and EFORBIDDEN for an unknown one.
	RedeemInvite(ctx context.Context, poll string, hash [invite.HashLen]byte) error
	// Invites streams every code's serial and whether it was used, in no
	// particular order, stopping at fn's first error. Returns ENOTFOUND.
	Invites(ctx context.Context, poll string, fn func(serial uint64, used bool) error) error
	// InviteStats returns the poll's invite figures. Returns ENOTFOUND.
	InviteStats(ctx context.Context, poll string) (InviteStats, error)
}
