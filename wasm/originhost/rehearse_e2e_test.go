package originhost_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/origin/rehearse"
)

// TestRehearseRealStack rehearses a show against the real harness, origin
// and Redis (the edge's default per-address limits, voters spread over 254
// loopback addresses), with repeats and bad input, and the verification
// against the origin must pass.
func TestRehearseRealStack(t *testing.T) {
	if testing.Short() {
		t.Skip("real stack")
	}
	s := startStackWith(t, stackOptions{instances: 8, env: map[string]string{
		"RATE_IP_VOTES": "50/s:200", "RATE_IP_TOKENS": "20/s:100",
	}})
	s.createPoll(t, "rehearsal", 3)
	rep, err := rehearse.Run(context.Background(), rehearse.Config{
		Edge: s.url, Poll: "rehearsal", Rate: 300, Duration: 3 * time.Second,
		Weights: []float64{5, 3, 2}, RepeatShare: 0.1, BadShare: 0.02,
		Admin: adminclient.New(s.origin.URL, s.origin.AdminToken), Settle: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verification
	if v == nil || !v.Passed {
		t.Fatalf("verification failed: %+v\nreport: %+v", v, rep)
	}
	if rep.Acknowledged == 0 || rep.Repeats["409"] == 0 || len(rep.Bad) == 0 || rep.Sources != 254 {
		t.Fatalf("the run lacks acknowledged votes, repeats or bad input: %+v", rep)
	}
	for st, n := range rep.Bad {
		if st[0] != '4' {
			t.Errorf("%d bad-input requests answered %s", n, st)
		}
	}
	t.Logf("%d voters, %d acknowledged, repeats %v, bad %v, counted %d", rep.Voters, rep.Acknowledged, rep.Repeats, rep.Bad, v.Counted)
}
