//go:build linux

package audience

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/edge"
)

// Size budgets of a first load, gzipped, HTML, JS and CSS together.
const (
	voteBudget   = 30 << 10
	screenBudget = 60 << 10
)

var assetRef = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)

// get fetches url as a browser would (gzip accepted) and returns the
// response and the bytes on the wire.
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// firstLoad sums the wire bytes of a page and the assets its HTML names,
// checking each asset's headers; it returns the total and the HTML.
func firstLoad(t *testing.T, base, page string) (int, string) {
	t.Helper()
	resp, wire := get(t, base+page)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("%s: %d, encoding %q", page, resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	total := len(wire)
	plain, _ := http.Get(base + page)
	html, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	refs := assetRef.FindAllStringSubmatch(string(html), -1)
	if len(refs) == 0 {
		t.Fatalf("%s names no /assets/ files:\n%s", page, html)
	}
	for _, m := range refs {
		ar, ab := get(t, base+m[1])
		if ar.StatusCode != 200 {
			t.Fatalf("%s: %d", m[1], ar.StatusCode)
		}
		if got := ar.Header.Get("Cache-Control"); got != edge.AssetCacheControl {
			t.Errorf("%s: Cache-Control %q, want %q", m[1], got, edge.AssetCacheControl)
		}
		if ar.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", m[1])
		}
		total += len(ab)
	}
	return total, string(html)
}

// TestPagesServedWithHeadersAndBudgets checks what the harness sends for
// the pages: their headers, and the first-load sizes against the budgets.
func TestPagesServedWithHeadersAndBudgets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the pages and starts the stack")
	}
	s := startStack(t, "https://news.example")
	base := s.h.URL()
	for _, p := range []string{"/p/demo", "/p/demo/screen"} {
		resp, _ := get(t, base+p)
		want := map[string]string{
			"Content-Security-Policy": edge.PageCSP([]string{"https://news.example"}),
			"Cache-Control":           edge.PageCacheControl,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         edge.ReferrerPolicy,
			"Content-Type":            "text/html; charset=utf-8",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", p, k, got, v)
			}
		}
		etag := resp.Header.Get("ETag")
		req, _ := http.NewRequest("GET", base+p, nil)
		req.Header.Set("If-None-Match", etag)
		if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 304 {
			t.Errorf("%s with If-None-Match: %v %v, want 304", p, r.StatusCode, err)
		}
	}
	if !strings.Contains(edge.PageCSP([]string{"https://news.example"}), "frame-ancestors 'self' https://news.example") {
		t.Error("CSP does not frame-limit to the allowed origins")
	}
	for _, bad := range []string{"/p/", "/p/bad%20id", "/p/a/b", "/assets/nope.js"} {
		if resp, _ := get(t, base+bad); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", bad, resp.StatusCode)
		}
	}
	if resp, _ := get(t, base+"/embed.js"); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != edge.EmbedCacheControl {
		t.Errorf("embed.js: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	vote, html := firstLoad(t, base, "/p/demo")
	if strings.Contains(html, "<script>") || strings.Contains(html, "style=") {
		t.Error("the voting page has inline script or style")
	}
	screen, _ := firstLoad(t, base, "/p/demo/screen")
	t.Logf("first load, gzipped: voting page %d bytes, big screen %d bytes", vote, screen)
	if vote > voteBudget {
		t.Errorf("voting page first load %d bytes gzipped, budget %d", vote, voteBudget)
	}
	if screen > screenBudget {
		t.Errorf("big-screen first load %d bytes gzipped, budget %d", screen, screenBudget)
	}
}
