package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/edgepoll/edgepoll/shared"
)

type metrics struct {
	votesAccepted prometheus.Counter
	duplicates    prometheus.Counter
	rejects       [shared.NumReasons]prometheus.Counter
	batches       *prometheus.CounterVec
	replays       prometheus.Counter
	latency       *prometheus.HistogramVec
	requests      *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
	cache         *prometheus.CounterVec
	invites       *prometheus.CounterVec
	applyLatency  prometheus.Histogram
	ingestActive  prometheus.Gauge
	batchVotes    prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		votesAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgepoll_origin_votes_accepted_total", Help: "Votes counted (first vote of a voter in a poll).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgepoll_origin_votes_duplicate_total", Help: "Votes refused because the voter had already voted.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgepoll_origin_batches_total", Help: "Ingest requests by result.",
		}, []string{"result"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgepoll_origin_batch_replays_total", Help: "Batches delivered again and answered with their original receipt.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgepoll_origin_request_duration_seconds",
			Help:    "Request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgepoll_origin_requests_total", Help: "Requests by route and status.",
		}, []string{"route", "status"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgepoll_origin_redis_errors_total", Help: "Store (Redis) errors by operation.",
		}, []string{"op"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgepoll_origin_snapshot_cache_total", Help: "Read cache lookups by kind (poll, results) and outcome (hit, revalidated, miss).",
		}, []string{"kind", "outcome"}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgepoll_origin_invite_redeems_total", Help: "Invite-code redeem requests by result (redeemed, reused, unknown, error).",
		}, []string{"result"}),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgepoll_origin_batch_apply_duration_seconds",
			Help:    "Time the store took to apply one batch (all its polls), errors included.",
			Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		ingestActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgepoll_origin_ingest_in_flight_requests", Help: "Ingest requests being served now.",
		}),
		batchVotes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgepoll_origin_batch_votes",
			Help:    "Votes per applied batch.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
	}
	rejects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgepoll_origin_votes_rejected_total", Help: "Votes rejected by reason.",
	}, []string{"reason"})
	for i, r := range shared.Reasons {
		m.rejects[i] = rejects.WithLabelValues(r)
	}
	for _, r := range []string{"redeemed", "reused", "unknown", "error"} {
		m.invites.WithLabelValues(r)
	}
	for _, r := range []string{"applied", "replayed", "unauthorized", "malformed", "too_large", "bad_media_type", "error"} {
		m.batches.WithLabelValues(r)
	}
	// Series exist from the start, so dashboards and alerts see zeros
	// rather than nothing.
	for _, op := range []string{"apply", "ping", "poll", "polls", "snapshot", "snapshot_version", "stats", "voted"} {
		m.storeErrors.WithLabelValues(op)
	}
	for _, kind := range []string{"poll", "results"} {
		for _, outcome := range []string{"hit", "revalidated", "miss"} {
			m.cache.WithLabelValues(kind, outcome)
		}
	}
	reg.MustRegister(m.votesAccepted, m.duplicates, rejects, m.batches, m.replays, m.latency, m.requests, m.storeErrors, m.cache, m.invites,
		m.applyLatency, m.ingestActive, m.batchVotes)
	// A fresh registry has no runtime metrics; add the usual two, tolerating
	// a registry that already has them.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				panic(err)
			}
		}
	}
	return m
}

// registerDurability exports the store's durability promise: the mode in
// force as edgepoll_origin_durability_mode{mode} 1, and the batches refused
// because too few replicas acknowledged them.
func registerDurability(reg *prometheus.Registry, d Durability) {
	mode := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edgepoll_origin_durability_mode", Help: "Durability mode in force (1 for the mode named by the label).",
		ConstLabels: prometheus.Labels{"mode": d.DurabilityMode()},
	})
	mode.Set(1)
	shortfalls := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edgepoll_origin_durability_wait_shortfalls_total",
		Help: "Batches answered 503 because fewer replicas than promised acknowledged them within the replica timeout.",
	}, func() float64 { return float64(d.WaitShortfalls()) })
	reg.MustRegister(mode, shortfalls)
}

func metricsHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

func (m *metrics) batch(result string) { m.batches.WithLabelValues(result).Inc() }

func (m *metrics) receipt(r *shared.Receipt) {
	if r.Replayed {
		m.replays.Inc()
		m.batch("replayed")
		return
	}
	m.batch("applied")
	m.batchVotes.Observe(float64(r.Total()))
	m.votesAccepted.Add(float64(r.Accepted))
	m.duplicates.Add(float64(r.Duplicate))
	for i, n := range r.Rejected {
		if n > 0 {
			m.rejects[i].Add(float64(n))
		}
	}
}

// invite counts one redeem by its error code ("" when redeemed).
func (m *metrics) invite(code shared.Code) {
	r := "error"
	switch code {
	case "":
		r = "redeemed"
	case shared.ECONFLICT:
		r = "reused"
	case shared.EFORBIDDEN:
		r = "unknown"
	}
	m.invites.WithLabelValues(r).Inc()
}

func (m *metrics) storeError(op string) { m.storeErrors.WithLabelValues(op).Inc() }

func (m *metrics) cacheLookup(kind, outcome string) { m.cache.WithLabelValues(kind, outcome).Inc() }

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.latency.WithLabelValues(route).Observe(d.Seconds())
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}
