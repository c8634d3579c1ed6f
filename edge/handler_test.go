package edge_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/edge/commit"
	"github.com/edgepoll/edgepoll/shared"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/edgetest"
)

// TestTable runs the edge behaviour table against the native handler.
func TestTable(t *testing.T) {
	edgetest.RunTable(t, func(t *testing.T, host edge.Host, cfg edge.Config) http.Handler {
		return edge.New(cfg, host)
	})
}

// TestTableWithOnlyRequestHeaders runs the table with every request header
// outside edge.RequestHeaders removed, as the Worker glue passes them: the
// handler must behave exactly the same.
func TestTableWithOnlyRequestHeaders(t *testing.T) {
	keep := map[string]bool{}
	for _, h := range edge.RequestHeaders {
		keep[h] = true
	}
	edgetest.RunTable(t, func(t *testing.T, host edge.Host, cfg edge.Config) http.Handler {
		h := edge.New(cfg, host)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for name := range r.Header {
				if !keep[name] {
					delete(r.Header, name)
				}
			}
			h.ServeHTTP(w, r)
		})
	})
}

// TestRequestHeadersListsEveryHeaderRead scans the handler's source for
// request header reads: each must be in edge.RequestHeaders, or a host that
// passes only those would silently drop it.
func TestRequestHeadersListsEveryHeaderRead(t *testing.T) {
	listed := map[string]bool{}
	for _, h := range edge.RequestHeaders {
		if h != http.CanonicalHeaderKey(h) {
			t.Errorf("RequestHeaders holds %q, not in canonical form", h)
		}
		listed[h] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := regexp.MustCompile(`\b(?:r|req)\.Header\.(?:Get|Values)\("([^"]+)"\)`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(src), -1) {
			found++
			if !listed[http.CanonicalHeaderKey(m[1])] {
				t.Errorf("%s reads request header %q, which edge.RequestHeaders does not list", f, m[1])
			}
		}
	}
	if found < len(edge.RequestHeaders) {
		t.Errorf("found %d header reads in the source, fewer than the %d listed: is the pattern stale?", found, len(edge.RequestHeaders))
	}
}

// panicHost is a FakeHost whose Poll panics.
type panicHost struct{ *edgetest.FakeHost }

func (panicHost) Poll(context.Context, string) (*shared.Poll, error) { panic("boom") }

func serve(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://edge.test"+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func errCode(t *testing.T, w *httptest.ResponseRecorder) shared.Code {
	t.Helper()
	var e struct{ Error struct{ Code shared.Code } }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	return e.Error.Code
}

func TestPanicBecomes500(t *testing.T) {
	fh := edgetest.NewFakeHost()
	h := edge.New(edgetest.TableConfig(), panicHost{fh})
	w := serve(h, "GET", "/v1/polls/p1", "")
	if w.Code != 500 || errCode(t, w) != shared.EINTERNAL {
		t.Fatalf("panic: %d %s", w.Code, w.Body)
	}
	logs := fh.Logs()
	if len(logs) != 1 || logs[0].Level != "error" || !strings.Contains(logs[0].String(), "boom") {
		t.Errorf("panic not logged: %v", logs)
	}
}

func TestMisconfigured(t *testing.T) {
	fh := edgetest.NewFakeHost()
	edgetest.Seed(fh)
	cfg := edgetest.TableConfig()
	cfg.TokenSecret = []byte("short")
	h := edge.New(cfg, fh)
	if w := serve(h, "GET", "/v1/polls/open1", ""); w.Code != 503 || errCode(t, w) != shared.EUNAVAILABLE {
		t.Errorf("misconfigured edge: %d %s", w.Code, w.Body)
	}
	if logs := fh.Logs(); len(logs) == 0 || !strings.Contains(logs[0].String(), "TOKEN_SECRET") {
		t.Errorf("misconfiguration not logged: %v", logs)
	}
}

func TestInsecureCookieAndWildcardOrigin(t *testing.T) {
	fh := edgetest.NewFakeHost()
	edgetest.Seed(fh)
	cfg := edgetest.TableConfig()
	cfg.CookieSecure = false
	cfg.AllowedOrigins = []string{"*"}
	h := edge.New(cfg, fh)
	w := serve(h, "GET", "/v1/polls/open1", "", "Origin", "https://any.example")
	c := w.Header().Get("Set-Cookie")
	if w.Code != 200 || strings.Contains(c, "Secure") || !strings.Contains(c, "SameSite=Lax") {
		t.Errorf("insecure cookie: %d %q", w.Code, c)
	}
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://any.example" {
		t.Errorf("wildcard: ACAO %q", got)
	}
	w = serve(h, "GET", "/v1/polls/open1/results", "", "Origin", "null")
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("origin null allowed by *: %q", got)
	}
}

func TestClientIPFallsBackToRemoteAddr(t *testing.T) {
	fh := edgetest.NewFakeHost()
	edgetest.Seed(fh)
	h := edge.New(edgetest.TableConfig(), fh) // 5 tokens per IP per minute
	get := func(remote string) int {
		r := httptest.NewRequest("GET", "http://edge.test/v1/polls/open1", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for i := 0; i < 5; i++ {
		if c := get("[2001:db8::1]:4000"); c != 200 {
			t.Fatalf("token %d: %d", i, c)
		}
	}
	if c := get("[2001:db8::1]:4001"); c != 429 {
		t.Errorf("6th token from the same address (other port): %d, want 429", c)
	}
	if c := get("[2001:db8::2]:4000"); c != 429 {
		t.Errorf("token from another address in the same /64: %d, want 429", c)
	}
	if c := get("[2001:db8:0:1::2]:4000"); c != 200 {
		t.Errorf("token from another /64: %d, want 200", c)
	}
}

// TestGroupCommitThroughHandler runs concurrent voters through the handler
// with a host that group-commits, and checks every accepted vote is in
// exactly one batch.
func TestGroupCommitThroughHandler(t *testing.T) {
	fh := edgetest.NewFakeHost()
	edgetest.Seed(fh)
	var mu sync.Mutex
	inBatch := map[shared.VoterID]int{}
	batches := 0
	c := commit.New(func(ctx context.Context, data []byte) error {
		var b shared.Batch
		if err := shared.UnmarshalBatch(data, &b); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		batches++
		for _, v := range b.Votes {
			inBatch[v.Voter]++
		}
		return nil
	}, commit.Options{MaxVotes: 16, MaxDelay: 2 * time.Millisecond, EdgeID: "test"})
	fh.SetSubmitFunc(c.Submit)
	cfg := edgetest.TableConfig()
	cfg.VoteRate, cfg.TokenRate, cfg.PollTokenRate = edge.Rate{N: -1}, edge.Rate{N: -1}, edge.Rate{N: -1}
	h := edge.New(cfg, fh)
	const n = 200
	var wg sync.WaitGroup
	receipts := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w := serve(h, "GET", "/v1/polls/open1", "")
			var pr struct{ Token string }
			if err := json.Unmarshal(w.Body.Bytes(), &pr); err != nil {
				t.Errorf("token: %v", err)
				return
			}
			body := `{"token":"` + pr.Token + `","choice":` + strconv.Itoa(i%3) + `}`
			for try := 0; try < 2; try++ { // the second try is a duplicate
				w = serve(h, "POST", "/v1/polls/open1/votes", body, "Content-Type", "application/json")
				if want := []int{202, 409}[try]; w.Code != want {
					t.Errorf("voter %d try %d: %d %s", i, try, w.Code, w.Body)
				}
				if try == 0 {
					var a struct{ Receipt string }
					_ = json.Unmarshal(w.Body.Bytes(), &a)
					receipts[i] = a.Receipt
				}
			}
		}(i)
	}
	wg.Wait()
	if len(inBatch) != n {
		t.Errorf("%d voters in batches, want %d", len(inBatch), n)
	}
	for v, k := range inBatch {
		if k != 1 {
			t.Errorf("voter %s in %d batches", v, k)
		}
	}
	for i, r := range receipts {
		v, err := shared.ParseVoterID(r)
		if err != nil || inBatch[v] != 1 {
			t.Errorf("receipt %d %q does not name a batched voter", i, r)
		}
	}
	if batches >= n {
		t.Errorf("%d batches for %d votes: nothing grouped", batches, n)
	}
}
