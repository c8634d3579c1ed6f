package edge

import (
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

// TokenService issues and checks voter tokens (package shared/token's
// format). A Host that also implements it does the token cryptography for
// the handler: the wasm guest hands it to its native host through a host
// import, because HMAC-SHA256 compiled to wasm runs 20–80× slower than
// native code, and the secret can then stay with the host. Hosts that do not
// implement it (the Worker, native tests) get shared/token with
// Config.TokenSecret. Both must produce and accept the same tokens.
type TokenService interface {
	// IssueToken returns the token binding voter v to poll.
	IssueToken(poll string, v shared.VoterID) (string, error)
	// VerifyToken returns the voter id in tok if tok was issued for poll;
	// errors are EUNAUTHORIZED for a bad token, or another code if the
	// service itself failed.
	VerifyToken(poll, tok string) (shared.VoterID, error)
}

// secretTokens is the TokenService of hosts without one: shared/token
// keyed with the configured secret.
type secretTokens struct{ secret []byte }

func (s secretTokens) IssueToken(poll string, v shared.VoterID) (string, error) {
	return token.Issue(s.secret, poll, v), nil
}

func (s secretTokens) VerifyToken(poll, tok string) (shared.VoterID, error) {
	return token.Verify(s.secret, poll, tok)
}
