package main_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
)

// blackHoleEdge answers like an edge, 202 with a receipt for every vote,
// but forwards nothing to the origin.
func blackHoleEdge(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			id := make([]byte, 32)
			rand.Read(id)
			fmt.Fprintf(w, `{"poll":{"id":"show42","options":[{"label":"Ann"},{"label":"Bob"}],"kind":"single","state":"open"},"token":%q}`,
				base64.RawURLEncoding.EncodeToString(id))
			return
		}
		var v struct {
			Token string `json:"token"`
		}
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &v) != nil || v.Token == "" {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":{"code":"invalid","message":"bad body"}}`)
			return
		}
		id, err := base64.RawURLEncoding.DecodeString(v.Token)
		if err != nil || len(id) < 16 {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"bad token"}}`)
			return
		}
		w.WriteHeader(202)
		fmt.Fprintf(w, `{"status":"accepted","poll":"show42","receipt":%q}`, hex.EncodeToString(id[:16]))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRehearseUsage(t *testing.T) {
	env := []string{"EDGEPOLL_ADMIN_TOKEN=x"}
	want(t, pollctl(t, env, "rehearse", "--help"), 0, "--repeat-share", "Exit 6")
	want(t, pollctl(t, env, "rehearse", "show42", "--rate", "10"), 2, "needs --edge")
	want(t, pollctl(t, env, "rehearse", "show42", "--edge", "http://127.0.0.1:1"), 2, "one of --rate and --concurrency")
	want(t, pollctl(t, env, "rehearse", "--edge", "http://127.0.0.1:1", "--rate", "1"), 2, "exactly one poll id")
	want(t, pollctl(t, env, "rehearse", "show42", "--edge", "http://127.0.0.1:1", "--rate", "1", "--weights", "1,x"), 2, "not a weight")
	want(t, pollctl(t, []string{"EDGEPOLL_ADMIN_TOKEN="}, "rehearse", "show42", "--edge", "http://127.0.0.1:1", "--rate", "1"), 2, "no admin token")
	want(t, pollctl(t, env, "rehearse", "show42", "--edge", "http://127.0.0.1:1", "--rate", "1", "--no-verify"), 1, "cannot reach the edge")
	want(t, pollctl(t, env, "completion", "bash"), 0, "rehearse")
}

// TestRehearseVerificationFails rehearses against an edge that acknowledges
// votes without forwarding them: the origin counts none, so verification
// must fail with exit 6, in the table and in the JSON report.
func TestRehearseVerificationFails(t *testing.T) {
	if testing.Short() {
		t.Skip("real origin")
	}
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	env := []string{"EDGEPOLL_ORIGIN=" + o.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken}
	want(t, pollctl(t, env, "create", "--id", "show42", "--title", "Who wins?", "--option", "Ann", "--option", "Bob", "--open"), 0)
	edge := blackHoleEdge(t)

	args := []string{"rehearse", "show42", "--edge", edge.URL, "--concurrency", "4", "--voters", "60", "--settle", "1s", "--bad-share", "0.1", "--weights", "3,1"}
	res := pollctl(t, env, args...)
	want(t, res, 6, "FAIL", "counted 0", "verification FAILED")

	res = pollctl(t, env, append(args, "-o", "json", "-q")...)
	want(t, res, 6)
	var rep struct {
		Voters       int64            `json:"voters"`
		Acknowledged int64            `json:"acknowledged"`
		Votes        map[string]int64 `json:"votes"`
		Verification struct {
			Passed  bool   `json:"passed"`
			Counted uint64 `json:"counted"`
			Missing int64  `json:"missing_receipts"`
			Checks  []struct {
				Name   string `json:"name"`
				Passed bool   `json:"passed"`
			} `json:"checks"`
		} `json:"verification"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, res.stdout)
	}
	v := rep.Verification
	if rep.Voters != 60 || rep.Acknowledged == 0 || v.Passed || v.Counted != 0 || v.Missing != rep.Acknowledged || len(v.Checks) != 5 {
		t.Fatalf("report: %s", res.stdout)
	}
	if strings.Contains(res.stderr, "votes/s") {
		t.Errorf("-q printed progress: %s", res.stderr)
	}

	// Without verification the same run succeeds; progress lines go to stderr.
	res = pollctl(t, env, "rehearse", "show42", "--edge", edge.URL, "--rate", "50", "--duration", "1500ms", "--no-verify")
	want(t, res, 0, "acknowledged voters")
	if !strings.Contains(res.stderr, "votes/s") {
		t.Errorf("no progress lines on stderr: %q", res.stderr)
	}
}
