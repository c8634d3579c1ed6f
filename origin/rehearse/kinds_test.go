package rehearse_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/edgetest"
	"github.com/edgepoll/edgepoll/origin/rehearse"
	"github.com/edgepoll/edgepoll/shared"
)

// TestRehearseKinds rehearses the scale, ranked and words polls of the
// edge behaviour table against the real edge handler (no rate limits):
// every ballot the rehearsal sends must be one the edge accepts, and each
// bad one one it refuses.
func TestRehearseKinds(t *testing.T) {
	for _, poll := range []string{"scale", "ranked", "words"} {
		t.Run(poll, func(t *testing.T) {
			host := edgetest.NewFakeHost()
			edgetest.Seed(host)
			cfg := edgetest.TableConfig()
			off := edge.Rate{N: -1}
			cfg.TokenRate, cfg.VoteRate, cfg.VoterRate, cfg.CheckRate, cfg.PollTokenRate = off, off, off, off, off
			srv := httptest.NewServer(edge.New(cfg, host))
			defer srv.Close()
			rep, err := rehearse.Run(context.Background(), rehearse.Config{
				Edge: srv.URL, Poll: poll, Concurrency: 8, Voters: 300, RepeatShare: 0.1, BadShare: 0.1,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Acknowledged == 0 || rep.Votes["400"] != 0 || rep.Votes["202"] != rep.Acknowledged || rep.Bad["202"] != 0 || rep.Kind != poll {
				t.Fatalf("report: votes %v bad %v acknowledged %d kind %s", rep.Votes, rep.Bad, rep.Acknowledged, rep.Kind)
			}
			votes := host.Votes()
			if int64(len(votes)) != rep.Acknowledged {
				t.Fatalf("edge recorded %d votes, rehearsal acknowledged %d", len(votes), rep.Acknowledged)
			}
			for _, v := range votes {
				if err := v.Validate(); err != nil || (poll == "words") != (len(v.Words) > 0) {
					t.Fatalf("recorded vote %+v: %v", v, err)
				}
			}
			var p shared.Poll
			for _, q := range edgetest.Polls() {
				if q.ID == poll {
					p = q
				}
			}
			if poll != "words" {
				for _, v := range votes {
					if err := p.ValidateChoices(v.Choices); err != nil {
						t.Fatalf("recorded %v: %v", v.Choices, err)
					}
				}
			}
		})
	}
}
