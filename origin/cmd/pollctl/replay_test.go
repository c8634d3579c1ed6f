package main_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/shared"
)

// replayOut is pollctl replay -o json.
type replayOut struct {
	DryRun  bool `json:"dry_run"`
	Batches []struct {
		Source       string            `json:"source"`
		Batch        string            `json:"batch"`
		Edge         string            `json:"edge"`
		Votes        int               `json:"votes"`
		Polls        map[string]int    `json:"polls"`
		Undecodable  string            `json:"undecodable"`
		Outcome      string            `json:"outcome"`
		Status       int               `json:"status"`
		OriginError  string            `json:"origin_error"`
		Accepted     uint32            `json:"accepted"`
		Duplicate    uint32            `json:"duplicate"`
		Rejected     map[string]uint32 `json:"rejected"`
		Advice       string            `json:"advice"`
		DeadLettered *struct {
			Status int `json:"status"`
		} `json:"dead_lettered"`
	} `json:"batches"`
	Totals struct {
		Batches       int            `json:"batches"`
		Votes         int            `json:"votes"`
		Outcomes      map[string]int `json:"outcomes"`
		Accepted      uint64         `json:"accepted"`
		Duplicate     uint64         `json:"duplicate"`
		ReplayedVotes uint64         `json:"replayed_votes"`
	} `json:"totals"`
}

func decodeReplay(t *testing.T, r result) replayOut {
	t.Helper()
	var out replayOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("replay -o json: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out
}

// outcomes maps each batch's source to its outcome.
func outcomes(o replayOut) map[string]string {
	m := map[string]string{}
	for _, b := range o.Batches {
		m[b.Source] = b.Outcome
	}
	return m
}

// testBatch is a batch of one vote per voter (option i%2), received now.
func testBatch(t *testing.T, id byte, poll string, voters ...byte) (*shared.Batch, []byte) {
	t.Helper()
	b := &shared.Batch{ID: shared.BatchID{id, 0xee}, Edge: "cf-test"}
	for i, v := range voters {
		b.Votes = append(b.Votes, shared.Vote{Poll: poll, Voter: shared.VoterID{v, 0x5a}, Choices: []uint8{uint8(i % 2)}, At: nowMilli()})
	}
	body, err := shared.MarshalBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, body
}

// deadLetterLine is one line of the harness's dead-letter.jsonl
// (wasm/originhost's deadLetterEntry) for body.
func deadLetterLine(t *testing.T, b *shared.Batch, body []byte) string {
	t.Helper()
	id, votes := "", 0
	if b != nil {
		id, votes = b.ID.String(), len(b.Votes)
	}
	line, err := json.Marshal(map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "record": "seg-000001@8", "batch": id, "votes": votes,
		"status": 400, "origin_error": `{"error":{"code":"invalid","message":"test"}}`, "body_base64": base64.StdEncoding.EncodeToString(body),
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

// pullResponse is a Cloudflare Queues pull API answer holding bodies as
// bytes messages (base64 in body).
func pullResponse(t *testing.T, bodies ...[]byte) []byte {
	t.Helper()
	var msgs []map[string]any
	for i, b := range bodies {
		msgs = append(msgs, map[string]any{
			"id": fmt.Sprintf("msg%d", i+1), "body": base64.StdEncoding.EncodeToString(b), "attempts": 11,
			"lease_id": fmt.Sprintf("lease%d", i+1), "timestamp_ms": nowMilli(), "metadata": map[string]any{"CF-Content-Type": "bytes"},
		})
	}
	out, err := json.MarshalIndent(map[string]any{
		"success": true, "errors": []any{}, "messages": []any{},
		"result": map[string]any{"message_backlog_count": len(bodies), "messages": msgs},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pollVoters returns a poll's counted voters and rejected votes from the admin results.
func pollVoters(t *testing.T, env []string, poll string) (uint64, map[string]uint64) {
	t.Helper()
	r := pollctl(t, env, "results", poll, "-o", "json")
	want(t, r, 0)
	var res struct {
		Voters   uint64            `json:"voters"`
		Rejected map[string]uint64 `json:"rejected"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("results: %v %s", err, r.stdout)
	}
	return res.Voters, res.Rejected
}

func TestReplayUsage(t *testing.T) {
	dir := t.TempDir()
	_, body := testBatch(t, 1, "show", 1, 2)
	raw := writeFile(t, dir, "batch.msgpack", body)
	want(t, pollctl(t, nil, "replay"), 2, "at least one file")
	want(t, pollctl(t, []string{"EDGEPOLL_INGEST_KEY="}, "replay", "--send", raw), 2, "needs the ingest key")
	want(t, pollctl(t, []string{"EDGEPOLL_INGEST_KEY=k=short"}, "replay", "--send", raw), 2, "at least 32 bytes")
	want(t, pollctl(t, nil, "replay", "--send", "--dry-run", raw), 2, "contradict")
	want(t, pollctl(t, nil, "replay", "--help"), 0, "dead-letter.jsonl", "--send")

	// A dry run needs neither key nor origin, and shows what the batch holds.
	want(t, pollctl(t, []string{"EDGEPOLL_ORIGIN=http://127.0.0.1:1"}, "replay", raw), 0,
		"cf-test", "show:2", "not sent (dry run)", "dry run: nothing was sent", "ee000000")
	// Garbage is reported and the exit status says so.
	junk := writeFile(t, dir, "junk.bin", []byte{0x94, 0x01, 0xc4})
	want(t, pollctl(t, nil, "replay", raw, junk), 2, "cannot decode", "not sent (dry run)")
}

func TestReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs redis-server and the origin binary")
	}
	r := redistest.Start(t)
	o := origintest.Start(t, r.URL)
	env := []string{"EDGEPOLL_ORIGIN=" + o.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken,
		"EDGEPOLL_INGEST_KEY=" + o.IngestKey.ID + "=" + string(o.IngestKey.Secret)}
	want(t, pollctl(t, env, "create", "--id", "show", "--title", "Who wins?", "--option", "Ann", "--option", "Bob", "--open"), 0)
	want(t, pollctl(t, env, "create", "--id", "shut", "--title", "Closed", "--option", "a", "--option", "b", "--open"), 0)
	want(t, pollctl(t, env, "close", "shut", "--now"), 0, "is closed")

	dir := t.TempDir()
	b1, body1 := testBatch(t, 1, "show", 1, 2, 3)
	_, body2 := testBatch(t, 2, "show", 3, 4) // voter 3 is also in b1
	b3, body3 := testBatch(t, 3, "shut", 7, 8)
	_, body4 := testBatch(t, 4, "show", 5)
	malformed := []byte{0x94, 0x01, 0xc4, 0x10, 0xff} // a batch cut short
	full := deadLetterLine(t, b1, body1)
	dead := strings.Join([]string{
		full,
		full[:len(full)/2], // a line cut short (a disk filled up mid-copy, say)
		deadLetterLine(t, b3, body3),
		deadLetterLine(t, nil, malformed),
	}, "\n") + "\n"
	deadFile := writeFile(t, dir, "dead-letter.jsonl", []byte(dead))
	rawFile := writeFile(t, dir, "b2.msgpack", body2)
	pullFile := writeFile(t, dir, "dlq-pull.json", pullResponse(t, body4))
	files := []string{deadFile, rawFile, pullFile}

	t.Run("dry run sends nothing", func(t *testing.T) {
		res := pollctl(t, env, append([]string{"replay", "-o", "json"}, files...)...)
		want(t, res, 2)
		out := decodeReplay(t, res)
		if !out.DryRun || out.Totals.Batches != 5 || out.Totals.Votes != 8 || out.Totals.Outcomes["unreadable"] != 1 || out.Totals.Outcomes["dry-run"] != 5 {
			t.Fatalf("dry run totals: %+v", out.Totals)
		}
		if n, _ := pollVoters(t, env, "show"); n != 0 {
			t.Fatalf("dry run counted %d voters", n)
		}
		table := pollctl(t, env, append([]string{"replay"}, files...)...)
		want(t, table, 2, b1.ID.String(), "show:3", "shut:2", "unreadable: not a JSON object", deadFile+":2",
			"cannot decode", pullFile+"#1 (message msg1)", "dead-lettered", "dry run: nothing was sent")
	})

	t.Run("send applies each batch once and reports the rest", func(t *testing.T) {
		res := pollctl(t, env, append([]string{"replay", "--send", "-o", "json"}, files...)...)
		want(t, res, 2, "batch not applied")
		out := decodeReplay(t, res)
		got := outcomes(out)
		wantOutcomes := map[string]string{
			deadFile + ":1": "applied", deadFile + ":2": "unreadable", deadFile + ":3": "applied", deadFile + ":4": "refused",
			rawFile: "applied", pullFile + "#1 (message msg1)": "applied",
		}
		for src, w := range wantOutcomes {
			if got[src] != w {
				t.Errorf("%s: outcome %q, want %q (all: %v)", src, got[src], w, got)
			}
		}
		for _, b := range out.Batches {
			switch b.Source {
			case deadFile + ":1":
				if b.Accepted != 3 || b.Duplicate != 0 {
					t.Errorf("b1: %+v", b)
				}
			case rawFile:
				if b.Accepted != 1 || b.Duplicate != 1 {
					t.Errorf("b2 (voter 3 already counted): %+v", b)
				}
			case deadFile + ":3":
				if b.Accepted != 0 || b.Rejected["poll_closed"] != 2 || !strings.Contains(b.Advice, "voting window") {
					t.Errorf("closed poll's batch: %+v", b)
				}
			case deadFile + ":4":
				if b.Status != 400 || !strings.Contains(b.OriginError, "invalid") || !strings.Contains(b.Advice, "will refuse it the same way") {
					t.Errorf("malformed batch: %+v", b)
				}
			}
		}
		if out.Totals.Accepted != 5 || out.Totals.Duplicate != 1 {
			t.Errorf("totals: %+v", out.Totals)
		}
		voters, _ := pollVoters(t, env, "show")
		if voters != 5 {
			t.Fatalf("show: %d voters counted, want 5", voters)
		}
		if _, rej := pollVoters(t, env, "shut"); rej["poll_closed"] != 2 {
			t.Fatalf("shut: rejected %v, want poll_closed:2", rej)
		}
	})

	t.Run("replaying again counts nothing twice", func(t *testing.T) {
		res := pollctl(t, env, append([]string{"replay", "--send"}, files...)...)
		want(t, res, 2, "replayed: 3 counted", "refused 400", "will refuse it the same way", "in batches applied before")
		res = pollctl(t, env, append([]string{"replay", "--send", "-o", "json"}, files...)...)
		out := decodeReplay(t, res)
		if out.Totals.Outcomes["replayed"] != 4 || out.Totals.Outcomes["applied"] != 0 || out.Totals.Accepted != 0 || out.Totals.ReplayedVotes != 8 {
			t.Fatalf("second replay: %+v", out.Totals)
		}
		if voters, _ := pollVoters(t, env, "show"); voters != 5 {
			t.Fatalf("show: %d voters after replaying twice, want 5", voters)
		}
		ledger := pollctl(t, env, "export", "show", "ledger", "--format", "csv")
		want(t, ledger, 0)
		if rows := strings.Count(ledger.stdout, "\n") - 1; rows != 5 {
			t.Fatalf("ledger has %d rows, want 5:\n%s", rows, ledger.stdout)
		}
		// Only good inputs: exit 0.
		want(t, pollctl(t, env, "replay", "--send", rawFile, pullFile), 0, "2 replayed")
	})

	t.Run("wrong key is unauthorized and changes nothing", func(t *testing.T) {
		_, body := testBatch(t, 9, "show", 40)
		f := writeFile(t, dir, "b9.msgpack", body)
		bad := []string{env[0], env[1], "EDGEPOLL_INGEST_KEY=" + o.IngestKey.ID + "=not-the-origins-secret-0000000000000"}
		want(t, pollctl(t, bad, "replay", "--send", f), 5, "unauthorized 401", "INGEST_KEYS")
		if voters, _ := pollVoters(t, env, "show"); voters != 5 {
			t.Fatalf("show: %d voters after an unauthorized replay, want 5", voters)
		}
	})

	t.Run("origin unreachable is failed", func(t *testing.T) {
		down := []string{"EDGEPOLL_ORIGIN=http://127.0.0.1:1", env[1], env[2]}
		want(t, pollctl(t, down, "replay", "--send", rawFile), 1, "cannot reach origin", "replay again")
	})

	t.Run("past the replay memory votes come back as duplicates", func(t *testing.T) {
		// An origin that remembers batch ids for 6 s (twice its sign window).
		short := origintest.StartWith(t, r.URL, origintest.Options{AdminToken: o.AdminToken, IngestKey: o.IngestKey, Args: []string{"-sign-window", "3s"}})
		senv := []string{"EDGEPOLL_ORIGIN=" + short.URL, "EDGEPOLL_ADMIN_TOKEN=" + o.AdminToken, env[2]}
		_, body := testBatch(t, 10, "show", 50, 51)
		f := writeFile(t, dir, "b10.msgpack", body)
		out := decodeReplay(t, pollctl(t, senv, "replay", "--send", "-o", "json", f))
		if out.Batches[0].Outcome != "applied" || out.Batches[0].Accepted != 2 {
			t.Fatalf("first send: %+v", out.Batches[0])
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			out = decodeReplay(t, pollctl(t, senv, "replay", "--send", "-o", "json", f))
			if b := out.Batches[0]; b.Outcome == "applied" {
				if b.Accepted != 0 || b.Duplicate != 2 || !strings.Contains(b.Advice, "already counted") {
					t.Fatalf("re-applied batch: %+v", b)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the batch id was still remembered after 30 s: %+v", out.Batches[0])
			}
			time.Sleep(250 * time.Millisecond)
		}
		if voters, _ := pollVoters(t, env, "show"); voters != 7 {
			t.Fatalf("show: %d voters, want 7", voters)
		}
	})
}
