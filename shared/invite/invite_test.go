package invite_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
)

func TestNewParseRoundTrip(t *testing.T) {
	seen := map[invite.Code]bool{}
	for range 1000 {
		c, err := invite.New(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != invite.Symbols || seen[c] {
			t.Fatalf("code %q: wrong length or repeated", c)
		}
		seen[c] = true
		f := c.Format()
		if len(f) != invite.FormattedLen || strings.Count(f, "-") != 4 {
			t.Fatalf("formatted %q", f)
		}
		for _, in := range []string{string(c), f, strings.ToLower(f), " " + strings.ReplaceAll(f, "-", " ") + " "} {
			got, err := invite.Parse(in)
			if err != nil || got != c {
				t.Fatalf("Parse(%q) = %q, %v; want %q", in, got, err, c)
			}
		}
	}
	if invite.Bits < 80 {
		t.Fatalf("codes carry %d bits, want at least 80", invite.Bits)
	}
}

func TestParseRejects(t *testing.T) {
	c, _ := invite.New(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	good := string(c)
	mistyped := []byte(good)
	mistyped[3] = map[bool]byte{true: 'A', false: 'B'}[mistyped[3] != 'A']
	for name, in := range map[string]string{
		"empty":       "",
		"short":       good[:19],
		"long":        good + "0",
		"mistyped":    string(mistyped),
		"bad check":   good[:19] + string(invite.Alphabet[(strings.IndexByte(invite.Alphabet, good[19])+1)%32]),
		"U":           "U" + good[1:],
		"punctuation": good[:10] + "." + good[10:],
		"unicode":     good[:10] + "é" + good[10:],
		"huge":        strings.Repeat("-", 100) + good,
	} {
		if _, err := invite.Parse(in); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%s: Parse(%q) err %v, want EINVALID", name, in, err)
		} else if strings.Contains(err.Error(), good) {
			t.Errorf("%s: error echoes the code: %v", name, err)
		}
	}
	// Misreadings map to the symbols they resemble.
	if got, err := invite.Parse(strings.NewReplacer("1", "l", "0", "o").Replace(good)); err != nil || got != c {
		t.Errorf("misreadings: %q %v", got, err)
	}
}

func TestHashIsKeyedAndPerPoll(t *testing.T) {
	c, _ := invite.New(rand.Reader)
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	again, _ := invite.Parse(c.Format())
	if invite.Hash(k1, "p", c) != invite.Hash(k1, "p", again) {
		t.Fatal("hash not deterministic")
	}
	if invite.Hash(k1, "p", c) == invite.Hash(k2, "p", c) || invite.Hash(k1, "p", c) == invite.Hash(k1, "q", c) {
		t.Fatal("hash ignores its key or poll")
	}
}

func FuzzParseCode(f *testing.F) {
	c, _ := invite.New(bytes.NewReader(bytes.Repeat([]byte{9}, 32)))
	for _, s := range []string{string(c), c.Format(), strings.ToLower(c.Format()), "", "----", "ILOU", strings.Repeat("Z", 21)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := invite.Parse(s)
		if err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error code %s", shared.ErrorCode(err))
			}
			return
		}
		if len(got) != invite.Symbols {
			t.Fatalf("canonical %q has length %d", got, len(got))
		}
		again, err := invite.Parse(got.Format())
		if err != nil || again != got {
			t.Fatalf("round trip of %q: %q %v", got, again, err)
		}
	})
}

func TestRedeemOutcome(t *testing.T) {
	for status, want := range map[int]shared.Code{200: "", 204: "", 409: shared.ECONFLICT, 403: shared.EFORBIDDEN,
		404: shared.ENOTFOUND, 401: shared.EUNAVAILABLE, 500: shared.EUNAVAILABLE, 400: shared.EUNAVAILABLE} {
		err := invite.RedeemOutcome(status)
		if got := shared.ErrorCode(err); (want == "") != (err == nil) || (err != nil && got != want) {
			t.Errorf("status %d: %v, want %q", status, err, want)
		}
	}
}
