package edge

import (
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const secret32 = "0123456789abcdef0123456789abcdef"

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{
		"TOKEN_SECRET":    secret32,
		"ALLOWED_ORIGINS": " https://a.example/, http://localhost:8787 ,",
		"EDGE_ID":         "colo-ams",
		"RATE_IP_VOTES":   "100/s:300",
		"RATE_IP_TOKENS":  "off",
		"RATE_VOTER":      "2/10s",
		"DEDUPE_CAPACITY": "5000",
		"MAX_BODY_BYTES":  "2048",
		"COOKIE_SECURE":   "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if string(c.TokenSecret) != secret32 || c.EdgeID != "colo-ams" || c.DedupeCapacity != 5000 || c.MaxBodyBytes != 2048 || c.CookieSecure {
		t.Errorf("config %+v", c)
	}
	if strings.Join(c.AllowedOrigins, " ") != "https://a.example http://localhost:8787" {
		t.Errorf("origins %q", c.AllowedOrigins)
	}
	if c.VoteRate != (Rate{100, time.Second, 300}) || !c.TokenRate.Off() || c.VoterRate != (Rate{2, 10 * time.Second, 2}) {
		t.Errorf("rates %v %v %v", c.VoteRate, c.TokenRate, c.VoterRate)
	}

	d, err := ConfigFromEnv(env(map[string]string{"TOKEN_SECRET": secret32, "ALLOWED_ORIGINS": "*"}))
	if err != nil {
		t.Fatal(err)
	}
	if !d.CookieSecure || d.VoteRate != DefaultVoteRate || d.MaxBodyBytes != DefaultMaxBodyBytes || d.AllowedOrigins[0] != "*" {
		t.Errorf("defaults %+v", d)
	}

	for name, m := range map[string]map[string]string{
		"TOKEN_SECRET":    {"TOKEN_SECRET": "short"},
		"ALLOWED_ORIGINS": {"TOKEN_SECRET": secret32, "ALLOWED_ORIGINS": "a.example"},
		"EDGE_ID":         {"TOKEN_SECRET": secret32, "EDGE_ID": strings.Repeat("e", 65)},
		"RATE_IP_VOTES":   {"TOKEN_SECRET": secret32, "RATE_IP_VOTES": "lots"},
		"RATE_VOTER":      {"TOKEN_SECRET": secret32, "RATE_VOTER": "1/s:0"},
		"DEDUPE_CAPACITY": {"TOKEN_SECRET": secret32, "DEDUPE_CAPACITY": "-1"},
		"MAX_BODY_BYTES":  {"TOKEN_SECRET": secret32, "MAX_BODY_BYTES": "10000000"},
		"COOKIE_SECURE":   {"TOKEN_SECRET": secret32, "COOKIE_SECURE": "maybe"},
	} {
		_, err := ConfigFromEnv(env(m))
		if shared.ErrorCode(err) != shared.EINVALID || !strings.Contains(err.Error(), strings.Split(name, "_")[0]) {
			t.Errorf("%s: err %v, want EINVALID naming it", name, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"5/s":      {5, time.Second, 5},
		"5/m:10":   {5, time.Minute, 10},
		"1/h":      {1, time.Hour, 1},
		"3/500ms":  {3, 500 * time.Millisecond, 3},
		" off ":    {N: -1},
		"10/10s:1": {10, 10 * time.Second, 1},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "0/s", "-1/s", "x/s", "5/", "5/-1s", "5/s:", "5/s:x", "5/parsec"} {
		if _, err := ParseRate(in); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("ParseRate(%q): %v, want EINVALID", in, err)
		}
	}
	if s := (Rate{5, time.Minute, 10}).String(); s != "5/1m0s:10" {
		t.Errorf("String %q", s)
	}
}

func TestIdentityLimitsFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{"TOKEN_SECRET": secret32, "RATE_POLL_TOKENS": "500/s:2000", "RATE_IPV6_PREFIX": "56"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PollTokenRate != (Rate{500, time.Second, 2000}) || c.IPv6Prefix != 56 {
		t.Errorf("poll token rate %v, IPv6 prefix %d", c.PollTokenRate, c.IPv6Prefix)
	}
	d, err := ConfigFromEnv(env(map[string]string{"TOKEN_SECRET": secret32}))
	if err != nil || d.PollTokenRate != DefaultPollTokenRate || d.IPv6Prefix != DefaultIPv6Prefix {
		t.Errorf("defaults %v %d %v", d.PollTokenRate, d.IPv6Prefix, err)
	}
	for _, v := range []string{"16", "129", "x"} {
		if _, err := ConfigFromEnv(env(map[string]string{"TOKEN_SECRET": secret32, "RATE_IPV6_PREFIX": v})); shared.ErrorCode(err) != shared.EINVALID || !strings.Contains(err.Error(), "RATE_IPV6_PREFIX") {
			t.Errorf("RATE_IPV6_PREFIX=%s: %v", v, err)
		}
	}
}

func TestAddrKey(t *testing.T) {
	for _, c := range []struct {
		ip   string
		bits int
		want string
	}{
		{"198.51.100.7", 64, "198.51.100.7"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::9", 64, "2001:db8:1:2::/64"},
		{"2001:DB8:1:2::9", 64, "2001:db8:1:2::/64"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"2001:db8:1:2ff::1", 56, "2001:db8:1:200::/56"},
		{"2001:db8::1", 128, "2001:db8::1"},
		{"::ffff:192.0.2.1", 64, "::ffff:192.0.2.1"},
		{"not:an:address", 64, "not:an:address"},
		{"unknown", 64, "unknown"},
	} {
		if got := addrKey(c.ip, c.bits); got != c.want {
			t.Errorf("addrKey(%q, %d) = %q, want %q", c.ip, c.bits, got, c.want)
		}
	}
}

func TestJWKSFromEnv(t *testing.T) {
	jwks := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}`
	c, err := ConfigFromEnv(env(map[string]string{"TOKEN_SECRET": secret32, "JWT_JWKS": jwks, "JWT_POLL_JWKS": `{"vip":` + jwks + `}`}))
	if err != nil {
		t.Fatal(err)
	}
	if c.JWKS == nil || len(c.JWKS.Keys) != 1 || c.PollJWKS["vip"] == nil || c.PollJWKS["vip"].Keys[0].ID != "k1" || string(c.PollJWKS["vip"].Raw) != jwks {
		t.Fatalf("JWKS %+v, per poll %+v", c.JWKS, c.PollJWKS)
	}
	for name, m := range map[string]map[string]string{
		"JWT_JWKS":      {"TOKEN_SECRET": secret32, "JWT_JWKS": `{"keys":[{"kty":"RSA"}]}`},
		"JWT_POLL_JWKS": {"TOKEN_SECRET": secret32, "JWT_POLL_JWKS": `{"bad id!":` + jwks + `}`},
	} {
		if _, err := ConfigFromEnv(env(m)); shared.ErrorCode(err) != shared.EINVALID || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want EINVALID naming it", name, err)
		}
	}
}

func TestTokenModes(t *testing.T) {
	for _, m := range []shared.Identity{shared.IdentityOpen, shared.IdentityInvite, shared.IdentitySigned} {
		for b := range 256 {
			v := shared.VoterID{byte(b), 7}
			markVoter(&v, m)
			tok := secretTokens{[]byte(secret32)}
			s, _ := tok.IssueToken("p", v)
			if got := tokenModes(s)[0]; got != m {
				t.Fatalf("first byte %#x marked %s: tokenModes tries %s first", b, m, got)
			}
		}
	}
}
