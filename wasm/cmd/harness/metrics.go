package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/wasm/harness"
	"github.com/edgepoll/edgepoll/wasm/originhost"
)

// harnessMetrics is the harness's /metrics: the edge counters a Worker keeps
// (requests by route and status, 429s by limiter, dedupe hits, hand-off
// failures, spool depth, origin retries), read from the guest pool and the
// origin host at scrape time, plus Go runtime and process metrics.
type harnessMetrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  fasthttp.RequestHandler
}

func newHarnessMetrics(h *harness.Harness, host *originhost.Host) *harnessMetrics {
	m := &harnessMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgepoll_harness_http_requests_total",
			Help: "HTTP requests by route (poll, vote, results, check, token, stream, page, healthz, metrics, other) and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgepoll_harness_request_duration_seconds",
			Help:    "Time to answer a request by route (streams: until the stream starts).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.latency, &statsCollector{h: h, host: host},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"poll", "vote", "results", "check", "token"} {
		m.latency.WithLabelValues(r)
	}
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return m
}

// observe counts one answered request.
func (m *harnessMetrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// routeOf labels a request path for the harness's metrics.
func routeOf(path string, page bool) string {
	switch {
	case path == "/healthz":
		return "healthz"
	case path == "/metrics":
		return "metrics"
	case strings.HasSuffix(path, "/stream") && streamPoll(path) != "":
		return "stream"
	}
	if r := edge.RouteLabel(path); r != "" {
		return r
	}
	if page {
		return "page"
	}
	return "other"
}

// statsCollector turns the pool's and the origin host's counters into
// metrics at scrape time; they are kept as atomics where they happen.
type statsCollector struct {
	h    *harness.Harness
	host *originhost.Host
}

type statDesc struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(h *harness.Stats, o *originhost.Stats) float64
}

var (
	limitedDesc = prometheus.NewDesc("edgepoll_harness_rate_limited_total",
		"Requests refused with 429 by the edge's rate limiters, by limiter (vote_ip, token_ip, voter, check, token_poll).", []string{"limiter"}, nil)
	handoffDesc = prometheus.NewDesc("edgepoll_harness_handoff_failures_total",
		"Failed hand-offs to the spool (answered 503): votes refused because it was full (queue_full), batches whose write or fsync failed (spool_error).", []string{"reason"}, nil)
)

func stat(name, help string, typ prometheus.ValueType, val func(h *harness.Stats, o *originhost.Stats) float64) statDesc {
	return statDesc{prometheus.NewDesc(name, help, nil, nil), typ, val}
}

const counter, gauge = prometheus.CounterValue, prometheus.GaugeValue

var statDescs = []statDesc{
	stat("edgepoll_harness_requests_total", "Requests answered by a guest.", counter, func(h *harness.Stats, _ *originhost.Stats) float64 { return float64(h.Requests) }),
	stat("edgepoll_harness_guest_traps_total", "Guest calls that trapped (instance replaced).", counter, func(h *harness.Stats, _ *originhost.Stats) float64 { return float64(h.Traps) }),
	stat("edgepoll_harness_guest_timeouts_total", "Guest calls stopped at their time budget (instance replaced).", counter, func(h *harness.Stats, _ *originhost.Stats) float64 { return float64(h.Timeouts) }),
	stat("edgepoll_harness_busy_total", "Requests refused with 503: no free instance.", counter, func(h *harness.Stats, _ *originhost.Stats) float64 { return float64(h.Busy) }),
	stat("edgepoll_harness_instances_created_total", "Guest instances created.", counter, func(h *harness.Stats, _ *originhost.Stats) float64 { return float64(h.Instances) }),
	stat("edgepoll_harness_dedupe_hits_total", "Votes the location's dedupe memory had already seen (409 without reaching the origin).", counter, func(h *harness.Stats, _ *originhost.Stats) float64 { return float64(h.DedupeHits) }),
	stat("edgepoll_harness_queue_votes", "Votes acknowledged or being written, not yet delivered to the origin.", gauge, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Queued) }),
	stat("edgepoll_harness_votes_submitted_total", "Votes recorded in the spool (answered 202).", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Submitted) }),
	stat("edgepoll_harness_queue_full_total", "Votes refused with 503: spool full.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.QueueFull) }),
	stat("edgepoll_harness_spool_errors_total", "Batches whose spool write or fsync failed (their votes answered 503).", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.SpoolErrors) }),
	stat("edgepoll_harness_spool_bytes", "Bytes of the vote spool on disk.", gauge, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.SpoolBytes) }),
	stat("edgepoll_harness_spool_segments", "Vote spool segment files.", gauge, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.SpoolSegments) }),
	stat("edgepoll_harness_spool_recovered_votes", "Votes found undelivered in the spool at start.", gauge, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Recovered) }),
	stat("edgepoll_harness_batches_total", "Batches applied by the origin.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Batches) }),
	stat("edgepoll_harness_batch_votes_total", "Votes in batches applied by the origin.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Votes) }),
	stat("edgepoll_harness_ingest_retries_total", "Failed batch sends that were retried.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Retries) }),
	stat("edgepoll_harness_poison_batches_total", "Batches refused by the origin with a 4xx (moved to the spool's dead-letter file).", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Poison) }),
	stat("edgepoll_harness_poison_votes_total", "Votes in poison batches.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.PoisonVotes) }),
	stat("edgepoll_harness_undelivered_votes_total", "Votes left in the spool when shutdown gave up.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.Undelivered) }),
	stat("edgepoll_harness_poll_fetches_total", "Poll config requests to the origin.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.PollFetches) }),
	stat("edgepoll_harness_results_fetches_total", "Results requests to the origin.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.ResultFetches) }),
	stat("edgepoll_harness_vote_check_fetches_total", "Vote-check requests to the origin.", counter, func(_ *harness.Stats, o *originhost.Stats) float64 { return float64(o.VotedFetches) }),
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range statDescs {
		ch <- d.desc
	}
	ch <- limitedDesc
	ch <- handoffDesc
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	h, o := c.h.Stats(), c.host.Stats()
	for _, d := range statDescs {
		ch <- prometheus.MustNewConstMetric(d.desc, d.typ, d.val(&h, &o))
	}
	for l := 1; l < edge.NumLimiters; l++ {
		ch <- prometheus.MustNewConstMetric(limitedDesc, counter, float64(h.Limited[l]), edge.Limiter(l).String())
	}
	ch <- prometheus.MustNewConstMetric(handoffDesc, counter, float64(o.QueueFull), "queue_full")
	ch <- prometheus.MustNewConstMetric(handoffDesc, counter, float64(o.SpoolErrors), "spool_error")
}
