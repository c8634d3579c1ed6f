package originhost_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/internal/closetest"
)

// TestAnnouncedCloseKeepsEveryPromise: voters vote steadily through the
// harness (a pool of guest instances) while the poll's close is announced;
// every 202 is counted, every vote sent after closes_at is refused.
func TestAnnouncedCloseKeepsEveryPromise(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStack(t, 3)
	admin := func(method, path, body string) (int, []byte) {
		req, err := http.NewRequest(method, s.origin.URL+"/v1/admin/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.origin.AdminToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("admin %s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	closetest.Run(t, closetest.Edge{URL: s.url, Admin: admin}, "closing")
	closetest.RunImmediate(t, closetest.Edge{URL: s.url, Admin: admin}, "emergency")
}
