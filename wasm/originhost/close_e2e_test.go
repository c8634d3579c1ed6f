package originhost_test

import (
	"testing"

	"github.com/edgepoll/edgepoll/internal/closetest"
)

// TestAnnouncedCloseKeepsEveryPromise: voters vote steadily through the
// harness (a pool of guest instances) while the poll's close is announced;
// every 202 is counted, every vote sent after closes_at is refused. Then an
// immediate close shows each vote acknowledged in its propagation window
// as rejected.
func TestAnnouncedCloseKeepsEveryPromise(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server and origin; skipped with -short")
	}
	s := startStack(t, 3)
	edge := closetest.Edge{URL: s.url, Admin: func(method, path, body string) (int, []byte) {
		return s.adminStatus(t, method, path, body)
	}}
	closetest.Run(t, edge, "closing")
	closetest.RunImmediate(t, edge, "emergency")
}
