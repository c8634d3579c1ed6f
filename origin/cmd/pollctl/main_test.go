package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/shared"
)

var (
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// pollctlBinary builds pollctl once per test binary.
func pollctlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pollctl-test-")
		if err != nil {
			buildErr = err
			return
		}
		bin = filepath.Join(dir, "pollctl")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build pollctl: %v", buildErr)
	}
	return bin
}

type result struct {
	code           int
	stdout, stderr string
}

func pollctl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(pollctlBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func want(t *testing.T, r result, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", s, r.stdout, r.stderr)
		}
	}
}

func TestPollctlUsage(t *testing.T) {
	want(t, pollctl(t, nil, "--help"), 0, "Exit codes:", "pollctl create", "completion")
	want(t, pollctl(t, nil), 2, "Usage:")
	want(t, pollctl(t, nil, "frobnicate"), 2, `unknown command "frobnicate"`)
	want(t, pollctl(t, []string{"EDGEPOLL_ADMIN_TOKEN="}, "list"), 2, "no admin token")
	want(t, pollctl(t, []string{"EDGEPOLL_ADMIN_TOKEN=x"}, "show"), 2, "exactly one poll id")
	want(t, pollctl(t, []string{"EDGEPOLL_ADMIN_TOKEN=x"}, "list", "-o", "yaml"), 2, "-o must be table or json")
	want(t, pollctl(t, nil, "create", "--id", "x", "--title", "T", "--option", "only"), 2, "options")
	want(t, pollctl(t, nil, "completion", "bash"), 0, "complete -F _pollctl pollctl")
	want(t, pollctl(t, nil, "completion", "zsh"), 0, "#compdef pollctl")
	want(t, pollctl(t, nil, "completion", "fish"), 2, "unknown shell")
	want(t, pollctl(t, []string{"EDGEPOLL_ADMIN_TOKEN=x", "EDGEPOLL_ORIGIN=http://127.0.0.1:1"}, "list"), 1, "cannot reach origin")
}

func TestPollctlEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs redis-server and the origin binary")
	}
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	env := []string{"EDGEPOLL_ORIGIN=" + o.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken}

	want(t, pollctl(t, env, "create", "--id", "show42", "--title", "Who wins?", "--option", "Ann", "--option", "Bob", "--expected-voters", "5000"),
		0, "show42", "Who wins?", "draft", "Ann", "Bob")
	want(t, pollctl(t, env, "create", "--id", "show42", "--title", "Again", "--option", "a", "--option", "b"), 4, "already exists")

	// create from a JSON file, and global flags instead of the environment.
	file := filepath.Join(t.TempDir(), "poll.json")
	if err := os.WriteFile(file, []byte(`{"id":"multi1","title":"Pick two","kind":"multi","max_choices":2,"options":[{"label":"x"},{"label":"y"},{"label":"z"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, pollctl(t, nil, "--origin", o.URL, "--token", o.AdminToken, "create", "-f", file, "-o", "json"), 0, `"max_choices": 2`)

	res := pollctl(t, env, "list", "-o", "json")
	want(t, res, 0)
	var polls []shared.Poll
	if err := json.Unmarshal([]byte(res.stdout), &polls); err != nil || len(polls) != 2 || polls[0].ID != "multi1" || polls[1].ID != "show42" {
		t.Fatalf("list -o json: %v %s", err, res.stdout)
	}
	want(t, pollctl(t, env, "list"), 0, "ID", "STATE", "show42", "multi1")
	want(t, pollctl(t, env, "show", "show42"), 0, "Who wins?", "visibility", "identity", "open (one vote per browser, best effort)")
	want(t, pollctl(t, env, "create", "--id", "vip", "--title", "Members only", "--option", "a", "--option", "b",
		"--identity", "signed", "--jwt-issuer", "https://app.example", "--jwt-audience", "edgepoll"), 0, "signed", "https://app.example")
	want(t, pollctl(t, env, "show", "vip", "-o", "json"), 0, `"identity": "signed"`, `"jwt_audience": "edgepoll"`)
	want(t, pollctl(t, env, "create", "--id", "bad", "--title", "T", "--option", "a", "--option", "b", "--identity", "signed"), 2, "jwt_issuer")
	want(t, pollctl(t, env, "create", "--id", "bad", "--title", "T", "--option", "a", "--option", "b", "--identity", "captcha"), 2, "identity must be")
	want(t, pollctl(t, env, "delete", "vip"), 0, "deleted vip")
	want(t, pollctl(t, env, "show", "nope"), 3, "not found")
	want(t, pollctl(t, append(env, "EDGEPOLL_ADMIN_TOKEN=wrong-token-000000"), "list"), 5, "token")

	want(t, pollctl(t, env, "open", "show42"), 0, "open")
	// Votes arrive through the signed ingest endpoint, as from an edge.
	b := &shared.Batch{ID: shared.BatchID{1}, Edge: "test"}
	for i := 0; i < 3; i++ {
		b.Votes = append(b.Votes, shared.Vote{Poll: "show42", Voter: shared.VoterID{byte(i + 1), 9}, Choices: []uint8{uint8(i % 2)}, At: nowMilli()})
	}
	ingest(t, o, b)

	res = pollctl(t, env, "results", "show42", "-o", "json")
	want(t, res, 0)
	var results struct {
		Counts []uint64 `json:"counts"`
		Voters uint64   `json:"voters"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &results); err != nil || results.Voters != 3 || results.Counts[0] != 2 || results.Counts[1] != 1 {
		t.Fatalf("results: %v %s", err, res.stdout)
	}
	want(t, pollctl(t, env, "results", "show42"), 0, "Ann", "66.7%", "█")
	want(t, pollctl(t, env, "results", "show42", "--watch", "--count", "2", "--interval", "100ms"), 0, "\x1b[2J", "Ctrl-C")

	want(t, pollctl(t, env, "export", "show42", "results"), 0, "option,label,votes\n0,Ann,2\n1,Bob,1\n")
	res = pollctl(t, env, "export", "show42", "ledger", "--format", "json")
	want(t, res, 0)
	var ledger struct {
		Ballots []struct {
			VoterKey string  `json:"voter_key"`
			Choices  []uint8 `json:"choices"`
		} `json:"ballots"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &ledger); err != nil || len(ledger.Ballots) != 3 {
		t.Fatalf("ledger json: %v %s", err, res.stdout)
	}
	out := filepath.Join(t.TempDir(), "ledger.csv")
	want(t, pollctl(t, env, "export", "show42", "ledger", "-f", out), 0)
	data, err := os.ReadFile(out)
	if err != nil || strings.Count(string(data), "\n") != 4 || !strings.HasPrefix(string(data), "voter_key,choices,batch\n") {
		t.Fatalf("ledger file: %v %q", err, data)
	}
	want(t, pollctl(t, env, "export", "show42", "votes"), 2, "results or ledger")
	want(t, pollctl(t, env, "export", "nope", "ledger"), 3, "not found")

	want(t, pollctl(t, env, "stats"), 0, "voters", "redis version")
	want(t, pollctl(t, env, "close", "show42"), 0, "show42 stops taking votes at", "(in 10s)")
	want(t, pollctl(t, env, "delete", "show42"), 4, "taking votes")
	want(t, pollctl(t, env, "close", "show42", "--now"), 0, "show42 is closed")
	want(t, pollctl(t, env, "reset", "show42"), 0, "show42")
	res = pollctl(t, env, "results", "show42", "-o", "json")
	if err := json.Unmarshal([]byte(res.stdout), &results); err != nil || results.Voters != 0 {
		t.Fatalf("results after reset: %v %s", err, res.stdout)
	}
	want(t, pollctl(t, env, "delete", "show42"), 0, "deleted show42")
	want(t, pollctl(t, env, "delete", "show42"), 3, "not found")
	want(t, pollctl(t, env, "show", "show42"), 3)
}
