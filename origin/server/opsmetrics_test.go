package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/metrictest"
	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/server"
	"github.com/edgepoll/edgepoll/shared"
)

// flakyStore fails every call the scrape makes while down is set, like an
// unreachable Redis.
type flakyStore struct {
	origin.Store
	down atomic.Bool
}

func (f *flakyStore) err() error {
	return shared.Errorf(shared.EUNAVAILABLE, "redis: connection refused")
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return f.err()
	}
	return f.Store.Ping(ctx)
}

func (f *flakyStore) Polls(ctx context.Context) ([]*shared.Poll, error) {
	if f.down.Load() {
		return nil, f.err()
	}
	return f.Store.Polls(ctx)
}

func (f *flakyStore) SnapshotVersion(ctx context.Context, id string) (uint64, error) {
	if f.down.Load() {
		return 0, f.err()
	}
	return f.Store.SnapshotVersion(ctx, id)
}

// scrape fetches /metrics and parses it.
func (e *env) scrape() metrictest.Families {
	e.t.Helper()
	r := e.do("GET", "/metrics", nil, nil)
	if r.status != 200 {
		e.t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	fams, err := metrictest.Parse(bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	return fams
}

func TestOperatorMetrics(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyStore{Store: e.mem}
	e.store.Store = flaky
	e.createPoll("open1", nil)
	e.createPoll("open2", nil)
	e.createPoll("draft", func(p *shared.Poll) { p.State = shared.StateDraft })
	e.ingest(batch("open1", []int{1, 2, 3}, func(int) uint8 { return 0 }))
	e.ingest(batch("open2", []int{1}, func(int) uint8 { return 1 }))

	fams := e.scrape()
	want := map[string]float64{
		"edgepoll_origin_redis_up":                     1,
		"edgepoll_origin_ready":                        1,
		"edgepoll_origin_polls_open":                   2,
		"edgepoll_origin_redis_voters":                 4,
		"edgepoll_origin_batch_apply_duration_seconds": 2,
		"edgepoll_origin_batch_votes":                  2,
		"edgepoll_origin_ingest_in_flight_requests":    0,
		"edgepoll_origin_redis_ping_duration_seconds":  1,
	}
	for name, w := range want {
		if got, ok := metrictest.Value(fams, name); !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, w)
		}
	}
	for poll, w := range map[string]float64{"open1": 3, "open2": 1} {
		if got, ok := metrictest.Value(fams, "edgepoll_origin_poll_votes_counted_total", "poll", poll); !ok || got != w {
			t.Errorf("votes counted in %s = %v (present %v), want %v", poll, got, ok, w)
		}
		if got, ok := metrictest.Value(fams, "edgepoll_origin_snapshot_age_seconds", "poll", poll); !ok || got < 0 || got > 1 {
			t.Errorf("snapshot age of %s = %v (present %v), want a fresh snapshot", poll, got, ok)
		}
	}
	if _, ok := metrictest.Value(fams, "edgepoll_origin_poll_votes_counted_total", "poll", "draft"); ok {
		t.Error("a draft poll has its own series; only open polls may")
	}

	// The store goes away: the scrape still answers, says so, and the age
	// of the snapshots the origin serves grows with the clock.
	flaky.down.Store(true)
	e.advance(30 * time.Second)
	fams = e.scrape()
	for _, name := range []string{"edgepoll_origin_redis_up", "edgepoll_origin_ready"} {
		if got, _ := metrictest.Value(fams, name); got != 0 {
			t.Errorf("with the store down %s = %v, want 0", name, got)
		}
	}
	if got, ok := metrictest.Value(fams, "edgepoll_origin_snapshot_age_seconds", "poll", "open1"); !ok || got < 30 {
		t.Errorf("snapshot age with the store down = %v (present %v), want ≥ 30 s", got, ok)
	}
	if got, _ := metrictest.Value(fams, "edgepoll_origin_polls_open"); got != 2 {
		t.Errorf("open polls with the store down = %v, want the last known 2", got)
	}

	flaky.down.Store(false)
	fams = e.scrape()
	if got, _ := metrictest.Value(fams, "edgepoll_origin_snapshot_age_seconds", "poll", "open1"); got > 1 {
		t.Errorf("snapshot age once the store is back = %v, want fresh", got)
	}
}

func TestOperatorMetricsCapPollSeries(t *testing.T) {
	e := newEnv(t)
	for i := range server.MaxPollSeries + 5 {
		e.createPoll(fmt.Sprintf("p%03d", i), nil)
	}
	fams := e.scrape()
	if got := len(fams["edgepoll_origin_poll_votes_counted_total"].GetMetric()); got != server.MaxPollSeries {
		t.Errorf("%d per-poll series, want the cap %d", got, server.MaxPollSeries)
	}
	if got, _ := metrictest.Value(fams, "edgepoll_origin_polls_open"); got != server.MaxPollSeries+5 {
		t.Errorf("open polls = %v, want %d", got, server.MaxPollSeries+5)
	}
}
