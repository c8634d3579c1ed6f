package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

// MaxPollSeries caps the polls that get their own metric series: only open
// polls are exported, the first MaxPollSeries of them by id, so a deployment
// with thousands of polls cannot blow up Prometheus's label cardinality.
// edgepoll_origin_polls_open counts them all.
const MaxPollSeries = 50

// Scrape-time store reads are bounded so a slow or unreachable Redis delays a
// scrape by at most about this much (then the last known values are served).
const (
	opsReadTimeout = time.Second
	opsStatsEvery  = 15 * time.Second
)

// opsCollector exports what an operator watches that lives in the store:
// Redis reachability and round-trip time, readiness, the open polls (votes
// counted and the age of the snapshot the origin serves), and Redis memory
// with the voters it holds. It reads the store at scrape time, bounded by
// opsReadTimeout, and remembers the last answers for when the store fails.
type opsCollector struct {
	s *Server

	redisUp, ready, pollsOpen, memory, voters *prometheus.Desc
	pollVotes, snapshotAge                    *prometheus.Desc
	pingDuration                              prometheus.Histogram

	mu        sync.Mutex // serialises scrapes and guards what follows
	open      []string   // open polls last seen, capped, by id
	openTotal int
	stats     origin.Stats
	statsAt   time.Time
}

func newOpsCollector(s *Server) *opsCollector {
	return &opsCollector{
		s: s,
		redisUp: prometheus.NewDesc("edgepoll_origin_redis_up",
			"1 when the store (Redis) answered PING at the last scrape, else 0.", nil, nil),
		ready: prometheus.NewDesc("edgepoll_origin_ready",
			"1 when /readyz would answer 200 (store reachable, durability promise holding), else 0.", nil, nil),
		pollsOpen: prometheus.NewDesc("edgepoll_origin_polls_open",
			"Polls in the open state (all of them, not only those with their own series).", nil, nil),
		memory: prometheus.NewDesc("edgepoll_origin_redis_memory_used_bytes",
			"Memory Redis reports in use, summed over the nodes that hold polls (read at most every 15 s).", nil, nil),
		voters: prometheus.NewDesc("edgepoll_origin_redis_voters",
			"Voters counted over every poll the store holds (read at most every 15 s).", nil, nil),
		pollVotes: prometheus.NewDesc("edgepoll_origin_poll_votes_counted_total",
			"Voters counted in an open poll, read from the store (one series per open poll, at most 50).", []string{"poll"}, nil),
		snapshotAge: prometheus.NewDesc("edgepoll_origin_snapshot_age_seconds",
			"Seconds since the origin last confirmed the results snapshot it serves for an open poll against the store.", []string{"poll"}, nil),
		pingDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgepoll_origin_redis_ping_duration_seconds",
			Help:    "Round-trip time of the store's PING, sampled at every scrape and readiness check.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.redisUp, c.ready, c.pollsOpen, c.memory, c.voters, c.pollVotes, c.snapshotAge} {
		ch <- d
	}
	c.pingDuration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opsReadTimeout)
	defer cancel()
	s := c.s
	up := s.pingStore(ctx) == nil
	ready := up
	if up && s.durability != nil {
		ready = s.durability.CheckDurability(ctx) == nil
	}
	ch <- prometheus.MustNewConstMetric(c.redisUp, prometheus.GaugeValue, b2f(up))
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, b2f(ready))
	c.pingDuration.Collect(ch)
	if up {
		c.refreshOpen(ctx)
		if time.Since(c.statsAt) >= opsStatsEvery {
			if st, err := s.store.Stats(ctx); err == nil {
				c.stats, c.statsAt = st, time.Now()
			} else {
				s.metrics.storeError("stats")
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.pollsOpen, prometheus.GaugeValue, float64(c.openTotal))
	ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(c.stats.UsedMemory))
	ch <- prometheus.MustNewConstMetric(c.voters, prometheus.GaugeValue, float64(c.stats.Voters))
	now := s.now()
	for _, id := range c.open {
		// resultsEntry refreshes a snapshot older than the freshness period;
		// while the store fails, the cached entry's age keeps growing.
		e := s.results.get(id)
		if up {
			if fresh, err := s.resultsEntry(id); err == nil {
				e = fresh
			}
		}
		if e == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pollVotes, prometheus.CounterValue, float64(e.voters), id)
		ch <- prometheus.MustNewConstMetric(c.snapshotAge, prometheus.GaugeValue, now.Sub(e.fetchedAt).Seconds(), id)
	}
}

// refreshOpen re-reads the open polls; on failure the last list stays.
func (c *opsCollector) refreshOpen(ctx context.Context) {
	polls, err := c.s.store.Polls(ctx)
	if err != nil {
		c.s.metrics.storeError("polls")
		return
	}
	open := c.open[:0]
	total := 0
	for _, p := range polls {
		if p.State == shared.StateOpen {
			total++
			open = append(open, p.ID)
		}
	}
	slices.Sort(open)
	c.open, c.openTotal = open[:min(len(open), MaxPollSeries)], total
}

// pingStore pings the store and records the round trip.
func (s *Server) pingStore(ctx context.Context) error {
	start := time.Now()
	err := s.store.Ping(ctx)
	if err == nil {
		s.ops.pingDuration.Observe(time.Since(start).Seconds())
	}
	return err
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
