package shared_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

// nodeCrosscheck runs testdata/crosscheck.mjs with node; @msgpack/msgpack
// comes from the repository's node_modules (npm ci).
func nodeCrosscheck(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node not found on PATH: install Node.js 20+ and run `make deps`")
	}
	if _, err := os.Stat("../node_modules/@msgpack/msgpack/package.json"); err != nil {
		t.Fatal("@msgpack/msgpack is not installed: run `make deps` (npm ci)")
	}
	cmd := exec.Command("node", append([]string{"testdata/crosscheck.mjs"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("node crosscheck %v: %v\n%s", args, err, msg)
	}
	return out
}

// TestCrossImplementationDecode: @msgpack/msgpack decodes our batches to the same values.
func TestCrossImplementationDecode(t *testing.T) {
	b := sampleBatch(t, 200)
	for i := 0; i < len(b.Votes); i += 9 {
		b.Votes[i].Choices, b.Votes[i].Words = []uint8{}, []string{"amazing", "straße-ok"}[:1+i%2]
	}
	data, err := shared.MarshalBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "batch.msgpack")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID    string `json:"id"`
		Edge  string `json:"edge"`
		Votes []struct {
			Poll    string   `json:"poll"`
			Voter   string   `json:"voter"`
			Choices []uint8  `json:"choices"`
			At      int64    `json:"at"`
			Words   []string `json:"words"`
		} `json:"votes"`
	}
	if err := json.Unmarshal(nodeCrosscheck(t, "decode", file), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != b.ID.String() || got.Edge != b.Edge || len(got.Votes) != len(b.Votes) {
		t.Fatalf("header mismatch: %s %s %d", got.ID, got.Edge, len(got.Votes))
	}
	for i, v := range got.Votes {
		w := b.Votes[i]
		if v.Poll != w.Poll || v.Voter != w.Voter.String() || fmt.Sprint(v.Choices) != fmt.Sprint(w.Choices) || v.At != w.At || fmt.Sprint(v.Words) != fmt.Sprint(w.Words) {
			t.Fatalf("vote %d: node saw %+v, we wrote %+v", i, v, w)
		}
	}
}

// TestCrossImplementationEncode: we decode batches that @msgpack/msgpack
// encodes, in version 2 (with words votes) and in version 1 (what older
// edges still have in their queues and spools).
func TestCrossImplementationEncode(t *testing.T) {
	for _, mode := range []string{"encode", "encode-v1"} {
		t.Run(mode, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "batch.msgpack")
			nodeCrosscheck(t, mode, file)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var b shared.Batch
			if err := shared.UnmarshalBatch(data, &b); err != nil {
				t.Fatalf("decoding node's batch: %v", err)
			}
			if hex.EncodeToString(b.ID[:]) != "00112233445566778899aabbccddeeff" || b.Edge != "node-edge" || len(b.Votes) != 300 {
				t.Fatalf("header: %s %s %d", b.ID, b.Edge, len(b.Votes))
			}
			for i, v := range b.Votes {
				wantPoll := "other_poll"
				if i%2 == 1 {
					wantPoll = "js-poll"
				}
				want := []uint8{uint8(i % 4)}
				if i%7 == 0 {
					want = []uint8{0, 2, 5}
				}
				var wantWords []string
				if mode == "encode" && i%11 == 0 {
					wantPoll, want, wantWords = "words-poll", []uint8{}, []string{"amazing"}
					if i%2 == 1 {
						wantWords = []string{"café", "naïve"}
					}
				}
				if v.Poll != wantPoll || v.Voter.String() != fmt.Sprintf("%032x", i+1) || fmt.Sprint(v.Choices) != fmt.Sprint(want) ||
					v.At != 1700000000000+int64(i) || fmt.Sprint(v.Words) != fmt.Sprint(wantWords) {
					t.Fatalf("vote %d: %+v", i, v)
				}
			}
		})
	}
}
