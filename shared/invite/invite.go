// Package invite is the format of single-use invite codes, their keyed
// hash, and the signed edge→origin redeem call. It is shared by the origin,
// which creates and redeems codes, and the edge, which checks a code's
// format before it asks the origin.
//
// A code is 20 symbols of Crockford's base32 (0-9, A-Z without I, L, O, U):
// 18 random symbols (90 bits, so a guess succeeds with probability N/2^90
// for N live codes) and 2 check symbols, written in groups of four:
// "7K3Q-M9XD-W2TB-HZ4R-N8CE". Parse accepts lower case, spaces, dashes and
// the usual misreadings (I and L for 1, O for 0).
package invite

import (
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"strings"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// Alphabet is Crockford's base32.
const Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Code sizes.
const (
	RandomSymbols = 18 // 90 bits
	CheckSymbols  = 2  // 10 bits of SHA-256 over the random symbols
	Symbols       = RandomSymbols + CheckSymbols
	Bits          = RandomSymbols * 5       // entropy of a code
	FormattedLen  = Symbols + Symbols/4 - 1 // with a dash after every four symbols
	// MaxInputLen bounds what Parse reads: a code with generous spacing.
	MaxInputLen = 64
	// HashLen is the length of a code's keyed hash as stored.
	HashLen = 16
	// MinKeyLen is the shortest INVITE_KEY accepted.
	MinKeyLen = 32
)

// Code is a canonical invite code: Symbols upper-case symbols, no dashes.
type Code string

// New returns a fresh code read from rand (crypto/rand.Reader in production).
func New(rand io.Reader) (Code, error) {
	var raw [RandomSymbols]byte
	if _, err := io.ReadFull(rand, raw[:]); err != nil {
		return "", shared.Wrap(shared.EUNAVAILABLE, err, "no randomness for an invite code")
	}
	var b [Symbols]byte
	for i, r := range raw {
		b[i] = Alphabet[r&31] // 256 is a multiple of 32: no bias
	}
	check(b[:RandomSymbols], b[RandomSymbols:])
	return Code(b[:]), nil
}

// check writes the CheckSymbols symbols of body into dst.
func check(body, dst []byte) {
	sum := sha256.Sum256(body)
	dst[0] = Alphabet[sum[0]&31]
	dst[1] = Alphabet[sum[1]&31]
}

// symbol maps one input character to its canonical symbol, or 0.
func symbol(c byte) byte {
	switch {
	case c >= 'a' && c <= 'z':
		c -= 'a' - 'A'
	}
	switch c {
	case 'I', 'L':
		return '1'
	case 'O':
		return '0'
	case 'U':
		return 0
	}
	if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' {
		return c
	}
	return 0
}

// Parse returns the canonical form of s, a code as a voter may type it.
// Errors are EINVALID and never echo the input.
func Parse(s string) (Code, error) {
	if len(s) > MaxInputLen {
		return "", shared.Errorf(shared.EINVALID, "malformed invite code: longer than %d characters", MaxInputLen)
	}
	var b [Symbols]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == ' ' {
			continue
		}
		sym := symbol(c)
		if sym == 0 {
			return "", shared.Errorf(shared.EINVALID, "malformed invite code: only letters, digits and dashes")
		}
		if n == Symbols {
			return "", shared.Errorf(shared.EINVALID, "malformed invite code: want %d letters and digits", Symbols)
		}
		b[n] = sym
		n++
	}
	if n != Symbols {
		return "", shared.Errorf(shared.EINVALID, "malformed invite code: want %d letters and digits", Symbols)
	}
	var want [CheckSymbols]byte
	check(b[:RandomSymbols], want[:])
	if b[RandomSymbols] != want[0] || b[RandomSymbols+1] != want[1] {
		return "", shared.Errorf(shared.EINVALID, "malformed invite code: a letter or digit is mistyped")
	}
	return Code(b[:]), nil
}

// Format writes c in groups of four separated by dashes.
func (c Code) Format() string {
	var sb strings.Builder
	sb.Grow(FormattedLen)
	for i := 0; i < len(c); i++ {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(c[i])
	}
	return sb.String()
}

// Hash is the keyed hash of c for poll as the origin stores it: the first
// HashLen bytes of HMAC-SHA256(key, "edgepoll-invite-v1\n" poll "\n" code).
// Without key, a stolen Redis dump does not reveal or confirm any code.
func Hash(key []byte, poll string, c Code) [HashLen]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("edgepoll-invite-v1\n" + poll + "\n" + string(c)))
	var out [HashLen]byte
	copy(out[:], m.Sum(nil))
	return out
}

// RedeemPath is the origin path an edge POSTs a code to: the body is the
// canonical code, and the request is signed with an ingest key over
// SignedBody.
func RedeemPath(poll string) string { return "/v1/polls/" + poll + "/invites/redeem" }

// SignedBody is what a redeem request's signature covers: the method and
// path (as for the vote check) and the code, so a captured signature
// cannot redeem another code.
func SignedBody(method, path string, code []byte) []byte {
	return sign.RequestWithBody(method, path, code)
}

// RedeemOutcome is what the origin's status answering a redeem means to the
// edge, the same on every host: nil once the code is redeemed (204 or 200);
// ECONFLICT for a code already used (409), EFORBIDDEN for an unknown code
// (403), ENOTFOUND for an unknown poll (404); anything else EUNAVAILABLE,
// since the code may or may not have been used.
func RedeemOutcome(status int) error {
	switch status {
	case 204, 200:
		return nil
	case 409:
		return shared.Errorf(shared.ECONFLICT, "this invite code has already been used")
	case 403:
		return shared.Errorf(shared.EFORBIDDEN, "unknown invite code")
	case 404:
		return shared.Errorf(shared.ENOTFOUND, "unknown poll")
	}
	return shared.Errorf(shared.EUNAVAILABLE, "origin answered %d to the invite redeem", status)
}
