// Package token issues and checks voter tokens: a random 128-bit voter id
// bound to one poll by an HMAC, so the edge can trust a voter id without state.
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"

	"github.com/edgepoll/edgepoll/shared"
)

// Len is the length of an encoded token: base64url (no padding) of a 16-byte
// voter id and a 16-byte truncated HMAC-SHA256.
const Len = 43

const domain = "edgepoll-voter-v1\n"

// maxPooledSecrets bounds the per-secret HMAC pools; an edge uses one or two
// secrets (two while rotating).
const maxPooledSecrets = 8

var (
	poolsMu sync.Mutex
	pools   = map[string]*sync.Pool{}
)

// macPool returns a pool of HMAC-SHA256 states keyed by secret, so the hot
// path does not rebuild the key schedule (and allocate) on every token.
func macPool(secret []byte) *sync.Pool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if p, ok := pools[string(secret)]; ok {
		return p
	}
	if len(pools) >= maxPooledSecrets {
		return nil
	}
	key := append([]byte(nil), secret...)
	p := &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}
	pools[string(key)] = p
	return p
}

// macState is a pooled HMAC with a scratch buffer for its message, so that
// writing through the hash.Hash interface does not allocate.
type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// tag appends the 16-byte tag binding voter to poll to dst.
func tag(dst, secret []byte, poll string, voter shared.VoterID) []byte {
	pool := macPool(secret)
	var m *macState
	if pool != nil {
		m = pool.Get().(*macState)
		m.h.Reset()
	} else {
		m = &macState{h: hmac.New(sha256.New, secret)}
	}
	m.buf = append(append(append(append(m.buf[:0], domain...), poll...), '\n'), voter[:]...)
	m.h.Write(m.buf)
	out := m.h.Sum(m.sum[:0])
	dst = append(dst, out[:16]...)
	if pool != nil {
		pool.Put(m)
	}
	return dst
}

// Issue returns the token binding voter to poll under secret.
func Issue(secret []byte, poll string, voter shared.VoterID) string {
	var raw [32]byte
	copy(raw[:16], voter[:])
	tag(raw[16:16], secret, poll, voter)
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
	var want [16]byte
	if !hmac.Equal(raw[16:], tag(want[:0], secret, poll, v)) || v.IsZero() {
		return shared.VoterID{}, shared.Errorf(shared.EUNAUTHORIZED, "voter token not valid for this poll")
	}
	return v, nil
}
