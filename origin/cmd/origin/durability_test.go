package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/shared"
)

// These tests run the origin (in-process for start-up refusals, the real
// binary otherwise) against real redis-servers and check its durability
// promise over HTTP: what it refuses to start on, what /readyz says, and
// that every batch answered 200 survives a crash of Redis.

var client = &http.Client{Timeout: 30 * time.Second}

func testEnv() func(string) string {
	return env(map[string]string{"INGEST_KEYS": goodKeys, "ADMIN_TOKEN": "0123456789abcdef"})
}

func TestStartRefusesRedisWithoutPromisedDurability(t *testing.T) {
	none := redistest.StartWith(t, redistest.Options{Persistence: redistest.NoPersistence})
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"fsync by default", nil, []string{"-durability fsync", "appendonly no", "appendfsync always"}},
		{"replica without replicas", []string{"-durability", "replica"}, []string{"-durability replica", "has 0"}},
		{"replica, too few", []string{"-durability", "replica", "-replicas", "3"}, []string{"needs 3 online replica(s)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr syncbuf.Buffer
			code := run(append([]string{"-redis", none.URL, "-listen", "127.0.0.1:0"}, c.args...), testEnv(), &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stderr.String(), w) {
					t.Fatalf("message %q lacks %q", stderr.String(), w)
				}
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor waits until cond holds, failing the test if it does not within
// a minute (a liveness guard, not a measurement).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createPoll(t *testing.T, o *origintest.Origin, id string) {
	t.Helper()
	ac := adminclient.New(o.URL, o.AdminToken)
	req := &adminclient.CreateRequest{Poll: shared.Poll{ID: id, Title: "Poll " + id, Kind: shared.KindSingle,
		State: shared.StateDraft, Visibility: shared.VisibilityLive,
		Options: []shared.Option{{Label: "a"}, {Label: "b"}, {Label: "c"}, {Label: "d"}}}, ExpectedVoters: 100_000}
	ctx := context.Background()
	if _, err := ac.CreatePoll(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Open(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func freshBatch(poll string, n int) *shared.Batch {
	b := &shared.Batch{Edge: "durability"}
	_, _ = rand.Read(b.ID[:])
	at := time.Now().UnixMilli()
	for i := range n {
		var v shared.VoterID
		_, _ = rand.Read(v[:])
		b.Votes = append(b.Votes, shared.Vote{Poll: poll, Voter: v, Choices: []uint8{uint8(i % 4)}, At: at})
	}
	return b
}

// ingest posts a signed batch and returns the status and, for a 200, the receipt.
func ingest(o *origintest.Origin, b *shared.Batch) (int, *shared.Receipt, string, error) {
	body, err := shared.MarshalBatch(b)
	if err != nil {
		return 0, nil, "", err
	}
	req, err := http.NewRequest("POST", o.URL+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header = o.Sign(body, time.Now())
	req.Header.Set("Content-Type", shared.ContentTypeMsgpack)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return resp.StatusCode, nil, string(out), err
	}
	var r shared.Receipt
	if err := shared.UnmarshalReceipt(out, &r); err != nil {
		return resp.StatusCode, nil, "", err
	}
	return 200, &r, "", nil
}

// TestReadyzFollowsFsyncConfig: with the default -durability fsync, /readyz
// goes not ready with the reason when Redis stops fsyncing every write,
// batches get 503, and both recover when the configuration does.
func TestReadyzFollowsFsyncConfig(t *testing.T) {
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	if code, body := get(t, o.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	if _, body := get(t, o.URL+"/metrics"); !strings.Contains(body, `edgepoll_origin_durability_mode{mode="fsync"} 1`) {
		t.Fatal("metrics lack the durability mode")
	}
	createPoll(t, o, "cfg")
	if code, _, body, err := ingest(o, freshBatch("cfg", 10)); code != 200 {
		t.Fatalf("ingest: %d %s %v", code, body, err)
	}
	if _, err := r.Do("CONFIG", "SET", "appendfsync", "everysec"); err != nil {
		t.Fatal(err)
	}
	var reason string
	waitFor(t, "/readyz to go not ready", func() bool {
		code, body := get(t, o.URL+"/readyz")
		reason = body
		return code == 503
	})
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(reason), &e); err != nil || e.Error.Code != "unavailable" ||
		!strings.Contains(e.Error.Message, "appendfsync everysec") {
		t.Fatalf("readyz reason %q", reason)
	}
	waitFor(t, "ingest to answer 503", func() bool {
		code, _, _, _ := ingest(o, freshBatch("cfg", 10))
		return code == 503
	})
	if _, err := r.Do("CONFIG", "SET", "appendfsync", "always"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz to be ready again", func() bool { code, _ := get(t, o.URL+"/readyz"); return code == 200 })
	waitFor(t, "ingest to answer 200 again", func() bool {
		code, _, _, _ := ingest(o, freshBatch("cfg", 10))
		return code == 200
	})
}

// TestReplicaShortfallIs503: with -durability replica, a batch whose
// replica is gone is answered 503 (and counted), /readyz says why, and the
// same batch is acknowledged once the replica is back.
func TestReplicaShortfallIs503(t *testing.T) {
	primary := redistest.StartWith(t, redistest.Options{Persistence: redistest.NoPersistence})
	replica := redistest.StartReplica(t, primary, redistest.Options{})
	o := origintest.StartWith(t, primary.URL, origintest.Options{
		Args: []string{"-durability", "replica", "-replica-timeout", "100ms"}})
	createPoll(t, o, "wait")
	if code, _, body, err := ingest(o, freshBatch("wait", 10)); code != 200 {
		t.Fatalf("ingest: %d %s %v", code, body, err)
	}
	replica.Kill()
	b := freshBatch("wait", 10)
	code, r, body, err := ingest(o, b)
	if code != 503 || !strings.Contains(body, "replica") {
		t.Fatalf("ingest without the replica: %d %s %v", code, body, err)
	}
	_, metrics := get(t, o.URL+"/metrics")
	if !strings.Contains(metrics, `edgepoll_origin_durability_mode{mode="replica"} 1`) ||
		!strings.Contains(metrics, "edgepoll_origin_durability_wait_shortfalls_total 1") {
		t.Fatalf("metrics lack the mode or the shortfall:\n%s", grepLines(metrics, "durability"))
	}
	waitFor(t, "/readyz to go not ready", func() bool {
		code, body := get(t, o.URL+"/readyz")
		return code == 503 && strings.Contains(body, "has 0")
	})
	replica.Restart(t)
	waitFor(t, "/readyz to be ready again", func() bool { code, _ := get(t, o.URL+"/readyz"); return code == 200 })
	// The edge delivers the batch again until it is acknowledged (a replica
	// that has just resynced may take a moment to acknowledge writes).
	var rc *shared.Receipt
	waitFor(t, "the redelivered batch to be acknowledged", func() bool {
		code, r, _, _ = ingest(o, b)
		rc = r
		return code == 200
	})
	if rc.Accepted != 10 || !rc.Replayed {
		t.Fatalf("redelivery: %+v", rc)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFsyncKillOverHTTP: batches posted by several clients while Redis is
// killed with SIGKILL and restarted from its append-only file: every voter
// of every batch answered 200 is in the exported ledger.
func TestFsyncKillOverHTTP(t *testing.T) {
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	createPoll(t, o, "crash")
	var (
		mu       sync.Mutex
		acked    = map[string]bool{} // voter keys (hex of id bytes 0..7)
		batches  atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := freshBatch("crash", 100)
				code, rc, _, _ := ingest(o, b)
				if code != 200 {
					failures.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if rc.Accepted != 100 {
					t.Errorf("fresh batch acknowledged with %+v", rc)
					return
				}
				mu.Lock()
				for _, v := range b.Votes {
					acked[fmt.Sprintf("%x", v.Voter[:8])] = true
				}
				mu.Unlock()
				batches.Add(1)
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitFor(t, "acknowledged batches", func() bool { return batches.Load() >= 30 })
	r.Kill()
	waitFor(t, "refused batches while Redis is down", func() bool { return failures.Load() > 0 })
	r.Restart(t)
	n := batches.Load()
	waitFor(t, "acknowledged batches after the restart", func() bool { return batches.Load() >= n+10 })
	close(stop)
	wg.Wait()

	var buf bytes.Buffer
	if err := adminclient.New(o.URL, o.AdminToken).Export(context.Background(), "crash", "ledger", "json", &buf); err != nil {
		t.Fatal(err)
	}
	var ledger struct {
		Ballots []struct {
			VoterKey string `json:"voter_key"`
		} `json:"ballots"`
	}
	if err := json.Unmarshal(buf.Bytes(), &ledger); err != nil {
		t.Fatal(err)
	}
	counted := map[string]bool{}
	for _, b := range ledger.Ballots {
		counted[b.VoterKey] = true
	}
	lost := 0
	for k := range acked {
		if !counted[k] {
			lost++
		}
	}
	if lost > 0 || len(counted) < len(acked) {
		t.Fatalf("%d of %d acknowledged voters missing; %d counted", lost, len(acked), len(counted))
	}
	t.Logf("%d batches (%d votes) answered 200, all counted after the crash; %d attempts refused", batches.Load(), len(acked), failures.Load())
}
