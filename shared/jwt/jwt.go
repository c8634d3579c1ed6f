// Package jwt verifies the JWTs a signed poll's app gives its voters, and
// derives their voter ids. It supports exactly what the edge needs: JWS
// compact serialization signed with EdDSA (Ed25519) or ES256, keys from a
// JWKS, and the iss, aud, exp, nbf and sub claims.
//
// It is written on the standard library's crypto/ed25519 and crypto/ecdsa
// rather than a JOSE library: the well-kept Go ones (go-jose,
// golang-jwt, lestrrat-go/jwx) decode headers and claims with
// encoding/json and reflection, which TinyGo's reflect and encoding/json
// do not fully support, and pull in much more than two algorithms need.
// The little JSON reader here refuses duplicate keys, and the verifier
// refuses every algorithm but the two, so alg "none" and HS256-with-the-
// public-key cannot be smuggled in.
package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// Limits and defaults.
const (
	// MaxLen bounds a JWT.
	MaxLen = 4 << 10
	// MaxSubLen bounds the sub claim.
	MaxSubLen = 256
	// DefaultSkew is the clock skew allowed on exp and nbf.
	DefaultSkew = 30 * time.Second
	// MaxKeys bounds the keys of one JWKS.
	MaxKeys = 32
)

// Algorithms accepted.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// Reason names why a JWT was refused, for the integrity report's
// "JWT failures by reason" and the 401's message.
type Reason string

// Reasons a JWT is refused.
const (
	ReasonMalformed    Reason = "malformed"     // not a JWS compact JWT with JSON header and claims
	ReasonAlg          Reason = "bad_alg"       // alg other than EdDSA or ES256 (none, HS256, …), or crit
	ReasonUnknownKey   Reason = "unknown_kid"   // no key with its kid (and alg)
	ReasonSignature    Reason = "bad_signature" // signature does not verify
	ReasonExpired      Reason = "expired"       // exp (plus skew) has passed, or no exp
	ReasonNotYetValid  Reason = "not_yet_valid" // nbf (minus skew) is still ahead
	ReasonIssuer       Reason = "wrong_iss"
	ReasonAudience     Reason = "wrong_aud"
	ReasonSubject      Reason = "bad_sub" // sub missing, empty or too long
	ReasonNoKeysForJWT Reason = "no_keys" // this edge has no JWKS for the poll
)

// Reasons lists every Reason, for metrics and reports.
var Reasons = []Reason{ReasonMalformed, ReasonAlg, ReasonUnknownKey, ReasonSignature, ReasonExpired, ReasonNotYetValid, ReasonIssuer, ReasonAudience, ReasonSubject, ReasonNoKeysForJWT}

// Error is why a JWT was refused. Verify returns it wrapped in an
// EUNAUTHORIZED *shared.Error whose message names the reason.
type Error struct {
	Reason Reason
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return "JWT refused: " + string(e.Reason)
	}
	return "JWT refused: " + string(e.Reason) + ": " + e.Detail
}

func refuse(r Reason, detail string) error {
	e := &Error{Reason: r, Detail: detail}
	return shared.Wrap(shared.EUNAUTHORIZED, e, e.Error())
}

func malformed(detail string) error { return refuse(ReasonMalformed, detail) }

// ReasonOf returns err's Reason, or "" if err is not a refused JWT.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Key is one verification key of a JWKS.
type Key struct {
	ID  string // kid; may be empty
	Alg string // AlgEdDSA or AlgES256
	ed  ed25519.PublicKey
	ec  *ecdsa.PublicKey
}

// KeySet is a parsed JWKS.
type KeySet struct {
	Keys []Key
	// Raw is the JWKS as configured, so it can be handed on (to a guest).
	Raw []byte
}

func b64(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil
}

// ParseJWKS parses a JWKS {"keys":[...]} of Ed25519 (kty OKP, crv Ed25519)
// and P-256 (kty EC, crv P-256) public keys. A key with "use" other than
// "sig", an "alg" that does not fit it, or private parts ("d") is refused,
// as is any other kty or crv: a configuration error should be loud.
// Errors are EINVALID.
func ParseJWKS(data []byte) (*KeySet, error) {
	bad := func(format string, args ...any) (*KeySet, error) {
		return nil, shared.Errorf(shared.EINVALID, "JWKS: "+format, args...)
	}
	v, err := parseJSON(data)
	if err != nil || v.kind != kObject {
		return bad("not a JSON object {\"keys\":[...]}")
	}
	ks, ok := v.member("keys")
	if !ok || ks.kind != kArray || len(ks.arr) == 0 || len(ks.arr) > MaxKeys {
		return bad("\"keys\" must be an array of 1-%d keys", MaxKeys)
	}
	set := &KeySet{Raw: append([]byte(nil), data...)}
	for i, k := range ks.arr {
		if k.kind != kObject {
			return bad("key %d is not an object", i)
		}
		str := func(name string) string { s, _ := k.stringMember(name); return s }
		for _, name := range []string{"kty", "crv", "x", "y", "kid", "alg", "use"} {
			if _, ok := k.stringMember(name); !ok {
				return bad("key %d: %s must be a string", i, name)
			}
		}
		if _, priv := k.member("d"); priv {
			return bad("key %d holds a private key (\"d\"): configure public keys only", i)
		}
		if u := str("use"); u != "" && u != "sig" {
			return bad("key %d: use %q, want sig", i, u)
		}
		key := Key{ID: str("kid")}
		switch kty, crv := str("kty"), str("crv"); {
		case kty == "OKP" && crv == "Ed25519":
			x, ok := b64(str("x"))
			if !ok || len(x) != ed25519.PublicKeySize {
				return bad("key %d: x must be %d bytes of base64url", i, ed25519.PublicKeySize)
			}
			key.Alg, key.ed = AlgEdDSA, ed25519.PublicKey(x)
		case kty == "EC" && crv == "P-256":
			x, okx := b64(str("x"))
			y, oky := b64(str("y"))
			if !okx || !oky || len(x) != 32 || len(y) != 32 {
				return bad("key %d: x and y must be 32 bytes of base64url each", i)
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return bad("key %d: not a point on P-256", i)
			}
			key.Alg, key.ec = AlgES256, pub
		default:
			return bad("key %d: kty %q crv %q: only OKP/Ed25519 and EC/P-256 keys are supported", i, kty, crv)
		}
		if a := str("alg"); a != "" && a != key.Alg {
			return bad("key %d: alg %q does not fit its key type (want %s)", i, a, key.Alg)
		}
		set.Keys = append(set.Keys, key)
	}
	return set, nil
}

// ParsePollJWKS parses {"poll-id": JWKS, ...}: per-poll key sets. Errors
// are EINVALID and name the poll.
func ParsePollJWKS(data []byte) (map[string]*KeySet, error) {
	v, err := parseJSON(data)
	if err != nil || v.kind != kObject {
		return nil, shared.Errorf(shared.EINVALID, "want a JSON object of poll id to JWKS")
	}
	out := make(map[string]*KeySet, len(v.obj))
	for id, m := range v.obj {
		if !shared.ValidPollID(id) || m.kind != kObject {
			return nil, shared.Errorf(shared.EINVALID, "poll %q: want a poll id and a JWKS object", quote(id))
		}
		ks, err := ParseJWKS(m.raw(data))
		if err != nil {
			return nil, shared.Errorf(shared.EINVALID, "poll %s: %s", id, shared.ErrorMessage(err))
		}
		out[id] = ks
	}
	return out, nil
}

// AppendPollJWKS appends m as ParsePollJWKS reads it.
func AppendPollJWKS(dst []byte, m map[string]*KeySet) []byte {
	dst = append(dst, '{')
	first := true
	for id, ks := range m {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(append(append(dst, '"'), id...), `":`...)
		dst = append(dst, ks.Raw...)
	}
	return append(dst, '}')
}

// find returns the key for a header's kid and alg.
func (s *KeySet) find(kid, alg string) (*Key, error) {
	var only *Key
	n := 0
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.Alg != alg {
			continue
		}
		if kid != "" && k.ID == kid {
			return k, nil
		}
		only = k
		n++
	}
	if kid == "" && n == 1 {
		return only, nil
	}
	if kid == "" {
		return nil, refuse(ReasonUnknownKey, "no kid, and not exactly one "+alg+" key")
	}
	return nil, refuse(ReasonUnknownKey, "no "+alg+" key with this kid")
}

// Claims are the verified claims the edge uses.
type Claims struct {
	Issuer  string
	Subject string
	Expires time.Time
}

// Expect is what a poll requires of its JWTs.
type Expect struct {
	Issuer   string
	Audience string
	Now      time.Time
	Skew     time.Duration // 0 means DefaultSkew
}

// Verify checks tok, a compact JWS, against keys and want: the header's alg
// must be EdDSA or ES256 and name (by kid, or as the only key of its alg) a
// key of keys, the signature must verify, iss must equal want.Issuer, aud
// (a string or an array) must contain want.Audience, exp is required and
// must be after Now-Skew, nbf when present must be before Now+Skew, and sub
// must be 1-MaxSubLen bytes. Errors are EUNAUTHORIZED, carrying an *Error
// (see ReasonOf) with the first failing check's Reason; the signature is checked before any claim,
// so an unsigned token learns nothing about the claims.
func Verify(tok string, keys *KeySet, want Expect) (Claims, error) {
	if len(tok) > MaxLen {
		return Claims{}, malformed("longer than " + itoa(MaxLen) + " bytes")
	}
	h64, rest, ok1 := strings.Cut(tok, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s64, '.') >= 0 {
		return Claims{}, malformed("want three base64url parts")
	}
	hb, okh := b64(h64)
	pb, okp := b64(p64)
	sig, oks := b64(s64)
	if !okh || !okp || !oks {
		return Claims{}, malformed("a part is not base64url")
	}
	hdr, err := parseJSON(hb)
	if err != nil || hdr.kind != kObject {
		return Claims{}, malformed("header is not a JSON object")
	}
	alg, ok := hdr.stringMember("alg")
	kid, okk := hdr.stringMember("kid")
	if !ok || !okk {
		return Claims{}, malformed("alg and kid must be strings")
	}
	if alg != AlgEdDSA && alg != AlgES256 {
		return Claims{}, refuse(ReasonAlg, "alg "+quote(alg)+" (accepted: EdDSA, ES256)")
	}
	if _, crit := hdr.member("crit"); crit {
		return Claims{}, refuse(ReasonAlg, "crit extensions are not supported")
	}
	if keys == nil || len(keys.Keys) == 0 {
		return Claims{}, refuse(ReasonNoKeysForJWT, "this edge has no keys for the poll's app")
	}
	key, err := keys.find(kid, alg)
	if err != nil {
		return Claims{}, err
	}
	input := tok[:len(h64)+1+len(p64)]
	if !key.verify(input, sig) {
		return Claims{}, refuse(ReasonSignature, "")
	}
	cl, err := parseJSON(pb)
	if err != nil || cl.kind != kObject {
		return Claims{}, malformed("claims are not a JSON object")
	}
	skew := want.Skew
	if skew <= 0 {
		skew = DefaultSkew
	}
	now := want.Now.Unix()
	exp, present, ok := cl.intMember("exp")
	if !ok {
		return Claims{}, malformed("exp is not a number")
	}
	if !present {
		return Claims{}, refuse(ReasonExpired, "no exp: voting JWTs must expire")
	}
	if now >= exp+int64(skew/time.Second) {
		return Claims{}, refuse(ReasonExpired, "")
	}
	nbf, present, ok := cl.intMember("nbf")
	if !ok {
		return Claims{}, malformed("nbf is not a number")
	}
	if present && now+int64(skew/time.Second) < nbf {
		return Claims{}, refuse(ReasonNotYetValid, "")
	}
	iss, ok := cl.stringMember("iss")
	if !ok || iss != want.Issuer || iss == "" {
		return Claims{}, refuse(ReasonIssuer, "")
	}
	if !audienceHas(cl, want.Audience) {
		return Claims{}, refuse(ReasonAudience, "")
	}
	sub, ok := cl.stringMember("sub")
	if !ok || sub == "" || len(sub) > MaxSubLen {
		return Claims{}, refuse(ReasonSubject, "sub must be a string of 1-"+itoa(MaxSubLen)+" bytes")
	}
	return Claims{Issuer: iss, Subject: sub, Expires: time.Unix(exp, 0)}, nil
}

func audienceHas(cl value, aud string) bool {
	a, ok := cl.member("aud")
	if !ok || aud == "" {
		return false
	}
	switch a.kind {
	case kString:
		return a.str == aud
	case kArray:
		for _, e := range a.arr {
			if e.kind == kString && e.str == aud {
				return true
			}
		}
	}
	return false
}

// verify checks sig over input with k.
func (k *Key) verify(input string, sig []byte) bool {
	switch k.Alg {
	case AlgEdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, []byte(input), sig)
	case AlgES256:
		// JWS carries ES256 signatures as r || s, 32 bytes each (RFC 7518 §3.4), not ASN.1.
		if len(sig) != 64 {
			return false
		}
		d := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, d[:], r, s)
	}
	return false
}

// VoterID derives a signed poll's voter id from the JWT's issuer and
// subject: the first 16 bytes of HMAC-SHA256(secret, "edgepoll-signed-
// voter-v1\n" poll "\n" iss "\n" sub). One account is one voter of a poll,
// whichever device or edge it comes through; without secret the id says
// nothing about sub, which is never stored.
func VoterID(secret []byte, poll, iss, sub string) shared.VoterID {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("edgepoll-signed-voter-v1\n" + poll + "\n" + iss + "\n" + sub))
	var v shared.VoterID
	copy(v[:], m.Sum(nil))
	if v.IsZero() {
		v[15] = 1 // never the zero id (probability 2^-128)
	}
	return v
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// quote returns s quoted and cut to 16 bytes, safe to echo.
func quote(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	b := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= ' ' && c <= '~' && c != '"' {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	return string(append(b, '"'))
}
