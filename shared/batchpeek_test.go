package shared_test

import (
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

func TestPeekBatch(t *testing.T) {
	for _, tc := range []struct {
		edge  string
		votes int
	}{{"cf", 1}, {"", 15}, {"harness-0", 16}, {strings.Repeat("e", shared.MaxEdgeIDLen), 1000}} {
		b := &shared.Batch{Edge: tc.edge}
		b.ID[0], b.ID[15] = 0xab, 0x01
		for i := range tc.votes {
			v := shared.Vote{Poll: "p", Choices: []uint8{0}, At: 1}
			v.Voter[0], v.Voter[1] = 1, byte(i)
			b.Votes = append(b.Votes, v)
		}
		data, err := shared.MarshalBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		h, ok := shared.PeekBatch(data)
		if !ok || h.ID != b.ID || h.Edge != tc.edge || h.Votes != tc.votes {
			t.Errorf("PeekBatch(%q, %d votes) = %+v, %v", tc.edge, tc.votes, h, ok)
		}
		for n := range 21 + len(tc.edge) {
			if _, ok := shared.PeekBatch(data[:n]); ok {
				t.Errorf("PeekBatch of the first %d bytes is ok", n)
			}
		}
	}
	for _, junk := range []string{"", "\x94", "\x93\x01\xc4\x10", `{"votes":[]}`} {
		if _, ok := shared.PeekBatch([]byte(junk)); ok {
			t.Errorf("PeekBatch(%q) is ok", junk)
		}
	}
}

func FuzzPeekBatch(f *testing.F) {
	b := &shared.Batch{Edge: "cf", Votes: []shared.Vote{{Poll: "p", Voter: shared.VoterID{1}, Choices: []uint8{0}, At: 1}}}
	b.ID[0] = 1
	data, _ := shared.MarshalBatch(b)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, ok := shared.PeekBatch(data)
		var full shared.Batch
		if shared.UnmarshalBatch(data, &full) == nil {
			if !ok || h.ID != full.ID || h.Edge != full.Edge || h.Votes != len(full.Votes) {
				t.Fatalf("PeekBatch = %+v, %v; the batch decodes to id %v edge %q with %d votes", h, ok, full.ID, full.Edge, len(full.Votes))
			}
		}
	})
}

func BenchmarkPeekBatch(b *testing.B) {
	batch := &shared.Batch{Edge: "cf", Votes: make([]shared.Vote, 100)}
	batch.ID[0] = 1
	for i := range batch.Votes {
		batch.Votes[i] = shared.Vote{Poll: "final", Voter: shared.VoterID{1, byte(i)}, Choices: []uint8{0}, At: 1}
	}
	data, _ := shared.MarshalBatch(batch)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := shared.PeekBatch(data); !ok {
			b.Fatal("not a batch")
		}
	}
}
