package edge

import (
	"net/http"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/jwt"
)

// Token request limits.
const (
	// MaxJWTLen bounds a JWT in a token request: an app's voting JWT is a
	// few hundred bytes.
	MaxJWTLen = 4 << 10
	// maxTokenRequestBytes bounds a POST /v1/polls/{id}/token body.
	maxTokenRequestBytes = MaxJWTLen + 256
)

// tokenRequest is a decoded POST /v1/polls/{id}/token body.
type tokenRequest struct {
	Code string // invite polls
	JWT  string // signed polls
}

func errTokenRequest(format string, args ...any) error {
	return shared.Errorf(shared.EINVALID, "malformed token request: "+format, args...)
}

// decodeTokenRequest decodes {"code":"..."} or {"jwt":"..."} strictly: one
// object with exactly one of the two keys, a string, no trailing data.
// Errors are EINVALID and never echo the code or the JWT.
func decodeTokenRequest(data []byte, tr *tokenRequest) error {
	*tr = tokenRequest{}
	p := jsonParser{data: data}
	p.skipSpace()
	if !p.consume('{') {
		return errTokenRequest("body must be a JSON object {\"code\":\"...\"} or {\"jwt\":\"...\"}")
	}
	p.skipSpace()
	if !p.consume('"') {
		return errTokenRequest("body must be a JSON object {\"code\":\"...\"} or {\"jwt\":\"...\"}")
	}
	p.pos-- // key() reads the quote itself
	key, err := p.key()
	if err != nil {
		return errTokenRequest("bad key")
	}
	p.skipSpace()
	if !p.consume(':') {
		return errTokenRequest("expected ':' after the key")
	}
	p.skipSpace()
	switch key {
	case "code":
		if tr.Code, err = p.str(invite.MaxInputLen, "code"); err != nil {
			return errTokenRequest("\"code\" must be a string of at most %d bytes", invite.MaxInputLen)
		}
	case "jwt":
		if tr.JWT, err = p.str(MaxJWTLen, "jwt"); err != nil {
			return errTokenRequest("\"jwt\" must be a string of at most %d bytes", MaxJWTLen)
		}
	default:
		return errTokenRequest("the only keys are \"code\" and \"jwt\"")
	}
	p.skipSpace()
	if !p.consume('}') {
		return errTokenRequest("send one key, \"code\" or \"jwt\"")
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return errTokenRequest("trailing data after the JSON object")
	}
	if tr.Code == "" && tr.JWT == "" {
		return errTokenRequest("empty %s", key)
	}
	return nil
}

// signedVoter verifies a signed poll's JWT (against the poll's JWKS, else
// the edge's) and returns the voter it names: a keyed hash of the poll, iss
// and sub, so one account is one voter wherever it votes from. Otherwise it
// answers 401 (logging the reason at debug level) and returns false.
func (h *handler) signedVoter(w http.ResponseWriter, p *shared.Poll, tok string, now time.Time) (shared.VoterID, bool) {
	keys := h.cfg.PollJWKS[p.ID]
	if keys == nil {
		keys = h.cfg.JWKS
	}
	cl, err := jwt.Verify(tok, keys, jwt.Expect{Issuer: p.JWTIssuer, Audience: p.JWTAudience, Now: now})
	if err != nil {
		if jwt.ReasonOf(err) == jwt.ReasonNoKeysForJWT {
			h.host.Log("error", "edge: a signed poll has no JWKS here: set JWT_JWKS or JWT_POLL_JWKS", "poll", p.ID)
		}
		h.host.Log("debug", "edge: JWT refused", "poll", p.ID, "reason", string(jwt.ReasonOf(err)))
		if ic, ok := h.host.(IdentityCounter); ok {
			ic.TokenRefused(p.ID, string(jwt.ReasonOf(err)))
		}
		writeError(w, err)
		return shared.VoterID{}, false
	}
	return jwt.VoterID(h.cfg.TokenSecret, p.ID, cl.Issuer, cl.Subject), true
}
