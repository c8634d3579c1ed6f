package worker

import (
	"strconv"
	"strings"
	"time"
)

// cacheControl is the part of a Cache-Control header the edge honours.
type cacheControl struct {
	maxAge  time.Duration // freshness lifetime; 0 means do not serve without revalidating
	swr     time.Duration // stale-while-revalidate window after maxAge
	noStore bool          // no-store, no-cache or private: keep no shared copy
}

// parseCacheControl reads max-age (s-maxage wins), stale-while-revalidate and
// the directives that forbid a shared cache from keeping the response.
// Unknown directives and malformed values are ignored.
func parseCacheControl(h string) cacheControl {
	var cc cacheControl
	sMaxAge := time.Duration(-1)
	for _, d := range strings.Split(h, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		secs := func() time.Duration {
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n < 0 {
				return 0
			}
			return time.Duration(n) * time.Second
		}
		switch name {
		case "max-age":
			cc.maxAge = secs()
		case "s-maxage":
			sMaxAge = secs()
		case "stale-while-revalidate":
			cc.swr = secs()
		case "no-store", "no-cache", "private":
			cc.noStore = true
		}
	}
	if sMaxAge >= 0 {
		cc.maxAge = sMaxAge
	}
	if cc.noStore {
		cc.maxAge, cc.swr = 0, 0
	}
	return cc
}
