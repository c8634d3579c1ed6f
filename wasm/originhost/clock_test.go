package originhost

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

func TestClockWatch(t *testing.T) {
	origin := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	date := origin.Format(http.TimeFormat)
	cases := []struct {
		name   string
		edge   time.Duration // this edge's clock minus the origin's
		refuse bool
	}{
		{"agree", 300 * time.Millisecond, false},
		{"2 s ahead is inside the bound (Date has whole seconds)", 2 * time.Second, false},
		{"4 s ahead", 4 * time.Second, true},
		{"1.5 s behind", -1500 * time.Millisecond, false},
		{"3 s behind", -3 * time.Second, true},
		{"10 min ahead", 10 * time.Minute, true},
	}
	for _, c := range cases {
		w := &clockWatch{max: shared.ClockSkew}
		at := origin.Add(c.edge)
		w.observe(at, at.Add(5*time.Millisecond), date)
		if err := w.check(); (err != nil) != c.refuse || (err != nil && shared.ErrorCode(err) != shared.EUNAVAILABLE) {
			t.Errorf("%s: check = %v, want refuse %v", c.name, err, c.refuse)
		}
		w.observe(origin, origin, date) // the clock is set right
		if err := w.check(); err != nil {
			t.Errorf("%s, then agreeing: %v", c.name, err)
		}
	}
	off := &clockWatch{max: -1}
	off.observe(origin.Add(time.Hour), origin.Add(time.Hour), date)
	if err := off.check(); err != nil {
		t.Errorf("check turned off: %v", err)
	}
	w := &clockWatch{max: shared.ClockSkew}
	w.observe(origin.Add(time.Hour), origin.Add(time.Hour), "not a date")
	if err := w.check(); err != nil {
		t.Errorf("an unreadable Date changed the verdict: %v", err)
	}
}

// TestClockTransport: every origin response's Date reaches the watch.
func TestClockTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	w := &clockWatch{max: shared.ClockSkew}
	c := &http.Client{Transport: &clockTransport{base: http.DefaultTransport, now: func() time.Time { return time.Now().Add(time.Hour) }, watch: w}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := w.check(); shared.ErrorCode(err) != shared.EUNAVAILABLE {
		t.Fatalf("an edge an hour ahead: check = %v, want EUNAVAILABLE", err)
	}
}
