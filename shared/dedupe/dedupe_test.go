package dedupe_test

import (
	"encoding/binary"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/dedupe"
)

func voter(i uint64) shared.VoterID {
	var v shared.VoterID
	binary.BigEndian.PutUint64(v[8:], i+1)
	return v
}

func TestSet(t *testing.T) {
	s := dedupe.New(1000)
	if !s.Add("p", voter(1)) || s.Add("p", voter(1)) {
		t.Fatal("second Add of a pair must report false")
	}
	if !s.Seen("p", voter(1)) || s.Seen("q", voter(1)) {
		t.Fatal("pairs are per poll")
	}
	s.Remove("p", voter(1))
	if s.Seen("p", voter(1)) {
		t.Fatal("Remove did not forget")
	}
	for i := uint64(0); i < 100_000; i++ {
		s.Add("p", voter(i))
	}
	if s.Len() > 1000 {
		t.Fatalf("holds %d, capacity 1000", s.Len())
	}
	for i := uint64(100_000 - 500); i < 100_000; i++ {
		if !s.Seen("p", voter(i)) {
			t.Fatalf("forgot recent pair %d", i)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	s := dedupe.New(1 << 16)
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		s.Add("poll", voter(i))
	}
}
