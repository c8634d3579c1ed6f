package benchfix

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/token"
)

// The identity benchmarks' polls (make bench-identity), served by Host
// beside PollID (identity open).
const (
	PollInvite = "benchinv" // identity invite
	PollSigned = "benchsig" // identity signed, iss JWTIssuer, aud JWTAudience
	JWTIssuer  = "https://app.example"
	// JWTAudience is the signed poll's jwt_audience.
	JWTAudience = "edgepoll-bench"
)

// jwtKey signs the benchmark's JWTs; its public half is Env's JWT_JWKS.
var jwtKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))

func init() {
	x := base64.RawURLEncoding.EncodeToString(jwtKey.Public().(ed25519.PublicKey))
	Env["JWT_JWKS"] = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"b1"}]}`
	Env["RATE_POLL_TOKENS"] = "off"
}

func identityPoll(id string, mode shared.Identity) shared.Poll {
	p := shared.Poll{ID: id, Title: "Benchmark", Kind: shared.KindSingle, State: shared.StateOpen,
		Visibility: shared.VisibilityLive, Version: 1, Identity: mode,
		Options: []shared.Option{{Label: "a"}, {Label: "b"}, {Label: "c"}, {Label: "d"}}}
	if mode == shared.IdentitySigned {
		p.JWTIssuer, p.JWTAudience = JWTIssuer, JWTAudience
	}
	return p
}

// invites is the in-memory redeem ledger: every well-formed code redeems
// once, as at an origin holding all of them, without the network.
type invites struct {
	mu   sync.Mutex
	used map[invite.Code]bool
}

var _ edge.InviteHost = (*Host)(nil)

// RedeemInvite implements edge.InviteHost from memory.
func (h *Host) RedeemInvite(_ context.Context, poll string, code invite.Code) error {
	if poll != PollInvite {
		return shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	h.inv.mu.Lock()
	defer h.inv.mu.Unlock()
	if h.inv.used == nil {
		h.inv.used = make(map[invite.Code]bool)
	}
	if h.inv.used[code] {
		return shared.Errorf(shared.ECONFLICT, "this invite code has already been used")
	}
	h.inv.used[code] = true
	return nil
}

// InviteBody returns a token request for a fresh invite code.
func InviteBody() []byte {
	var r [invite.RandomSymbols]byte
	if _, err := randRead(r[:]); err != nil {
		panic(err)
	}
	c, err := invite.New(bytes.NewReader(r[:]))
	if err != nil {
		panic(err)
	}
	return []byte(`{"code":"` + c.Format() + `"}`)
}

// SignedBody returns a token request with a JWT for account sub, valid for
// an hour from now.
func SignedBody(sub int) []byte {
	now := time.Now().Unix()
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-%d","iat":%d,"exp":%d}`, JWTIssuer, JWTAudience, sub, now, now+3600)
	in := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"b1","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return []byte(`{"jwt":"` + in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(jwtKey, []byte(in))) + `"}`)
}

// VoteBodyFor returns a JSON vote body for a fresh voter of poll id (one
// of PollID, PollInvite, PollSigned), its token bound as the edge binds it.
func VoteBodyFor(id string, choice int) []byte {
	mode := map[string]shared.Identity{PollInvite: shared.IdentityInvite, PollSigned: shared.IdentitySigned}[id]
	p := identityPoll(id, mode)
	var v shared.VoterID
	if _, err := randRead(v[:]); err != nil {
		panic(err)
	}
	v[0] = v[0]&^3 | map[shared.Identity]byte{shared.IdentityInvite: 1, shared.IdentitySigned: 2}[mode] // the edge's mode bits
	v[15] |= 1
	return fmt.Appendf(nil, `{"token":%q,"choice":%d}`, token.Issue([]byte(Secret), edge.TokenScope(&p), v), choice%4)
}
