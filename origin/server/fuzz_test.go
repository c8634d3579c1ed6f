package server_test

import (
	"testing"

	"github.com/edgepoll/edgepoll/origin/server"
	"github.com/edgepoll/edgepoll/shared"
)

// FuzzDecodeCreate checks the admin JSON decoder never panics, returns only
// client errors, and that what it accepts is a valid poll.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"id":"q","title":"Q?","options":[{"label":"a"},{"label":"b"}]}`,
		`{"id":"q","title":"Q?","kind":"multi","max_choices":2,"options":[{"label":"a"},{"label":"b"}],"expected_voters":5}`,
		`{"id":"q","opens_at":"2026-01-01T00:00:00Z"}`,
		`{"x":1}`, `[]`, `null`, ``, `{"id":"q"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := server.DecodeCreate(body)
		if err != nil {
			if c := shared.ErrorCode(err); c != shared.EINVALID && c != shared.ETOOLARGE {
				t.Fatalf("code %q for %q", c, body)
			}
			return
		}
		if err := r.Poll.Validate(); err != nil {
			t.Fatalf("accepted an invalid poll %q: %v", body, err)
		}
		if _, err := server.DecodeUpdate(body); err != nil && shared.ErrorCode(err) != shared.EINVALID {
			t.Fatalf("update decoder: %v", err)
		}
	})
}
