//go:build linux

// Package harnesstest runs the wazero edge harness (wasm/cmd/harness) as a
// real process for the platform suites (chaos, flood, soak): built once per
// test binary, restartable on the same address and spool, killable.
package harnesstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/shared"
)

// TokenSecret is the TOKEN_SECRET the harness is started with.
const TokenSecret = "harnesstest-token-secret-0123456789abcdef0123"

// Harness is one harness process and what it needs to start again.
type Harness struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Logs collects the process's stdout and stderr.
	Logs *syncbuf.Buffer

	t         testing.TB
	bin       string
	module    string
	spool     string
	cache     string
	env       []string
	instances int
	args      []string

	mu     sync.Mutex
	offset time.Duration // CLOCK_OFFSET of the next start
	cmd    *exec.Cmd
	done   chan struct{}
}

// Options configure a harness.
type Options struct {
	// Origin is ORIGIN_URL.
	Origin string
	// IngestKey is INGEST_KEY (id=secret).
	IngestKey string
	// Env is extra environment; by default every rate limit is off.
	Env []string
	// Instances is -instances (default 8).
	Instances int
	// Args are extra command-line flags.
	Args []string
}

// Start builds the harness and the guest module, starts the process and
// waits for /healthz. It is killed when the test ends.
func Start(t testing.TB, o Options) *Harness {
	t.Helper()
	dir := t.TempDir()
	h := &Harness{t: t, Addr: FreeAddr(t), Logs: &syncbuf.Buffer{},
		bin: filepath.Join(dir, "harness"), module: filepath.Join(dir, "edge.wasm"),
		spool: filepath.Join(dir, "spool"), cache: filepath.Join(dir, "cache")}
	if o.Instances <= 0 {
		o.Instances = 8
	}
	Build(t, h.bin, "github.com/edgepoll/edgepoll/wasm/cmd/harness")
	Build(t, h.module, "github.com/edgepoll/edgepoll/wasm/guest", "GOOS=wasip1", "GOARCH=wasm")
	h.env = append([]string{"ORIGIN_URL=" + o.Origin, "INGEST_KEY=" + o.IngestKey,
		"TOKEN_SECRET=" + TokenSecret, "EDGE_ID=harnesstest",
		"RATE_IP_VOTES=off", "RATE_IP_TOKENS=off", "RATE_VOTER=off", "RATE_POLL_TOKENS=off", "COOKIE_SECURE=false",
		"XDG_CACHE_HOME=" + h.cache}, o.Env...)
	h.instances = o.Instances
	h.args = o.Args
	h.start()
	t.Cleanup(h.Kill)
	return h
}

// URL is http://Addr.
func (h *Harness) URL() string { return "http://" + h.Addr }

// PID is the running process's id (0 when stopped).
func (h *Harness) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

func (h *Harness) start() {
	t := h.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		cmd := exec.Command(h.bin, "-listen", h.Addr, "-module", h.module, "-spool", h.spool,
			"-instances", strconv.Itoa(h.instances), "-shutdown-timeout", "3s")
		cmd.Args = append(cmd.Args, h.args...)
		h.mu.Lock()
		cmd.Env = append(append(os.Environ(), h.env...), "CLOCK_OFFSET="+h.offset.String())
		h.mu.Unlock()
		cmd.Stdout, cmd.Stderr = h.Logs, h.Logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		h.mu.Lock()
		h.cmd, h.done = cmd, done
		h.mu.Unlock()
		if h.healthy(done) {
			return
		}
		if attempt == 20 { // the port may linger for a moment after a kill
			t.Fatalf("harness did not start:\n%s", h.Logs.Tail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// healthy waits up to a minute for /healthz; false if the process exited
// or never answered (then it is killed).
func (h *Harness) healthy(done chan struct{}) bool {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-done:
			return false
		default:
		}
		if resp, err := client.Get(h.URL() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		if time.Now().After(deadline) {
			h.Kill()
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Start starts a stopped harness again on the same address and spool.
func (h *Harness) Start() { h.t.Helper(); h.start() }

// Restart stops the harness with SIGTERM (what it cannot deliver within
// -shutdown-timeout stays in the spool) and starts it with its clock off by
// offset (CLOCK_OFFSET).
func (h *Harness) Restart(offset time.Duration) {
	h.t.Helper()
	h.signal(syscall.SIGTERM)
	h.mu.Lock()
	h.offset = offset
	h.mu.Unlock()
	h.start()
}

// Kill sends SIGKILL to the harness's process group and waits for it.
func (h *Harness) Kill() { h.signal(syscall.SIGKILL) }

func (h *Harness) signal(sig syscall.Signal) {
	h.mu.Lock()
	cmd, done := h.cmd, h.done
	h.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, sig)
	<-done
}

// Metric reads one unlabelled value from the harness's /metrics.
func (h *Harness) Metric(name string) (uint64, bool) {
	v, ok := Metric(h.URL(), name)
	return uint64(v), ok
}

// Metric reads one unlabelled value from base+"/metrics" (Prometheus text).
func Metric(base, name string) (float64, bool) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// Errors returns up to n lines the harness logged at level ERROR.
func (h *Harness) Errors(n int) []string {
	var errs []string
	for _, l := range strings.Split(h.Logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") && len(errs) < n {
			errs = append(errs, l)
		}
	}
	return errs
}

// FreeAddr returns a free 127.0.0.1 port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Build runs go build for pkg into out; with env (GOOS/GOARCH) it builds a
// wasip1 reactor module.
func Build(t testing.TB, out, pkg string, env ...string) {
	t.Helper()
	args := []string{"build", "-o", out}
	if len(env) > 0 {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// RSS reads a process's resident set size in bytes from /proc.
func RSS(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, os.ErrNotExist
}

// OpenPoll creates a single-choice poll with live results and the given
// option labels through the admin API, and opens it.
func OpenPoll(t testing.TB, admin *adminclient.Client, id string, labels ...string) {
	t.Helper()
	ctx := context.Background()
	p := shared.Poll{ID: id, Title: id}
	for _, l := range labels {
		p.Options = append(p.Options, shared.Option{Label: l})
	}
	if _, err := admin.CreatePoll(ctx, &adminclient.CreateRequest{Poll: p}); err != nil {
		t.Fatalf("create poll %s: %v", id, err)
	}
	if _, err := admin.Open(ctx, id); err != nil {
		t.Fatalf("open poll %s: %v", id, err)
	}
}

// CPU reads a process's user+system CPU time from /proc (pid 0: this one).
func CPU(pid int) (time.Duration, error) {
	p := "self"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields", p, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%s/stat: utime %q stime %q", p, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// Vote has a new voter vote for choice over HTTP (token, then vote) and
// fails the test unless the edge answers 202.
func Vote(t testing.TB, edge, poll string, choice int) {
	t.Helper()
	if status, msg := VoteBody(t, edge, poll, `{"choice":`+strconv.Itoa(choice)+`}`); status != 202 {
		t.Fatalf("vote in %s: %d %s, want 202", poll, status, msg)
	}
}

// VoteBody has a new voter (a token from GET /v1/polls/{poll}) send body,
// a JSON vote without its token, and returns the edge's status and, for an
// error, its message.
func VoteBody(t testing.TB, edge, poll, body string) (int, string) {
	t.Helper()
	resp, err := http.Get(edge + "/v1/polls/" + poll)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil || c.Token == "" {
		t.Fatalf("token for %s: %d %v", poll, resp.StatusCode, err)
	}
	req, err := http.NewRequest(http.MethodPost, edge+"/v1/polls/"+poll+"/votes", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("vote in %s: %v", poll, err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Message
}
