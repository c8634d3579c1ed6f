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

// TestKillRestartKeepsAcknowledgedWrites checks the default server writes
// every acknowledged command to its append-only file before answering: a
// SIGKILL and a restart keep it.
func TestKillRestartKeepsAcknowledgedWrites(t *testing.T) {
	s := Start(t)
	if reply, err := s.Do("CONFIG", "GET", "appendfsync"); err != nil || reply != "appendfsync\nalways" {
		t.Fatalf("CONFIG GET appendfsync: %q, %v", reply, err)
	}
	if _, err := s.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Running() {
		t.Fatal("still running after Kill")
	}
	s.Restart(t)
	if v, err := s.Do("GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET after restart: %q, %v", v, err)
	}
}

func TestReplicaFollowsPrimary(t *testing.T) {
	p := StartWith(t, Options{Persistence: NoPersistence})
	if reply, err := p.Do("CONFIG", "GET", "appendonly"); err != nil || reply != "appendonly\nno" {
		t.Fatalf("CONFIG GET appendonly: %q, %v", reply, err)
	}
	r := StartReplica(t, p, Options{})
	if n, err := OnlineReplicas(p); err != nil || n != 1 {
		t.Fatalf("OnlineReplicas: %d, %v", n, err)
	}
	if _, err := p.Do("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Do("WAIT", "1", "5000"); err != nil || n != "1" {
		t.Fatalf("WAIT: %q, %v", n, err)
	}
	if v, err := r.Do("GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET on the replica: %q, %v", v, err)
	}
}
