// Package origintest runs the real origin binary for tests: it builds
// ./origin/cmd/origin once per test binary, starts it on a free loopback port
// with a generated admin token and ingest key, waits for /healthz, and stops
// it (by process group) when the test ends.
package origintest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// startTimeout bounds how long the origin may take to answer /healthz.
const startTimeout = 20 * time.Second

// Options customise a started origin. The zero value generates everything.
type Options struct {
	// AdminToken is the admin bearer token; empty generates one.
	AdminToken string
	// IngestKey signs batches; a zero key generates one.
	IngestKey sign.Key
	// Env is extra environment (KEY=value) for the process.
	Env []string
	// Args are extra command-line flags.
	Args []string
}

// Origin is a running origin process.
type Origin struct {
	// URL is http://127.0.0.1:port, without a trailing slash.
	URL string
	// Addr is 127.0.0.1:port.
	Addr string
	// AdminToken is the admin API bearer token.
	AdminToken string
	// IngestKey is the key batches must be signed with.
	IngestKey sign.Key
	// RedisURL is the REDIS_URL the origin uses.
	RedisURL string

	t    testing.TB
	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncbuf.Buffer
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the origin binary, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "origintest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "origin")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/edgepoll/edgepoll/origin/cmd/origin")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build origin: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("origintest: %v", buildErr)
	}
	return binPath
}

// moduleRoot is the repository root, found from this file's location.
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Start runs an origin against redisURL with generated secrets.
func Start(t testing.TB, redisURL string) *Origin {
	t.Helper()
	return StartWith(t, redisURL, Options{})
}

// StartWith runs an origin against redisURL with opts. Two origins started
// with the same AdminToken and IngestKey behave as one scaled-out service.
func StartWith(t testing.TB, redisURL string, opts Options) *Origin {
	t.Helper()
	if opts.AdminToken == "" {
		opts.AdminToken = "admin-" + randomHex(16)
	}
	if opts.IngestKey.ID == "" {
		opts.IngestKey = sign.Key{ID: "test", Secret: []byte(randomHex(24))}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("origintest: free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := &Origin{
		URL: "http://" + addr, Addr: addr, AdminToken: opts.AdminToken, IngestKey: opts.IngestKey,
		RedisURL: redisURL, t: t, opts: opts, logs: &syncbuf.Buffer{},
	}
	t.Cleanup(func() {
		o.Stop()
		if t.Failed() {
			t.Logf("origin %s log tail:\n%s", o.Addr, o.logs.Tail(4000))
		}
	})
	o.start()
	return o
}

// InviteKey is the origin's INVITE_KEY, derived from its admin token so
// origins started with the same AdminToken share it, as a scaled-out
// service must.
func (o *Origin) InviteKey() string {
	sum := sha256.Sum256([]byte("edgepoll-test-invite-key\n" + o.AdminToken))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (o *Origin) start() {
	t := o.t
	t.Helper()
	bin := Binary(t)
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if lastErr = o.startOnce(bin); lastErr == nil {
			return
		}
		// The port may still be held by the previous process for a moment.
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("origintest: start origin: %v\nlog:\n%s", lastErr, o.logs.Tail(4000))
}

func (o *Origin) startOnce(bin string) error {
	args := append([]string{"-listen", o.Addr, "-log-format", "text"}, o.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+o.RedisURL,
		"ADMIN_TOKEN="+o.AdminToken,
		"INGEST_KEYS="+o.IngestKey.ID+"="+string(o.IngestKey.Secret),
		"INVITE_KEY="+o.InviteKey(),
	)
	cmd.Env = append(cmd.Env, o.opts.Env...)
	cmd.Stdout = o.logs
	cmd.Stderr = o.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	o.mu.Lock()
	o.cmd, o.done = cmd, done
	o.mu.Unlock()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			o.mu.Lock()
			o.cmd = nil
			o.mu.Unlock()
			return fmt.Errorf("origin exited early: %v", cmd.ProcessState)
		default:
		}
		resp, err := client.Get(o.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	o.kill()
	return fmt.Errorf("origin did not answer /healthz within %v", startTimeout)
}

// Stop sends SIGTERM to the origin's process group and waits for it to exit
// (SIGKILL after 15 s). It is safe to call more than once.
func (o *Origin) Stop() {
	o.Signal(syscall.SIGTERM)
	o.mu.Lock()
	done := o.done
	o.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		o.kill()
	}
	o.mu.Lock()
	o.cmd, o.done = nil, nil
	o.mu.Unlock()
}

// Signal sends sig to the origin's process group without waiting.
func (o *Origin) Signal(sig syscall.Signal) {
	o.mu.Lock()
	cmd := o.cmd
	o.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// Wait blocks until the origin process exits and returns its exit code
// (-1 if it is not running).
func (o *Origin) Wait() int {
	o.mu.Lock()
	cmd, done := o.cmd, o.done
	o.mu.Unlock()
	if cmd == nil {
		return -1
	}
	<-done
	return cmd.ProcessState.ExitCode()
}

func (o *Origin) kill() {
	o.mu.Lock()
	cmd, done := o.cmd, o.done
	o.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if done != nil {
		<-done
	}
}

// Restart stops the origin and starts it again on the same port with the
// same secrets.
func (o *Origin) Restart() {
	o.t.Helper()
	o.Stop()
	o.start()
}

// PID is the running origin's process id (0 when it is not running).
func (o *Origin) PID() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd == nil || o.cmd.Process == nil {
		return 0
	}
	return o.cmd.Process.Pid
}

// Logs returns everything the origin has written to stdout and stderr.
func (o *Origin) Logs() string { return o.logs.String() }

// Sign signs body with the origin's ingest key at now and returns the three
// headers an ingest request needs.
func (o *Origin) Sign(body []byte, now time.Time) http.Header {
	sig := sign.Sign(o.IngestKey, now, body)
	h := http.Header{}
	sig.SetHeaders(h.Set)
	return h
}
