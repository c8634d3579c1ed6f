package shared_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

// TestWireDocExample pins the byte-by-byte example in docs/WIRE.md.
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
		"94", "01", "c410000102030405060708090a0b0c0d0e0f", "a26531", "91",
		"94", "a170", "c4100102030405060708090a0b0c0d0e0f10", "c40102", "cf0000018bcfe56800",
	}, "")
	if got := hex.EncodeToString(data); got != want {
		t.Fatalf("encoding changed; update docs/WIRE.md\n got %s\nwant %s", got, want)
	}
}
