package edge

import "strings"

// Headers of the audience pages (docs/PAGES.md), the same on every host:
// the harness sends them from wasm/pages, the Worker from its glue
// (edge/worker/glue/worker.mjs, checked against these by a test).
const (
	// PageCacheControl is the HTML pages' cache: short, since a page's
	// asset names change with every build.
	PageCacheControl = "public, max-age=60"
	// AssetCacheControl is for content-hashed asset names.
	AssetCacheControl = "public, max-age=31536000, immutable"
	// EmbedCacheControl is for embed.js, whose URL is fixed in snippets.
	EmbedCacheControl = "public, max-age=300"
	// ReferrerPolicy is sent with every page and asset.
	ReferrerPolicy = "strict-origin-when-cross-origin"
)

// PageCSP is the pages' Content-Security-Policy: everything from the edge
// itself, no inline script or style, and framing only by the edge's own
// pages and the ALLOWED_ORIGINS (any site when that is *).
func PageCSP(allowed []string) string {
	anc := "'self'"
	for _, o := range allowed {
		if o == "*" {
			anc = "*"
			break
		}
		anc += " " + o
	}
	return strings.Join([]string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
		"connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors " + anc,
	}, "; ")
}
