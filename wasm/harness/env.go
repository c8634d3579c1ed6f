package harness

import (
	"strconv"
	"strings"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared/jwt"
)

// EnvKeys lists the variables edge.ConfigFromEnv reads: what a host passes
// through Config.Env (and nothing else: never the ingest key or admin
// secrets).
var EnvKeys = []string{
	"TOKEN_SECRET", "ALLOWED_ORIGINS", "EDGE_ID", "RATE_IP_VOTES", "RATE_IP_TOKENS",
	"RATE_VOTER", "RATE_CHECK", "DEDUPE_CAPACITY", "MAX_BODY_BYTES", "COOKIE_SECURE",
	"RATE_POLL_TOKENS", "RATE_IPV6_PREFIX", "JWT_JWKS", "JWT_POLL_JWKS",
}

// EnvFromConfig returns a Config.Env serving cfg in the variables
// edge.ConfigFromEnv reads, so a guest configures itself like the native
// handler given cfg. (LimiterKeys has no variable; the guest uses the default.)
func EnvFromConfig(cfg edge.Config) func(string) (string, bool) {
	m := map[string]string{
		"TOKEN_SECRET":    string(cfg.TokenSecret),
		"ALLOWED_ORIGINS": strings.Join(cfg.AllowedOrigins, ","),
		"EDGE_ID":         cfg.EdgeID,
		"COOKIE_SECURE":   strconv.FormatBool(cfg.CookieSecure),
	}
	for name, r := range map[string]edge.Rate{"RATE_IP_VOTES": cfg.VoteRate, "RATE_IP_TOKENS": cfg.TokenRate, "RATE_VOTER": cfg.VoterRate, "RATE_CHECK": cfg.CheckRate, "RATE_POLL_TOKENS": cfg.PollTokenRate} {
		if r != (edge.Rate{}) {
			m[name] = r.String()
		}
	}
	if cfg.DedupeCapacity > 0 {
		m["DEDUPE_CAPACITY"] = strconv.Itoa(cfg.DedupeCapacity)
	}
	if cfg.MaxBodyBytes > 0 {
		m["MAX_BODY_BYTES"] = strconv.Itoa(cfg.MaxBodyBytes)
	}
	if cfg.IPv6Prefix > 0 {
		m["RATE_IPV6_PREFIX"] = strconv.Itoa(cfg.IPv6Prefix)
	}
	if cfg.JWKS != nil {
		m["JWT_JWKS"] = string(cfg.JWKS.Raw)
	}
	if len(cfg.PollJWKS) > 0 {
		m["JWT_POLL_JWKS"] = string(jwt.AppendPollJWKS(nil, cfg.PollJWKS))
	}
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok && v != ""
	}
}
