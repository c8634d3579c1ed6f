// Package sign signs and verifies edge→origin batches: HMAC-SHA256 over a key
// id, a timestamp and the body, with a key ring so keys can rotate and a
// window outside which timestamps are refused.
package sign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// HTTP headers that carry a batch signature.
const (
	HeaderKeyID     = "X-Edgepoll-Key-Id"
	HeaderTimestamp = "X-Edgepoll-Timestamp" // Unix seconds, decimal
	HeaderSignature = "X-Edgepoll-Signature" // lower-case hex HMAC-SHA256
)

// DefaultWindow is how far a batch timestamp may be from the verifier's clock.
const DefaultWindow = 5 * time.Minute

// MinKeyLen is the minimum length of a signing secret in bytes.
const MinKeyLen = 32

const domain = "edgepoll-batch-v1\n"

// Key is one named HMAC secret.
type Key struct {
	ID     string
	Secret []byte
}

// Signature is the three header values that authenticate one body.
type Signature struct {
	KeyID     string
	Timestamp int64
	MAC       string
}

// SetHeaders sets the signature's three headers with set, e.g. a
// request's Header.Set (shared stays free of net/http).
func (s Signature) SetHeaders(set func(name, value string)) {
	set(HeaderKeyID, s.KeyID)
	set(HeaderTimestamp, strconv.FormatInt(s.Timestamp, 10))
	set(HeaderSignature, s.MAC)
}

func mac(h hash.Hash, keyID string, ts int64, body []byte) []byte {
	h.Reset()
	h.Write([]byte(domain))
	h.Write([]byte(keyID))
	h.Write([]byte{'\n'})
	var b [20]byte
	h.Write(strconv.AppendInt(b[:0], ts, 10))
	h.Write([]byte{'\n'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the signature of body under k at time now.
func Sign(k Key, now time.Time, body []byte) Signature {
	ts := now.Unix()
	m := mac(hmac.New(sha256.New, k.Secret), k.ID, ts, body)
	return Signature{KeyID: k.ID, Timestamp: ts, MAC: hex.EncodeToString(m)}
}

// RequestBody is what signs a body-less request from an edge to the origin
// (the vote check): its method and path, e.g. "GET /v1/polls/x/voters/…".
func RequestBody(method, path string) []byte {
	return []byte(method + " " + path)
}

// RequestWithBody is what signs an edge's request that carries a small
// body (an invite redeem, identity figures): its method, path, a newline
// and the body, so a captured signature cannot carry another body.
func RequestWithBody(method, path string, body []byte) []byte {
	b := make([]byte, 0, len(method)+len(path)+len(body)+2)
	b = append(append(append(b, method...), ' '), path...)
	b = append(append(b, '\n'), body...)
	return b
}

// ParseKeys parses a key ring "id1=secret1,id2=secret2". Ids are 1–32 of
// [A-Za-z0-9_-]; secrets are at least MinKeyLen bytes and contain no comma.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, secret, ok := strings.Cut(part, "=")
		if !ok || len(id) == 0 || len(id) > 32 || !shared.ValidPollID(id) {
			return nil, shared.Errorf(shared.EINVALID, "key %q: want id=secret with an id of 1-32 [A-Za-z0-9_-]", redact(part))
		}
		if len(secret) < MinKeyLen {
			return nil, shared.Errorf(shared.EINVALID, "key %q: secret must be at least %d bytes", id, MinKeyLen)
		}
		if seen[id] {
			return nil, shared.Errorf(shared.EINVALID, "key %q given twice", id)
		}
		seen[id] = true
		keys = append(keys, Key{ID: id, Secret: []byte(secret)})
	}
	if len(keys) == 0 {
		return nil, shared.Errorf(shared.EINVALID, "no signing keys given")
	}
	return keys, nil
}

func redact(part string) string {
	if id, _, ok := strings.Cut(part, "="); ok {
		return id + "=…"
	}
	if len(part) > 8 {
		return part[:4] + "…"
	}
	return part
}

// Verifier checks signatures against a key ring. It is safe for concurrent use.
type Verifier struct {
	keys   map[string][]byte
	window time.Duration
	now    func() time.Time
	pool   sync.Pool // of map[string]hash.Hash per key, avoiding hmac.New per call
}

// NewVerifier returns a Verifier for keys; window ≤ 0 means DefaultWindow and
// now nil means time.Now.
func NewVerifier(keys []Key, window time.Duration, now func() time.Time) *Verifier {
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	m := make(map[string][]byte, len(keys))
	for _, k := range keys {
		m[k.ID] = k.Secret
	}
	v := &Verifier{keys: m, window: window, now: now}
	v.pool.New = func() any { return map[string]hash.Hash{} }
	return v
}

// Window returns the accepted clock distance; replays must be remembered this long.
func (v *Verifier) Window() time.Duration { return v.window }

// Verify returns nil if sig authenticates body. Errors are EUNAUTHORIZED:
// unknown key id, malformed or stale timestamp, or a bad MAC.
func (v *Verifier) Verify(keyID, timestamp, signature string, body []byte) error {
	secret, ok := v.keys[keyID]
	if !ok {
		return shared.Errorf(shared.EUNAUTHORIZED, "unknown signing key id")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return shared.Errorf(shared.EUNAUTHORIZED, "malformed signature timestamp")
	}
	d := v.now().Sub(time.Unix(ts, 0))
	if d > v.window || d < -v.window {
		return shared.Errorf(shared.EUNAUTHORIZED, "signature timestamp outside the %s window", v.window)
	}
	if len(signature) != 2*sha256.Size {
		return shared.Errorf(shared.EUNAUTHORIZED, "bad signature")
	}
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(signature)); err != nil {
		return shared.Errorf(shared.EUNAUTHORIZED, "bad signature")
	}
	hs := v.pool.Get().(map[string]hash.Hash)
	h, ok := hs[keyID]
	if !ok {
		h = hmac.New(sha256.New, secret)
		hs[keyID] = h
	}
	want := mac(h, keyID, ts, body)
	v.pool.Put(hs)
	if !hmac.Equal(got[:], want) {
		return shared.Errorf(shared.EUNAUTHORIZED, "bad signature")
	}
	return nil
}
