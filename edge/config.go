package edge

import (
	"strconv"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/jwt"
)

// Defaults applied by New to zero fields of Config.
const (
	DefaultMaxBodyBytes   = 4 << 10
	DefaultDedupeCapacity = 1 << 17
	// DefaultLimiterKeys bounds the keys each rate limiter remembers.
	DefaultLimiterKeys = 1 << 16
	// MinTokenSecretLen is the shortest TOKEN_SECRET accepted.
	MinTokenSecretLen = 32
	// MaxMaxBodyBytes caps MaxBodyBytes: a vote never needs more.
	MaxMaxBodyBytes = 64 << 10
	// DefaultIPv6Prefix is the prefix length IPv6 client addresses are
	// grouped by for per-address limits: a subscriber usually gets a whole
	// /64 and can rotate through it at will.
	DefaultIPv6Prefix = 64
	// MinIPv6Prefix is the shortest IPV6 prefix accepted (a /32 is a whole ISP).
	MinIPv6Prefix = 32
)

// Default rate limits. Per-IP limits are generous because many voters can
// share one address (carrier NAT, an office, a studio audience).
var (
	DefaultVoteRate  = Rate{N: 50, Per: time.Second, Burst: 200}
	DefaultTokenRate = Rate{N: 20, Per: time.Second, Burst: 100}
	DefaultVoterRate = Rate{N: 1, Per: time.Second, Burst: 5}
	DefaultCheckRate = Rate{N: 1, Per: time.Second, Burst: 10}
	// DefaultPollTokenRate is the per-poll ceiling on new voter tokens at
	// one edge location: well above a show's arrival rate at one colo, far
	// below what a botnet asks for.
	DefaultPollTokenRate = Rate{N: 5000, Per: time.Second, Burst: 50000}
)

// Rate is a GCRA rate limit: N events per Per with bursts of Burst.
// The zero Rate means "use the default"; a negative N disables the limit.
type Rate struct {
	N     int
	Per   time.Duration
	Burst int
}

// Off reports whether the limit is disabled.
func (r Rate) Off() bool { return r.N < 0 }

// String formats r the way ParseRate reads it, e.g. "50/1s:200" or "off".
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String() + ":" + strconv.Itoa(r.Burst)
}

// ParseRate parses "N/PERIOD[:BURST]" (PERIOD is s, m, h or a Go duration
// such as 10s; BURST defaults to N) or "off". Errors are EINVALID.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return Rate{N: -1}, nil
	}
	bad := func(why string) (Rate, error) {
		return Rate{}, shared.Errorf(shared.EINVALID, "rate %q: %s (want N/PERIOD[:BURST], e.g. 50/s:200, or off)", s, why)
	}
	n, rest, ok := strings.Cut(s, "/")
	if !ok {
		return bad("missing /")
	}
	per, burst, hasBurst := strings.Cut(rest, ":")
	var r Rate
	var err error
	if r.N, err = strconv.Atoi(n); err != nil || r.N < 1 {
		return bad("N must be a positive integer")
	}
	switch per {
	case "s":
		r.Per = time.Second
	case "m":
		r.Per = time.Minute
	case "h":
		r.Per = time.Hour
	default:
		if r.Per, err = time.ParseDuration(per); err != nil || r.Per <= 0 {
			return bad("PERIOD must be s, m, h or a positive duration")
		}
	}
	r.Burst = r.N
	if hasBurst {
		if r.Burst, err = strconv.Atoi(burst); err != nil || r.Burst < 1 {
			return bad("BURST must be a positive integer")
		}
	}
	return r, nil
}

// Config configures the edge handler. Zero fields take the defaults above,
// except CookieSecure, which is used as given (DefaultConfig and
// ConfigFromEnv set it to true).
type Config struct {
	// TokenSecret keys the voter-token HMAC; at least MinTokenSecretLen bytes.
	// Every edge serving a poll must share it.
	TokenSecret []byte
	// AllowedOrigins lists the origins (scheme://host[:port]) whose pages may
	// call the API cross-origin; "*" allows any origin.
	AllowedOrigins []string
	// EdgeID names this edge (colo, isolate, harness instance) in logs and batches.
	EdgeID string
	// VoteRate limits vote requests per client IP.
	VoteRate Rate
	// TokenRate limits voter-token issuance per client IP.
	TokenRate Rate
	// VoterRate limits vote requests per voter (per poll).
	VoterRate Rate
	// CheckRate limits vote checks (GET /v1/polls/{id}/vote) per voter.
	CheckRate Rate
	// PollTokenRate is each poll's ceiling on new voter tokens at this
	// location, whatever address asks (DefaultPollTokenRate).
	PollTokenRate Rate
	// IPv6Prefix groups IPv6 client addresses by this many leading bits
	// for the per-address limits (DefaultIPv6Prefix; 128 means no grouping).
	IPv6Prefix int
	// JWKS holds the keys that sign voters' JWTs for the signed polls this
	// edge serves; PollJWKS, by poll id, replaces it for one poll.
	JWKS     *jwt.KeySet
	PollJWKS map[string]*jwt.KeySet
	// LimiterKeys bounds the keys each limiter remembers (DefaultLimiterKeys).
	LimiterKeys int
	// DedupeCapacity bounds the (poll, voter) pairs remembered as already voted.
	DedupeCapacity int
	// MaxBodyBytes limits a vote request body (DefaultMaxBodyBytes).
	MaxBodyBytes int
	// CookieSecure marks the voter-token cookie Secure (and SameSite=None,
	// which browsers require for embeds). Turn it off only for plain-HTTP
	// development; the cookie is then SameSite=Lax.
	CookieSecure bool
}

// DefaultConfig returns a Config with every default filled in and
// CookieSecure on; callers set TokenSecret, AllowedOrigins and EdgeID.
func DefaultConfig() Config {
	return Config{
		VoteRate:       DefaultVoteRate,
		TokenRate:      DefaultTokenRate,
		VoterRate:      DefaultVoterRate,
		CheckRate:      DefaultCheckRate,
		PollTokenRate:  DefaultPollTokenRate,
		IPv6Prefix:     DefaultIPv6Prefix,
		LimiterKeys:    DefaultLimiterKeys,
		DedupeCapacity: DefaultDedupeCapacity,
		MaxBodyBytes:   DefaultMaxBodyBytes,
		CookieSecure:   true,
	}
}

// withDefaults returns c with zero fields replaced by defaults.
func (c Config) withDefaults() Config {
	if c.VoteRate == (Rate{}) {
		c.VoteRate = DefaultVoteRate
	}
	if c.TokenRate == (Rate{}) {
		c.TokenRate = DefaultTokenRate
	}
	if c.VoterRate == (Rate{}) {
		c.VoterRate = DefaultVoterRate
	}
	if c.CheckRate == (Rate{}) {
		c.CheckRate = DefaultCheckRate
	}
	if c.PollTokenRate == (Rate{}) {
		c.PollTokenRate = DefaultPollTokenRate
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.LimiterKeys <= 0 {
		c.LimiterKeys = DefaultLimiterKeys
	}
	if c.DedupeCapacity <= 0 {
		c.DedupeCapacity = DefaultDedupeCapacity
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}

// Validate returns an EINVALID error naming the first bad field.
func (c *Config) Validate() error {
	if len(c.TokenSecret) < MinTokenSecretLen {
		return shared.Errorf(shared.EINVALID, "TOKEN_SECRET must be at least %d bytes, got %d", MinTokenSecretLen, len(c.TokenSecret))
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if !validOrigin(o) {
			return shared.Errorf(shared.EINVALID, "ALLOWED_ORIGINS: %q is not an origin like https://example.com or *", o)
		}
	}
	if len(c.EdgeID) > shared.MaxEdgeIDLen {
		return shared.Errorf(shared.EINVALID, "EDGE_ID must be at most %d bytes", shared.MaxEdgeIDLen)
	}
	if c.IPv6Prefix != 0 && (c.IPv6Prefix < MinIPv6Prefix || c.IPv6Prefix > 128) {
		return shared.Errorf(shared.EINVALID, "RATE_IPV6_PREFIX (IPv6Prefix) must be %d-128, got %d", MinIPv6Prefix, c.IPv6Prefix)
	}
	if c.MaxBodyBytes > MaxMaxBodyBytes {
		return shared.Errorf(shared.EINVALID, "MAX_BODY_BYTES (MaxBodyBytes) must be at most %d", MaxMaxBodyBytes)
	}
	for _, r := range []struct {
		name string
		r    Rate
	}{{"vote", c.VoteRate}, {"token", c.TokenRate}, {"voter", c.VoterRate}, {"check", c.CheckRate}, {"poll token", c.PollTokenRate}} {
		if r.r.Off() || r.r == (Rate{}) {
			continue
		}
		if r.r.N < 1 || r.r.Per <= 0 || r.r.Burst < 1 {
			return shared.Errorf(shared.EINVALID, "%s rate %s: N, Per and Burst must be positive", r.name, r.r)
		}
	}
	return nil
}

// validOrigin reports whether o looks like a serialized origin:
// http(s)://host[:port] with no path.
func validOrigin(o string) bool {
	rest, ok := strings.CutPrefix(o, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(o, "http://"); !ok {
			return false
		}
	}
	return rest != "" && !strings.ContainsAny(rest, "/?# \t")
}

// ConfigFromEnv builds a Config from environment-style variables read
// through get (os.Getenv, a Worker's env, a test map):
//
//	TOKEN_SECRET     required, >= 32 bytes
//	ALLOWED_ORIGINS  comma list of origins, or *; empty allows no cross-origin callers
//	EDGE_ID          optional name of this edge
//	RATE_IP_VOTES    optional per-IP vote rate, N/PERIOD[:BURST] or off (default 50/s:200)
//	RATE_IP_TOKENS   optional per-IP token issuance rate (default 20/s:100)
//	RATE_VOTER       optional per-voter vote rate (default 1/s:5)
//	RATE_CHECK       optional per-voter vote-check rate (default 1/s:10)
//	RATE_POLL_TOKENS optional per-poll ceiling on new voter tokens at this location (default 5000/s:50000)
//	RATE_IPV6_PREFIX optional prefix length IPv6 addresses are grouped by for per-address limits (default 64)
//	JWT_JWKS         optional JWKS (JSON) of the keys signing voters' JWTs for signed polls
//	JWT_POLL_JWKS    optional JSON object of poll id to JWKS, replacing JWT_JWKS for those polls
//	DEDUPE_CAPACITY  optional number of (poll, voter) pairs remembered
//	MAX_BODY_BYTES   optional vote body limit (default 4096)
//	COOKIE_SECURE    optional, "false" for plain-HTTP development (default true)
//
// Errors are EINVALID and name the variable.
func ConfigFromEnv(get func(string) string) (Config, error) {
	c := DefaultConfig()
	c.TokenSecret = []byte(get("TOKEN_SECRET"))
	for _, o := range strings.Split(get("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimSuffix(o, "/"))
		}
	}
	c.EdgeID = strings.TrimSpace(get("EDGE_ID"))
	for _, r := range []struct {
		name string
		dst  *Rate
	}{{"RATE_IP_VOTES", &c.VoteRate}, {"RATE_IP_TOKENS", &c.TokenRate}, {"RATE_VOTER", &c.VoterRate}, {"RATE_CHECK", &c.CheckRate}, {"RATE_POLL_TOKENS", &c.PollTokenRate}} {
		if s := get(r.name); s != "" {
			v, err := ParseRate(s)
			if err != nil {
				return Config{}, shared.Errorf(shared.EINVALID, "%s: %s", r.name, shared.ErrorMessage(err))
			}
			*r.dst = v
		}
	}
	for _, n := range []struct {
		name string
		dst  *int
	}{{"DEDUPE_CAPACITY", &c.DedupeCapacity}, {"MAX_BODY_BYTES", &c.MaxBodyBytes}, {"RATE_IPV6_PREFIX", &c.IPv6Prefix}} {
		if s := get(n.name); s != "" {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || v < 1 {
				return Config{}, shared.Errorf(shared.EINVALID, "%s must be a positive integer, got %q", n.name, s)
			}
			*n.dst = v
		}
	}
	if s := strings.TrimSpace(get("COOKIE_SECURE")); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return Config{}, shared.Errorf(shared.EINVALID, "COOKIE_SECURE must be true or false, got %q", s)
		}
		c.CookieSecure = v
	}
	if s := strings.TrimSpace(get("JWT_JWKS")); s != "" {
		k, err := jwt.ParseJWKS([]byte(s))
		if err != nil {
			return Config{}, shared.Errorf(shared.EINVALID, "JWT_JWKS: %s", shared.ErrorMessage(err))
		}
		c.JWKS = k
	}
	if s := strings.TrimSpace(get("JWT_POLL_JWKS")); s != "" {
		m, err := jwt.ParsePollJWKS([]byte(s))
		if err != nil {
			return Config{}, shared.Errorf(shared.EINVALID, "JWT_POLL_JWKS: %s", shared.ErrorMessage(err))
		}
		c.PollJWKS = m
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
