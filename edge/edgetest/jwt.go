package edgetest

import (
	"crypto/ed25519"
	"encoding/base64"
	"strconv"

	"github.com/edgepoll/edgepoll/shared/jwt"
)

// The table's JWT signing keys: TableConfig's JWKS holds the public half
// of signingKey under kid "t1"; otherKey is in no JWKS.
var (
	signingKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	otherKey   = ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 1))
)

// JWKSJSON is the table's JWKS.
func JWKSJSON() string {
	x := base64.RawURLEncoding.EncodeToString(signingKey.Public().(ed25519.PublicKey))
	return `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"t1","alg":"EdDSA","use":"sig"}]}`
}

func tableJWKS() *jwt.KeySet {
	k, err := jwt.ParseJWKS([]byte(JWKSJSON()))
	if err != nil {
		panic(err)
	}
	return k
}

// claimsFor are the vip poll's claims for sub, valid for five minutes from Epoch.
func claimsFor(sub string) string {
	return `{"iss":"` + JWTIssuer + `","aud":"` + JWTAudience + `","sub":"` + sub + `","iat":` + strconv.FormatInt(Epoch.Unix(), 10) +
		`,"exp":` + strconv.FormatInt(Epoch.Unix()+300, 10) + `}`
}

// SignJWT returns a compact EdDSA JWS of header and claims (JSON texts)
// under the table's key, or under a key no JWKS holds when other is true.
func SignJWT(header, claims string, other bool) string {
	k := signingKey
	if other {
		k = otherKey
	}
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(k, []byte(in)))
}

// VoterJWT is a good JWT of the vip poll for sub.
func VoterJWT(sub string) string { return SignJWT(`{"alg":"EdDSA","kid":"t1"}`, claimsFor(sub), false) }

func jwtBody(tok string) string { return `{"jwt":"` + tok + `"}` }
