package token_test

import (
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

func TestIssueVerify(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	voter := shared.VoterID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	tok := token.Issue(secret, "p1", voter)
	if len(tok) != token.Len {
		t.Fatalf("len %d", len(tok))
	}
	got, err := token.Verify(secret, "p1", tok)
	if err != nil || got != voter {
		t.Fatalf("Verify: %v %v", got, err)
	}
	flip := []byte(tok)
	flip[30] ^= 1
	for name, c := range map[string][3]string{
		"other poll":   {string(secret), "p2", tok},
		"other secret": {strings.Repeat("t", 32), "p1", tok},
		"tampered":     {string(secret), "p1", string(flip)},
		"short":        {string(secret), "p1", tok[:20]},
		"not base64":   {string(secret), "p1", strings.Repeat("*", token.Len)},
		"zero voter":   {string(secret), "p1", token.Issue(secret, "p1", shared.VoterID{})},
	} {
		if _, err := token.Verify([]byte(c[0]), c[1], c[2]); shared.ErrorCode(err) != shared.EUNAUTHORIZED {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	secret := []byte(strings.Repeat("s", 32))
	tok := token.Issue(secret, "p1", shared.VoterID{1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Verify(secret, "p1", tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyDoesNotAllocate pins the hot path's zero-allocation property.
func TestVerifyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool deliberately drops items under the race detector")
	}
	secret := []byte(strings.Repeat("s", 32))
	tok := token.Issue(secret, "p1", shared.VoterID{1})
	token.Verify(secret, "p1", tok) // warm the pool
	if n := testing.AllocsPerRun(100, func() {
		if _, err := token.Verify(secret, "p1", tok); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Verify allocates %.1f times per call", n)
	}
}
