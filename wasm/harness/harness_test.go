package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/edgetest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/wasm/abi"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/internal/wasmtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	wasmtest.Cleanup()
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	os.Exit(code)
}

// cacheDir is one compilation cache for the whole test binary.
var cacheDir string

func newHarness(t *testing.T, module []byte, host edge.Host, cfg harness.Config) *harness.Harness {
	t.Helper()
	if cacheDir == "" {
		d, err := os.MkdirTemp("", "edgepoll-wazero-cache-")
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = d // shared by every test, removed by TestMain
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	h, err := harness.New(context.Background(), module, host, cfg)
	if err != nil {
		t.Fatalf("harness.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// TestTable runs the edge behaviour table, unchanged, against the wazero
// guest: each case gets a one-instance harness whose host imports delegate
// to the table's FakeHost.
// It runs once per toolchain the guest is built with (wasmtest.Toolchains).
func TestTable(t *testing.T) {
	for _, tc := range wasmtest.Toolchains() {
		t.Run(tc, func(t *testing.T) {
			module := wasmtest.BuildWith(t, tc, wasmtest.EdgeGuest, "")
			edgetest.RunTable(t, func(t *testing.T, host edge.Host, cfg edge.Config) http.Handler {
				return newHarness(t, module, host, harness.Config{Instances: 1, Env: harness.EnvFromConfig(cfg)})
			})
		})
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// TestFaultyGuest: a guest that traps and one that loops forever each cost
// their own request a 500, and the harness goes on serving with replaced
// instances. With TinyGo, recover() does nothing on wasm: a panic (here a
// nil dereference) ends the instance, which is replaced the same way.
func TestFaultyGuest(t *testing.T) {
	// Both ways of enforcing the budget, the instrumented countdown (the
	// default) and wazero's own termination checks, for each toolchain.
	for _, tc := range wasmtest.Toolchains() {
		for _, wazeroBudget := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/wazero_budget=%v", tc, wazeroBudget), func(t *testing.T) {
				module := wasmtest.BuildWith(t, tc, wasmtest.FaultyGuest, "")
				h := newHarness(t, module, edgetest.NewFakeHost(), harness.Config{
					Instances: 1, Timeout: 300 * time.Millisecond, AcquireTimeout: 10 * time.Second,
					WazeroBudget: wazeroBudget, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler),
				})
				if code, body := get(t, h, "/ok"); code != 200 || body != "ok" {
					t.Fatalf("GET /ok = %d %q, want 200 ok", code, body)
				}
				for _, path := range []string{"/trap", "/loop", "/trap", "/loop"} {
					code, body := get(t, h, path)
					if code != 500 || !strings.Contains(body, `"code":"internal"`) {
						t.Fatalf("GET %s = %d %s, want 500 internal JSON", path, code, body)
					}
					if code, body := get(t, h, "/ok"); code != 200 || body != "ok" {
						t.Fatalf("after %s: GET /ok = %d %q, want 200 ok", path, code, body)
					}
				}
				st := h.Stats()
				if st.Traps != 2 || st.Timeouts != 2 || st.Instances != 5 {
					t.Fatalf("stats = %+v, want 2 traps, 2 timeouts, 5 instances created", st)
				}
			})
		}
	}
}

// TestABIVersionMismatch: a module of another ABI version is refused with an
// error naming both versions.
func TestABIVersionMismatch(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.FaultyGuest, "-X main.abiVersion=99")
	_, err := harness.New(context.Background(), module, edgetest.NewFakeHost(), harness.Config{Instances: 1, CacheDir: "off"})
	if err == nil {
		t.Fatal("harness.New accepted a guest of ABI version 99")
	}
	for _, want := range []string{"version 99", "version " + strconv.Itoa(abi.Version)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestNotAGuest: a wasm module without the edgepoll exports is refused clearly.
func TestNotAGuest(t *testing.T) {
	empty := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	_, err := harness.New(context.Background(), empty, edgetest.NewFakeHost(), harness.Config{Instances: 1, CacheDir: "off"})
	if err == nil || !strings.Contains(err.Error(), abi.ExportABIVersion) {
		t.Fatalf("harness.New(empty module) = %v, want an error naming %s", err, abi.ExportABIVersion)
	}
}

// TestBadConfig: a guest whose edge config is invalid is refused at start
// with the guest's reason.
func TestBadConfig(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	env := func(k string) (string, bool) {
		if k == "TOKEN_SECRET" {
			return "short", true
		}
		return "", false
	}
	_, err := harness.New(context.Background(), module, edgetest.NewFakeHost(), harness.Config{Instances: 1, Env: env})
	if err == nil || !strings.Contains(err.Error(), "TOKEN_SECRET") {
		t.Fatalf("harness.New(short secret) = %v, want an error naming TOKEN_SECRET", err)
	}
}

// TestCompilationCache: the compiled module lands in the cache directory.
func TestCompilationCache(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.FaultyGuest, "")
	dir := t.TempDir()
	newHarness(t, module, edgetest.NewFakeHost(), harness.Config{Instances: 1, CacheDir: dir})
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("compilation cache %s is empty (err %v)", dir, err)
	}
}

// TestFastHTTPStripsSpoofableHeaders: over the network, a client cannot
// pick its own rate-limit key with CF-Connecting-IP: the harness drops it.
func TestFastHTTPStripsSpoofableHeaders(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	host := edgetest.NewFakeHost()
	edgetest.Seed(host)
	env := map[string]string{"TOKEN_SECRET": strings.Repeat("k", 40), "RATE_IP_TOKENS": "1/m:1"}
	h := newHarness(t, module, host, harness.Config{Instances: 1, Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h.ServeFastHTTP}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	var codes []int
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://edge/v1/polls/open1")
		req.Header.Set("CF-Connecting-IP", ip)
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode())
	}
	if codes[0] != 200 || codes[1] != 429 {
		t.Fatalf("token requests with forged CF-Connecting-IP: %v, want [200 429] (one limit for the one socket address)", codes)
	}
}

// edgeRequest serves one request through h and returns its status and body.
func edgeRequest(t *testing.T, h http.Handler, method, path, auth, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func voterToken(t *testing.T, h http.Handler, poll string) string {
	t.Helper()
	code, body := edgeRequest(t, h, http.MethodGet, "/v1/polls/"+poll, "", "")
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil || r.Token == "" {
		t.Fatalf("GET /v1/polls/%s = %d %s, want 200 with a token", poll, code, body)
	}
	return r.Token
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestPoolSharesLocationState: the instances of one harness share one
// dedupe memory and one set of rate limiters. The pool hands instances out
// in turn, so consecutive requests are served by different instances.
func TestPoolSharesLocationState(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	const instances = 3
	base := map[string]string{"TOKEN_SECRET": strings.Repeat("k", 40), "COOKIE_SECURE": "false",
		"RATE_IP_TOKENS": "off", "RATE_VOTER": "off", "RATE_CHECK": "off"}
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	vote := func(tok string) string { return fmt.Sprintf(`{"token":%q,"choice":0}`, tok) }

	t.Run("dedupe", func(t *testing.T) {
		host := edgetest.NewFakeHost()
		edgetest.Seed(host)
		h := newHarness(t, module, host, harness.Config{Instances: instances, Env: envOf(base)})
		for i := range 10 {
			tok := voterToken(t, h, "open1")
			for n, want := range []int{202, 409, 409, 409} {
				if code, body := edgeRequest(t, h, http.MethodPost, "/v1/polls/open1/votes", "", vote(tok)); code != want {
					t.Fatalf("voter %d, vote %d: %d %s, want %d", i, n+1, code, body, want)
				}
			}
		}
		if n := len(host.Votes()); n != 10 {
			t.Fatalf("host got %d votes, want 10", n)
		}
	})
	t.Run("per-address", func(t *testing.T) {
		host := edgetest.NewFakeHost()
		edgetest.Seed(host)
		h := newHarness(t, module, host, harness.Config{Instances: instances, Env: envOf(with("RATE_IP_TOKENS", "2/m:2"))})
		var codes []int
		for range instances {
			code, _ := edgeRequest(t, h, http.MethodGet, "/v1/polls/open1", "", "")
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[200 200 429]" {
			t.Fatalf("token requests from one address at 2/m:2 across %d instances: %v, want [200 200 429]", instances, codes)
		}
	})
	t.Run("per-voter", func(t *testing.T) {
		host := edgetest.NewFakeHost()
		edgetest.Seed(host)
		h := newHarness(t, module, host, harness.Config{Instances: instances, Env: envOf(with("RATE_VOTER", "1/m:1"))})
		tok := voterToken(t, h, "open1")
		var codes []int
		for range 2 {
			code, _ := edgeRequest(t, h, http.MethodPost, "/v1/polls/open1/votes", "", vote(tok))
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[202 429]" {
			t.Fatalf("one voter at RATE_VOTER 1/m:1: %v, want [202 429]", codes)
		}
	})
	t.Run("vote check", func(t *testing.T) {
		host := edgetest.NewFakeHost()
		edgetest.Seed(host)
		h := newHarness(t, module, host, harness.Config{Instances: instances, Env: envOf(with("RATE_CHECK", "3/m:3"))})
		tok := voterToken(t, h, "open1")
		want := []string{`"counted":false`, `"counted":true`, `"counted":true`, `"rate_limited"`}
		for i, w := range want {
			if i == 1 {
				if code, body := edgeRequest(t, h, http.MethodPost, "/v1/polls/open1/votes", "", vote(tok)); code != 202 {
					t.Fatalf("vote: %d %s", code, body)
				}
			}
			code, body := edgeRequest(t, h, http.MethodGet, "/v1/polls/open1/vote", tok, "")
			if !strings.Contains(body, w) || (i < 3) != (code == 200) {
				t.Fatalf("check %d: %d %s, want %s", i+1, code, body, w)
			}
		}
	})
	t.Run("backing state", func(t *testing.T) {
		host := &stateHost{FakeHost: edgetest.NewFakeHost(), state: edge.NewLocationState(edge.Config{})}
		edgetest.Seed(host.FakeHost)
		h := newHarness(t, module, host, harness.Config{Instances: instances, Env: envOf(base)})
		tok := voterToken(t, h, "open1")
		if code, body := edgeRequest(t, h, http.MethodPost, "/v1/polls/open1/votes", "", vote(tok)); code != 202 {
			t.Fatalf("vote: %d %s", code, body)
		}
		votes := host.Votes()
		if len(votes) != 1 || host.state.SeenAdd("open1", votes[0].Voter) {
			t.Fatalf("the backing host's LocationState did not record the vote (%d votes)", len(votes))
		}
	})
}

// stateHost is a FakeHost that keeps the location's state itself.
type stateHost struct {
	*edgetest.FakeHost
	state edge.LocationState
}

func (h *stateHost) LocationState() edge.LocationState { return h.state }

// TestEnvKeys: EnvKeys is exactly what edge.ConfigFromEnv reads.
func TestEnvKeys(t *testing.T) {
	read := map[string]bool{}
	edge.ConfigFromEnv(func(k string) string {
		read[k] = true
		if k == "TOKEN_SECRET" {
			return strings.Repeat("k", 40)
		}
		return ""
	})
	got := map[string]bool{}
	for _, k := range harness.EnvKeys {
		got[k] = true
	}
	if !maps.Equal(read, got) {
		t.Fatalf("harness.EnvKeys = %v; edge.ConfigFromEnv reads %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(read)))
	}
}

// TestSlowHandOffIsNotATimeout: a hand-off that takes longer than the
// guest's whole time budget (an fsync stalling, say) still answers the
// vote 202, because time inside host imports does not count against the
// budget; a guest that itself ran out of budget would answer 500.
func TestSlowHandOffIsNotATimeout(t *testing.T) {
	module := wasmtest.Build(t, wasmtest.EdgeGuest, "")
	host := edgetest.NewFakeHost()
	edgetest.Seed(host)
	var handed atomic.Int32
	host.SetSubmitFunc(func(context.Context, *shared.Vote) error {
		time.Sleep(600 * time.Millisecond)
		handed.Add(1)
		return nil
	})
	h := newHarness(t, module, host, harness.Config{Instances: 1, Timeout: 200 * time.Millisecond,
		Env: envOf(map[string]string{"TOKEN_SECRET": strings.Repeat("k", 40), "COOKIE_SECURE": "false"})})
	tok := voterToken(t, h, "open1")
	if code, body := edgeRequest(t, h, http.MethodPost, "/v1/polls/open1/votes", "", fmt.Sprintf(`{"token":%q,"choice":1}`, tok)); code != 202 {
		t.Fatalf("vote with a hand-off of 3× the budget: %d %s, want 202", code, body)
	}
	if n := handed.Load(); n != 1 {
		t.Fatalf("host got %d votes, want 1", n)
	}
	if st := h.Stats(); st.Timeouts != 0 {
		t.Fatalf("stats %+v: the slow host call counted as a guest timeout", st)
	}
}
