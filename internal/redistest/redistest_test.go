package redistest

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartServesAndStops(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		s := Start(t)
		addr = s.Addr
		if !strings.HasPrefix(s.URL, "redis://127.0.0.1:") {
			t.Fatalf("URL %q", s.URL)
		}
		if reply, err := command(s.Addr, "PING"); err != nil || reply != "PONG" {
			t.Fatalf("PING: %q, %v", reply, err)
		}
	})
	// The subtest's cleanup stopped the server: its port refuses connections.
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("redis-server at %s still accepts connections after cleanup", addr)
	}
}
