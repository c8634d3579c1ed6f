package main

import (
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/internal/syncbuf"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

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
}
