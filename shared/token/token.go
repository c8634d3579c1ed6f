// Package token issues and checks voter tokens: a random 128-bit voter id
// bound to one poll by an HMAC, so the edge can trust a voter id without state.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/edgepoll/edgepoll/shared"
)

// Len is the length of an encoded token: base64url (no padding) of a 16-byte
// voter id and a 16-byte truncated HMAC-SHA256.
const Len = 43

const domain = "edgepoll-voter-v1\n"

func tag(secret []byte, poll string, voter shared.VoterID) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(domain))
	h.Write([]byte(poll))
	h.Write([]byte{'\n'})
	h.Write(voter[:])
	return h.Sum(nil)[:16]
}

// Issue returns the token binding voter to poll under secret.
func Issue(secret []byte, poll string, voter shared.VoterID) string {
	var raw [32]byte
	copy(raw[:16], voter[:])
	copy(raw[16:], tag(secret, poll, voter))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// Verify returns the voter id in tok if tok was issued for poll under secret.
// Errors are EUNAUTHORIZED.
func Verify(secret []byte, poll, tok string) (shared.VoterID, error) {
	var v shared.VoterID
	if len(tok) != Len {
		return v, shared.Errorf(shared.EUNAUTHORIZED, "malformed voter token")
	}
	var raw [32]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(tok))
	if err != nil || n != 32 {
		return v, shared.Errorf(shared.EUNAUTHORIZED, "malformed voter token")
	}
	copy(v[:], raw[:16])
	if !hmac.Equal(raw[16:], tag(secret, poll, v)) || v.IsZero() {
		return shared.VoterID{}, shared.Errorf(shared.EUNAUTHORIZED, "voter token not valid for this poll")
	}
	return v, nil
}
