// Package cachecontrol reads the part of an HTTP Cache-Control header that
// edgepoll's edge caches honour. Both edge hosts (the Worker and the wazero
// harness) use it, so they agree on what the origin's headers mean.
package cachecontrol

import (
	"strconv"
	"strings"
	"time"
)

// Directives are the freshness rules of one response.
type Directives struct {
	MaxAge  time.Duration // freshness lifetime; 0 means revalidate before serving
	SWR     time.Duration // stale-while-revalidate window after MaxAge
	NoStore bool          // no-store, no-cache or private: keep no shared copy
	// Set reports whether the header said anything about freshness
	// (max-age, s-maxage or one of the NoStore directives).
	Set bool
}

// Parse reads max-age (s-maxage wins, as for a shared cache),
// stale-while-revalidate and the directives that forbid a shared cache from
// keeping the response. Unknown directives and malformed values are ignored;
// a malformed or negative number of seconds counts as 0.
func Parse(h string) Directives {
	var d Directives
	sMaxAge := time.Duration(-1)
	for _, part := range strings.Split(h, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		secs := func() time.Duration {
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n < 0 {
				return 0
			}
			return time.Duration(n) * time.Second
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "max-age":
			d.MaxAge, d.Set = secs(), true
		case "s-maxage":
			sMaxAge, d.Set = secs(), true
		case "stale-while-revalidate":
			d.SWR = secs()
		case "no-store", "no-cache", "private":
			d.NoStore, d.Set = true, true
		}
	}
	if sMaxAge >= 0 {
		d.MaxAge = sMaxAge
	}
	if d.NoStore {
		d.MaxAge, d.SWR = 0, 0
	}
	return d
}
