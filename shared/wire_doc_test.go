package shared_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

// TestWireDocExample pins the byte-by-byte examples in docs/WIRE.md: the
// version 2 batch we write, and the version 1 batch older edges wrote,
// which must still decode to the same vote.
func TestWireDocExample(t *testing.T) {
	b := &shared.Batch{Edge: "e1"}
	for i := range b.ID {
		b.ID[i] = byte(i)
	}
	v := shared.Vote{Poll: "p", Choices: []uint8{2}, At: 1700000000000}
	for i := range v.Voter {
		v.Voter[i] = byte(i + 1)
	}
	b.Votes = []shared.Vote{v}
	data, err := shared.MarshalBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"94", "02", "c410000102030405060708090a0b0c0d0e0f", "a26531", "91",
		"95", "a170", "c4100102030405060708090a0b0c0d0e0f10", "c40102", "cf0000018bcfe56800", "90",
	}, "")
	if got := hex.EncodeToString(data); got != want {
		t.Fatalf("encoding changed; update docs/WIRE.md\n got %s\nwant %s", got, want)
	}
	v1 := strings.Join([]string{
		"94", "01", "c410000102030405060708090a0b0c0d0e0f", "a26531", "91",
		"94", "a170", "c4100102030405060708090a0b0c0d0e0f10", "c40102", "cf0000018bcfe56800",
	}, "")
	raw, _ := hex.DecodeString(v1)
	var old shared.Batch
	if err := shared.UnmarshalBatch(raw, &old); err != nil {
		t.Fatalf("version 1 batch: %v", err)
	}
	if old.ID != b.ID || old.Edge != "e1" || len(old.Votes) != 1 || old.Votes[0].Voter != v.Voter ||
		string(old.Votes[0].Choices) != "\x02" || old.Votes[0].At != v.At || old.Votes[0].Words != nil {
		t.Fatalf("version 1 batch decoded to %+v", old)
	}
	// A v2 vote of a words poll: no choices (empty or nil alike), the words.
	for _, none := range [][]uint8{{}, nil} {
		b.Votes[0].Choices, b.Votes[0].Words = none, []string{"amazing"}
		data, _ = shared.MarshalBatch(b)
		if got := hex.EncodeToString(data); !strings.HasSuffix(got, "c400cf0000018bcfe5680091a7616d617a696e67") {
			t.Fatalf("words vote encoding changed; update docs/WIRE.md\n got %s", got)
		}
		if err := shared.UnmarshalBatch(data, &old); err != nil || old.Votes[0].Words[0] != "amazing" {
			t.Fatalf("words vote does not decode: %v", err)
		}
	}
	// A v1 batch cannot carry words, nor may a v2 vote carry both.
	for _, bad := range []string{
		strings.Replace(v1, "9401", "9402", 1), // v2 header, 4-element vote
		strings.Replace(want, "c40102cf0000018bcfe5680090", "c40102cf0000018bcfe5680091a161", 1),
	} {
		raw, _ := hex.DecodeString(bad)
		if err := shared.UnmarshalBatch(raw, &old); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: got %v", bad, err)
		}
	}
}
