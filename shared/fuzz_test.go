package shared_test

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/edgepoll/edgepoll/shared"
)

// Each fuzz target checks that decoding never panics, that every failure is a
// client error, and that whatever decodes re-encodes to bytes that decode to
// the same value (parse → write → parse).

func FuzzUnmarshalBatch(f *testing.F) {
	for _, n := range []int{1, 3, 20} {
		data, _ := shared.MarshalBatch(sampleBatch(f, n))
		f.Add(data)
	}
	f.Add([]byte{0x94, 0x01, 0xc4, 0x10})
	wb := sampleBatch(f, 4)
	wb.Votes[1].Choices, wb.Votes[1].Words = []uint8{}, []string{"amazing", "fun"}
	data, _ := shared.MarshalBatch(wb)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var b shared.Batch
		if err := shared.UnmarshalBatch(data, &b); err != nil {
			if c := shared.ErrorCode(err); c != shared.EINVALID && c != shared.ETOOLARGE {
				t.Fatalf("error code %q: %v", c, err)
			}
			return
		}
		again, err := shared.MarshalBatch(&b)
		if err != nil {
			t.Fatal(err)
		}
		var b2 shared.Batch
		if err := shared.UnmarshalBatch(again, &b2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		third, _ := shared.MarshalBatch(&b2)
		if !bytes.Equal(again, third) {
			t.Fatal("encoding is not stable")
		}
	})
}

func FuzzUnmarshalReceipt(f *testing.F) {
	r := &shared.Receipt{Accepted: 3, Duplicate: 1}
	r.Rejected[0] = 2
	data, _ := shared.MarshalReceipt(r)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r shared.Receipt
		if err := shared.UnmarshalReceipt(data, &r); err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error code: %v", err)
			}
			return
		}
		again, _ := shared.MarshalReceipt(&r)
		var r2 shared.Receipt
		if err := shared.UnmarshalReceipt(again, &r2); err != nil || r2 != r {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	data, _ := shared.MarshalSnapshot(&shared.Snapshot{Poll: "p", Version: 3, Counts: []uint64{1, 2, 3}, Total: 6, Voters: 6, GeneratedAt: 5})
	f.Add(data)
	for _, s := range sampleKindSnapshots() {
		data, _ := shared.MarshalSnapshot(s)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s shared.Snapshot
		if err := shared.UnmarshalSnapshot(data, &s); err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error code: %v", err)
			}
			return
		}
		again, _ := shared.MarshalSnapshot(&s)
		var s2 shared.Snapshot
		if err := shared.UnmarshalSnapshot(again, &s2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if third, _ := shared.MarshalSnapshot(&s2); !bytes.Equal(again, third) {
			t.Fatal("encoding is not stable")
		}
	})
}

func FuzzUnmarshalPoll(f *testing.F) {
	data, _ := shared.MarshalPoll(samplePoll())
	f.Add(data)
	for _, p := range sampleKindPolls() {
		data, _ := shared.MarshalPoll(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p shared.Poll
		if err := shared.UnmarshalPoll(data, &p); err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error code: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded an invalid poll: %v", err)
		}
		again, _ := shared.MarshalPoll(&p)
		var p2 shared.Poll
		if err := shared.UnmarshalPoll(again, &p2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// FuzzNormalizeWord: normalisation never panics, fails only with EINVALID,
// is idempotent, and its output obeys the documented shape.
func FuzzNormalizeWord(f *testing.F) {
	for _, c := range normalizeCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := shared.NormalizeWord(s)
		if err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error code: %v", err)
			}
			return
		}
		if w == "" || len(w) > shared.MaxWordBytes || utf8.RuneCountInString(w) > shared.MaxWordRunes {
			t.Fatalf("%q normalised to %q", s, w)
		}
		again, err := shared.NormalizeWord(w)
		if err != nil || again != w {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, w, again, err)
		}
	})
}
