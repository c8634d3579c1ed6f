package jwt_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/jwt"
)

// vectors are JWTs and a JWKS made by jose (testdata/gen.mjs).
type vectors struct {
	Generator string          `json:"generator"`
	Now       int64           `json:"now"`
	Iss       string          `json:"iss"`
	Aud       string          `json:"aud"`
	JWKS      json.RawMessage `json:"jwks"`
	Cases     []struct {
		Name string `json:"name"`
		JWT  string `json:"jwt"`
		Want string `json:"want"`
		Sub  string `json:"sub"`
	} `json:"cases"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestJoseVectors verifies every jose-made JWT: the good ones yield their
// sub, every failure (bad signature, alg none, HS256 keyed with the public
// key, RS256, expired, not yet valid, wrong aud or iss, unknown kid, no
// sub, crit, malformed) its reason and a 401.
func TestJoseVectors(t *testing.T) {
	v := loadVectors(t)
	keys, err := jwt.ParseJWKS(v.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 2 || len(v.Cases) < 20 {
		t.Fatalf("%d keys, %d cases from %s", len(keys.Keys), len(v.Cases), v.Generator)
	}
	want := jwt.Expect{Issuer: v.Iss, Audience: v.Aud, Now: time.Unix(v.Now, 0)}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			cl, err := jwt.Verify(c.JWT, keys, want)
			if c.Want == "ok" {
				if err != nil || cl.Subject != c.Sub || cl.Issuer != v.Iss {
					t.Fatalf("got %+v, %v; want sub %q", cl, err, c.Sub)
				}
				return
			}
			if got := jwt.ReasonOf(err); string(got) != c.Want {
				t.Fatalf("reason %q (%v), want %q", got, err, c.Want)
			}
			if shared.ErrorCode(err) != shared.EUNAUTHORIZED || !strings.Contains(shared.ErrorMessage(err), c.Want) {
				t.Fatalf("error %v: want an unauthorized error naming %s", err, c.Want)
			}
		})
	}
	// The same good token outside its window, and under another poll's claims.
	good := v.Cases[0].JWT
	for name, e := range map[string]jwt.Expect{
		"an hour later":  {Issuer: v.Iss, Audience: v.Aud, Now: time.Unix(v.Now+3600, 0)},
		"other audience": {Issuer: v.Iss, Audience: "other-poll", Now: time.Unix(v.Now, 0)},
		"other issuer":   {Issuer: "https://app2.example", Audience: v.Aud, Now: time.Unix(v.Now, 0)},
	} {
		if _, err := jwt.Verify(good, keys, e); shared.ErrorCode(err) != shared.EUNAUTHORIZED {
			t.Errorf("%s: %v, want 401", name, err)
		}
	}
	if _, err := jwt.Verify(good, nil, want); jwt.ReasonOf(err) != jwt.ReasonNoKeysForJWT {
		t.Errorf("no keys: %v", err)
	}
}

func TestParseJWKSRejects(t *testing.T) {
	x := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for name, s := range map[string]string{
		"not json":      `{`,
		"no keys":       `{"keys":[]}`,
		"keys not list": `{"keys":{}}`,
		"rsa":           `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		"short x":       `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
		"private":       `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","d":"` + x + `"}]}`,
		"use enc":       `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","use":"enc"}]}`,
		"alg mismatch":  `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","alg":"ES256"}]}`,
		"off curve":     `{"keys":[{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + x + `"}]}`,
		"P-384":         `{"keys":[{"kty":"EC","crv":"P-384","x":"` + x + `","y":"` + x + `"}]}`,
		"dup key":       `{"keys":[],"keys":[]}`,
		"kid number":    `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":1}]}`,
	} {
		if _, err := jwt.ParseJWKS([]byte(s)); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

// TestDuplicateClaimsRefused: a token whose claims name sub twice is
// refused even with a good signature, so no two parsers can disagree.
func TestDuplicateClaimsRefused(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys := mustKeys(t, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`+base64.RawURLEncoding.EncodeToString(pub)+`"}]}`)
	tok := signEd(priv, `{"alg":"EdDSA"}`, `{"iss":"i","aud":"a","exp":2000000000,"sub":"alice","sub":"bob"}`)
	if _, err := jwt.Verify(tok, keys, jwt.Expect{Issuer: "i", Audience: "a", Now: time.Unix(1e9, 0)}); jwt.ReasonOf(err) != jwt.ReasonMalformed {
		t.Fatalf("duplicate sub: %v", err)
	}
	dupAlg := signEd(priv, `{"alg":"EdDSA","alg":"none"}`, `{"iss":"i","aud":"a","exp":2000000000,"sub":"alice"}`)
	if _, err := jwt.Verify(dupAlg, keys, jwt.Expect{Issuer: "i", Audience: "a", Now: time.Unix(1e9, 0)}); jwt.ReasonOf(err) != jwt.ReasonMalformed {
		t.Fatalf("duplicate alg: %v", err)
	}
}

func TestVoterID(t *testing.T) {
	s := bytes.Repeat([]byte{7}, 32)
	a := jwt.VoterID(s, "p", "https://app.example", "user-1")
	if a.IsZero() || a != jwt.VoterID(s, "p", "https://app.example", "user-1") {
		t.Fatal("voter id not stable")
	}
	for _, b := range []shared.VoterID{
		jwt.VoterID(s, "q", "https://app.example", "user-1"),
		jwt.VoterID(s, "p", "https://app2.example", "user-1"),
		jwt.VoterID(s, "p", "https://app.example", "user-2"),
		jwt.VoterID(s, "p", "https://app.example\nuser-1", ""),
		jwt.VoterID(bytes.Repeat([]byte{8}, 32), "p", "https://app.example", "user-1"),
	} {
		if a == b {
			t.Fatal("voter id ignores poll, iss, sub or the secret")
		}
	}
}

func mustKeys(t testing.TB, s string) *jwt.KeySet {
	t.Helper()
	k, err := jwt.ParseJWKS([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signEd(priv ed25519.PrivateKey, header, claims string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

func signES(priv *ecdsa.PrivateKey, header, claims string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func benchVerify(b *testing.B, tok string, keys *jwt.KeySet) {
	want := jwt.Expect{Issuer: "https://app.example", Audience: "edgepoll-vip", Now: time.Unix(1767225600, 0)}
	if _, err := jwt.Verify(tok, keys, want); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := jwt.Verify(tok, keys, want); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEdDSA and BenchmarkVerifyES256 measure one verification of
// a jose-made JWT (make bench-identity runs them natively and under wazero).
func BenchmarkVerifyEdDSA(b *testing.B) {
	v := loadVectors(b)
	benchVerify(b, v.Cases[0].JWT, mustKeys(b, string(v.JWKS)))
}

func BenchmarkVerifyES256(b *testing.B) {
	v := loadVectors(b)
	benchVerify(b, v.Cases[1].JWT, mustKeys(b, string(v.JWKS)))
}

func FuzzVerify(f *testing.F) {
	v := loadVectors(f)
	for _, c := range v.Cases {
		f.Add(c.JWT)
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(signES(priv, `{"alg":"ES256","kid":"ec1"}`, `{"sub":"\u00e9\ud83d\ude00","aud":["x"],"exp":1.5e9}`))
	keys := mustKeys(f, string(v.JWKS))
	want := jwt.Expect{Issuer: v.Iss, Audience: v.Aud, Now: time.Unix(v.Now, 0)}
	f.Fuzz(func(t *testing.T, tok string) {
		cl, err := jwt.Verify(tok, keys, want)
		if err != nil {
			if shared.ErrorCode(err) != shared.EUNAUTHORIZED || jwt.ReasonOf(err) == "" {
				t.Fatalf("error %v: want a 401 with a reason", err)
			}
			return
		}
		if cl.Subject == "" || cl.Issuer != v.Iss {
			t.Fatalf("accepted %q with claims %+v", tok, cl)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	v := loadVectors(f)
	f.Add(string(v.JWKS))
	f.Add(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := jwt.ParseJWKS([]byte(s))
		if err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error %v: want EINVALID", err)
			}
			return
		}
		if len(k.Keys) == 0 {
			t.Fatal("empty key set accepted")
		}
	})
}
