package main

import (
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/origin/redisstore"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// with returns a copy of m with k set to v.
func with(m map[string]string, k, v string) map[string]string {
	c := map[string]string{k: v}
	for mk, mv := range m {
		if mk != k {
			c[mk] = mv
		}
	}
	return c
}

const goodKeys = "k1=0123456789abcdef0123456789abcdef"

func TestConfigErrorsExitTwo(t *testing.T) {
	base := map[string]string{"INGEST_KEYS": goodKeys, "ADMIN_TOKEN": "0123456789abcdef"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad redis url", []string{"-redis", "ftp://x"}, base, "scheme"},
		{"bad cluster list", []string{"-redis", "a:1,b"}, base, "not host:port"},
		{"no host", []string{"-redis", "redis://"}, base, "no host"},
		{"short admin token", []string{"-admin-token", "short"}, base, "at least 16 bytes"},
		{"no keys", nil, map[string]string{"ADMIN_TOKEN": "0123456789abcdef"}, "no ingest keys"},
		{"short key", []string{"-ingest-keys", "k=short"}, base, "at least 32 bytes"},
		{"bad listen", []string{"-listen", "nowhere"}, base, "listen address"},
		{"bad log format", []string{"-log-format", "xml"}, base, "log format"},
		{"unknown flag", []string{"-frob"}, base, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, base, "unexpected arguments"},
		{"unknown durability", []string{"-durability", "paper"}, base, "want none, fsync or replica"},
		{"unknown durability from env", nil, with(base, "DURABILITY", "disk"), "DURABILITY"},
		{"replicas without replica mode", []string{"-replicas", "2"}, base, "apply to -durability replica only"},
		{"replica timeout without replica mode", nil, with(base, "REPLICA_TIMEOUT", "1s"), "apply to -durability replica only"},
		{"trust without fsync", []string{"-durability", "none", "-durability-trust"}, base, "applies to -durability fsync only"},
		{"bad trust env", nil, with(base, "DURABILITY_TRUST", "maybe"), "DURABILITY_TRUST"},
		{"zero replicas", []string{"-durability", "replica", "-replicas", "0"}, base, "want 1..16"},
		{"long replica timeout", []string{"-durability", "replica", "-replica-timeout", "10s"}, base, "from 1ms to 2s"},
		{"bad replica timeout", []string{"-durability", "replica", "-replica-timeout", "soon"}, base, "replica timeout"},
		{"short invite key", nil, with(base, "INVITE_KEY", "0123456789abcdef0123"), "INVITE_KEY or -invite-key must be at least 32 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr syncbuf.Buffer
			if code := run(c.args, env(c.env), &stderr); code != 2 {
				t.Fatalf("exit %d, want 2 (%s)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("message %q lacks %q", stderr.String(), c.want)
			}
			if strings.Contains(stderr.String(), "0123456789abcdef0123") {
				t.Fatalf("a secret leaked into the message: %q", stderr.String())
			}
		})
	}
}

func TestRedisUnreachableExitsOne(t *testing.T) {
	var stderr syncbuf.Buffer
	// Port 1 on loopback refuses connections.
	code := run([]string{"-redis", "redis://127.0.0.1:1/0"}, env(map[string]string{"INGEST_KEYS": goodKeys, "ADMIN_TOKEN": "0123456789abcdef"}), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "redis") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestConfigFlagsOverrideEnv(t *testing.T) {
	var stderr syncbuf.Buffer
	c, err := parseConfig([]string{"-listen", "127.0.0.1:9999", "-log-format", "text"},
		env(map[string]string{"LISTEN_ADDR": "127.0.0.1:1111", "INGEST_KEYS": goodKeys, "ADMIN_TOKEN": "0123456789abcdef", "REDIS_URL": "h1:1,h2:2"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:9999" || c.redisURL != "h1:1,h2:2" || len(c.keys) != 1 {
		t.Fatalf("config %+v", c)
	}
	if c.durability.Mode != redisstore.DurabilityFsync || c.durability.Trust {
		t.Fatalf("default durability %+v, want fsync, untrusted", c.durability)
	}
}

func TestDurabilityConfig(t *testing.T) {
	base := map[string]string{"INGEST_KEYS": goodKeys, "ADMIN_TOKEN": "0123456789abcdef"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want redisstore.Durability
	}{
		{"env replica defaults", nil, with(base, "DURABILITY", "replica"),
			redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 1, ReplicaTimeout: 500 * time.Millisecond}},
		{"flags override env", []string{"-durability", "replica", "-replicas", "2", "-replica-timeout", "250ms"}, with(base, "DURABILITY", "none"),
			redisstore.Durability{Mode: redisstore.DurabilityReplica, Replicas: 2, ReplicaTimeout: 250 * time.Millisecond}},
		{"trusted fsync from env", nil, with(base, "DURABILITY_TRUST", "1"), redisstore.Durability{Mode: redisstore.DurabilityFsync, Trust: true}},
		{"trusted fsync flag", []string{"-durability-trust"}, base, redisstore.Durability{Mode: redisstore.DurabilityFsync, Trust: true}},
		{"untrusted env with none", []string{"-durability", "none"}, with(base, "DURABILITY_TRUST", "0"), redisstore.Durability{Mode: redisstore.DurabilityNone}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr syncbuf.Buffer
			cfg, err := parseConfig(c.args, env(c.env), &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.durability != c.want {
				t.Fatalf("durability %+v, want %+v", cfg.durability, c.want)
			}
		})
	}
}
