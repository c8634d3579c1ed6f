package identitystats_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/edgepoll/edgepoll/shared/identitystats"
)

func TestCounts(t *testing.T) {
	var c identitystats.Counts
	for i := 0; i < identitystats.MaxReportedAddrs+50; i++ {
		c.Issued("p", "10.0.0."+strconv.Itoa(i))
	}
	for i := 0; i < 7; i++ {
		c.Issued("p", "203.0.113.9")
	}
	c.Refused("p", "expired")
	c.Refused("q", "bad_signature")
	got := c.Take()
	p := got["p"]
	if p.Tokens != identitystats.MaxReportedAddrs+57 || len(p.Addrs) != identitystats.MaxReportedAddrs || p.Addrs["203.0.113.9"] != 7 || p.Refused["expired"] != 1 {
		t.Fatalf("p: tokens %d, %d addrs, top %d, refused %v", p.Tokens, len(p.Addrs), p.Addrs["203.0.113.9"], p.Refused)
	}
	if got["q"].Tokens != 0 || got["q"].Refused["bad_signature"] != 1 {
		t.Fatalf("q: %+v", got["q"])
	}
	if again := c.Take(); len(again) != 0 {
		t.Fatalf("a second Take returned %v", again)
	}
}

func TestDeltaJSON(t *testing.T) {
	d := identitystats.Delta{Tokens: 3, Addrs: map[string]uint64{"2001:db8::/64": 2, "10.0.0.1": 1}, Refused: map[string]uint64{"expired": 4}}
	want := `{"tokens":3,"addrs":{"10.0.0.1":1,"2001:db8::/64":2},"refused":{"expired":4}}`
	if got := string(d.AppendJSON(nil)); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	var back identitystats.Delta
	if err := json.Unmarshal(d.AppendJSON(nil), &back); err != nil || back.Tokens != 3 || back.Addrs["2001:db8::/64"] != 2 {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	if got := string((&identitystats.Delta{}).AppendJSON(nil)); got != `{"tokens":0}` {
		t.Fatalf("empty: %s", got)
	}
}

func TestCountsBounded(t *testing.T) {
	var c identitystats.Counts
	for i := 0; i < identitystats.MaxPolls+10; i++ {
		c.Issued("poll"+strconv.Itoa(i), "a")
	}
	for i := 0; i < identitystats.MaxReasons+10; i++ {
		c.Refused("poll0", "r"+strconv.Itoa(i))
	}
	got := c.Take()
	if len(got) != identitystats.MaxPolls || len(got["poll0"].Refused) != identitystats.MaxReasons {
		t.Fatalf("%d polls, %d reasons", len(got), len(got["poll0"].Refused))
	}
}
