package sign_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

var (
	k1 = sign.Key{ID: "k1", Secret: []byte(strings.Repeat("a", 32))}
	k2 = sign.Key{ID: "k2", Secret: []byte(strings.Repeat("b", 32))}
)

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	v := sign.NewVerifier([]sign.Key{k1, k2}, time.Minute, clock)
	body := []byte("batch bytes")
	for _, k := range []sign.Key{k1, k2} { // rotation: both keys accepted
		s := sign.Sign(k, now, body)
		if err := v.Verify(s.KeyID, strconv.FormatInt(s.Timestamp, 10), s.MAC, body); err != nil {
			t.Fatalf("key %s: %v", k.ID, err)
		}
	}
	s := sign.Sign(k1, now, body)
	ts := strconv.FormatInt(s.Timestamp, 10)
	cases := []struct {
		name        string
		kid, ts, mc string
		body        string
	}{
		{"tampered body", "k1", ts, s.MAC, "batch bytez"},
		{"wrong key id", "k2", ts, s.MAC, string(body)},
		{"unknown key id", "k9", ts, s.MAC, string(body)},
		{"other timestamp", "k1", strconv.FormatInt(s.Timestamp+1, 10), s.MAC, string(body)},
		{"stale", "k1", strconv.FormatInt(now.Add(-2*time.Minute).Unix(), 10), sign.Sign(k1, now.Add(-2*time.Minute), body).MAC, string(body)},
		{"future", "k1", strconv.FormatInt(now.Add(2*time.Minute).Unix(), 10), sign.Sign(k1, now.Add(2*time.Minute), body).MAC, string(body)},
		{"malformed ts", "k1", "12x", s.MAC, string(body)},
		{"short mac", "k1", ts, s.MAC[:10], string(body)},
		{"non-hex mac", "k1", ts, strings.Repeat("z", 64), string(body)},
	}
	for _, c := range cases {
		err := v.Verify(c.kid, c.ts, c.mc, []byte(c.body))
		if shared.ErrorCode(err) != shared.EUNAUTHORIZED {
			t.Errorf("%s: got %v, want unauthorized", c.name, err)
		}
	}
}

func TestParseKeys(t *testing.T) {
	keys, err := sign.ParseKeys("k1=" + strings.Repeat("x", 32) + ", k2=" + strings.Repeat("y", 40))
	if err != nil || len(keys) != 2 || keys[1].ID != "k2" || len(keys[1].Secret) != 40 {
		t.Fatalf("ParseKeys: %v %v", keys, err)
	}
	for _, bad := range []string{"", "k1", "k1=short", "=" + strings.Repeat("x", 32), "k{1}=" + strings.Repeat("x", 32),
		"k1=" + strings.Repeat("x", 32) + ",k1=" + strings.Repeat("y", 32)} {
		if _, err := sign.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		} else if strings.Contains(err.Error(), strings.Repeat("x", 32)) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	v := sign.NewVerifier([]sign.Key{k1}, 0, nil)
	body := make([]byte, 30<<10)
	s := sign.Sign(k1, now, body)
	ts := strconv.FormatInt(s.Timestamp, 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Verify(s.KeyID, ts, s.MAC, body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	sig := sign.Sign(k1, time.Unix(1700000000, 0), []byte("body"))
	got := map[string]string{}
	sig.SetHeaders(func(k, v string) { got[k] = v })
	if got[sign.HeaderKeyID] != "k1" || got[sign.HeaderTimestamp] != "1700000000" || got[sign.HeaderSignature] != sig.MAC || len(got) != 3 {
		t.Fatalf("headers %v", got)
	}
	v := sign.NewVerifier([]sign.Key{k1}, time.Minute, func() time.Time { return time.Unix(1700000000, 0) })
	if err := v.Verify(got[sign.HeaderKeyID], got[sign.HeaderTimestamp], got[sign.HeaderSignature], []byte("body")); err != nil {
		t.Fatalf("the headers do not verify: %v", err)
	}
}
