// Package ops holds edgepoll's operations artefacts that are code: the
// Grafana dashboard for a show in progress, built with the Grafana
// Foundation SDK and committed as docs/ops/grafana/edgepoll-show.json, and
// the tests that check it and the alerting rules against a real Prometheus.
package ops

//lint:file-ignore SA1019 the classic dashboard JSON (schema v1) is what Grafana 10 and 11 import; dashboardv2 needs Grafana 12's new API.

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// DashboardUID is the committed dashboard's uid: links and provisioning
// refer to it.
const DashboardUID = "edgepoll-show"

// Query is one PromQL expression of a panel with its legend.
type Query struct {
	Expr, Legend string
}

// Panel is one dashboard panel as the tests see it.
type Panel struct {
	Title, Description, Unit string
	Stat                     bool // a single-value stat, else a time series
	Queries                  []Query
}

// Row is a titled group of panels.
type Row struct {
	Title  string
	Panels []Panel
}

// r is the range of the rates: Grafana's $__rate_interval, at least four
// scrape intervals.
const r = "[$__rate_interval]"

// Rows are the dashboard's rows, top to bottom.
var Rows = []Row{
	{"Votes", []Panel{
		{Title: "Votes/s at the origin", Unit: "ops",
			Description: "Counted (first vote of a voter), duplicate (voter already counted) and rejected by reason, summed over origins.",
			Queries: []Query{
				{"sum(rate(edgepoll_origin_votes_accepted_total" + r + "))", "accepted"},
				{"sum(rate(edgepoll_origin_votes_duplicate_total" + r + "))", "duplicate"},
				{"sum by (reason) (rate(edgepoll_origin_votes_rejected_total" + r + "))", "rejected {{reason}}"},
			}},
		{Title: "Acknowledged at the edge vs counted", Unit: "ops",
			Description: "Votes the edges answered 202 against votes the origin counted. They agree unless voters repeat: a widening gap with a growing edge queue means votes wait for delivery.",
			Queries: []Query{
				{"sum(rate(edgepoll_harness_votes_submitted_total" + r + "))", "acknowledged (202)"},
				{"sum(rate(edgepoll_origin_votes_accepted_total" + r + ")) + sum(rate(edgepoll_origin_votes_duplicate_total" + r + "))", "counted + duplicate"},
			}},
		{Title: "Votes/s per open poll", Unit: "ops",
			Description: "Voters counted per second in each open poll (at most 50 polls have their own series).",
			Queries: []Query{
				{"max by (poll) (rate(edgepoll_origin_poll_votes_counted_total" + r + "))", "{{poll}}"},
			}},
		{Title: "Open polls", Stat: true, Unit: "short",
			Queries: []Query{{"max(edgepoll_origin_polls_open)", "open"}}},
		{Title: "Votes waiting at the edges", Stat: true, Unit: "short",
			Description: "Acknowledged votes not yet delivered to the origin (spool).",
			Queries:     []Query{{"sum(edgepoll_harness_queue_votes)", "waiting"}}},
	}},
	{"Latency", []Panel{
		{Title: "Batch apply latency", Unit: "s",
			Description: "Time Redis takes to apply one batch, p50 and p99 over all origins.",
			Queries: []Query{
				{"histogram_quantile(0.5, sum by (le) (rate(edgepoll_origin_batch_apply_duration_seconds_bucket" + r + ")))", "p50"},
				{"histogram_quantile(0.99, sum by (le) (rate(edgepoll_origin_batch_apply_duration_seconds_bucket" + r + ")))", "p99"},
			}},
		{Title: "Edge request latency p99 by route", Unit: "s",
			Queries: []Query{
				{"histogram_quantile(0.99, sum by (le, route) (rate(edgepoll_harness_request_duration_seconds_bucket{route=~\"vote|token|results|poll\"}" + r + ")))", "{{route}}"},
			}},
		{Title: "Votes per batch", Unit: "short",
			Queries: []Query{
				{"sum(rate(edgepoll_origin_batch_votes_sum" + r + ")) / sum(rate(edgepoll_origin_batch_votes_count" + r + "))", "mean"},
			}},
	}},
	{"Errors", []Panel{
		{Title: "Origin 4xx and 5xx by route and status", Unit: "reqps",
			Queries: []Query{
				{"sum by (route, status) (rate(edgepoll_origin_requests_total{status=~\"4..|5..\"}" + r + "))", "{{route}} {{status}}"},
			}},
		{Title: "Edge 4xx and 5xx by route and status", Unit: "reqps",
			Queries: []Query{
				{"sum by (route, status) (rate(edgepoll_harness_http_requests_total{status=~\"4..|5..\"}" + r + "))", "{{route}} {{status}}"},
			}},
		{Title: "429s by limiter", Unit: "reqps",
			Queries: []Query{
				{"sum by (limiter) (rate(edgepoll_harness_rate_limited_total" + r + "))", "{{limiter}}"},
			}},
		{Title: "Hand-off failures, replays and dead letters", Unit: "ops",
			Description: "Edge hand-offs that failed (votes answered 503), batches the origin answered as replays, batches moved to an edge's dead-letter file.",
			Queries: []Query{
				{"sum by (reason) (rate(edgepoll_harness_handoff_failures_total" + r + "))", "hand-off {{reason}}"},
				{"sum(rate(edgepoll_origin_batch_replays_total" + r + "))", "replayed batches"},
				{"sum(rate(edgepoll_harness_poison_batches_total" + r + "))", "dead-lettered batches"},
				{"sum(rate(edgepoll_harness_ingest_retries_total" + r + "))", "edge → origin retries"},
			}},
		{Title: "Dedupe hits at the edge", Unit: "ops",
			Queries: []Query{{"sum(rate(edgepoll_harness_dedupe_hits_total" + r + "))", "repeat votes stopped at the edge"}}},
	}},
	{"Snapshots and caches", []Panel{
		{Title: "Snapshot age per open poll", Unit: "s",
			Description: "Seconds since an origin last confirmed the results it serves against Redis (alert past 30 s).",
			Queries: []Query{
				{"max by (poll) (edgepoll_origin_snapshot_age_seconds)", "{{poll}}"},
			}},
		{Title: "Results cache hit ratio", Unit: "percentunit",
			Description: "Origin: lookups answered from memory (hit or revalidated). Edge: results requests answered without asking the origin.",
			Queries: []Query{
				{"sum(rate(edgepoll_origin_snapshot_cache_total{kind=\"results\",outcome=~\"hit|revalidated\"}" + r + ")) / sum(rate(edgepoll_origin_snapshot_cache_total{kind=\"results\"}" + r + "))", "origin"},
				{"1 - sum(rate(edgepoll_harness_results_fetches_total" + r + ")) / sum(rate(edgepoll_harness_http_requests_total{route=\"results\"}" + r + "))", "edge"},
			}},
	}},
	{"Redis and processes", []Panel{
		{Title: "Redis reachable", Stat: true, Unit: "short",
			Description: "The lowest edgepoll_origin_redis_up over origins: 1 when every origin reaches Redis.",
			Queries:     []Query{{"min(edgepoll_origin_redis_up)", "up"}}},
		{Title: "Redis round trip", Unit: "s",
			Queries: []Query{
				{"histogram_quantile(0.99, sum by (le) (rate(edgepoll_origin_redis_ping_duration_seconds_bucket" + r + ")))", "PING p99"},
				{"sum by (op) (rate(edgepoll_origin_redis_errors_total" + r + "))", "errors {{op}}"},
			}},
		{Title: "Redis memory per voter", Unit: "bytes",
			Description: "Redis memory in use over the voters it holds (alert past 64 B with over 100,000 voters).",
			Queries: []Query{
				{"max(edgepoll_origin_redis_memory_used_bytes) / max(edgepoll_origin_redis_voters)", "bytes per voter"},
			}},
		{Title: "Origin instances up and ready", Stat: true, Unit: "short",
			Queries: []Query{
				{"sum(up{job=\"edgepoll-origin\"})", "up"},
				{"sum(edgepoll_origin_ready)", "ready"},
			}},
		{Title: "Durability mode", Stat: true, Unit: "short",
			Queries: []Query{{"count by (mode) (edgepoll_origin_durability_mode == 1)", "{{mode}}"}}},
		{Title: "Ingest in flight and goroutines", Unit: "short",
			Queries: []Query{
				{"sum(edgepoll_origin_ingest_in_flight_requests)", "ingest in flight"},
				{"sum by (job) (go_goroutines{job=~\"edgepoll-.*\"})", "goroutines {{job}}"},
			}},
		{Title: "Resident memory", Unit: "bytes",
			Queries: []Query{
				{"sum by (job, instance) (process_resident_memory_bytes{job=~\"edgepoll-.*\"})", "{{job}} {{instance}}"},
				{"sum(edgepoll_harness_spool_bytes)", "edge spool on disk"},
			}},
	}},
}

// Panels returns every panel, in order.
func Panels() []Panel {
	var out []Panel
	for _, row := range Rows {
		out = append(out, row.Panels...)
	}
	return out
}

// Dashboard builds the Grafana dashboard for a show in progress.
func Dashboard() (dashboard.Dashboard, error) {
	ds := common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	b := dashboard.NewDashboardBuilder("edgepoll: show in progress").
		Uid(DashboardUID).
		Description("Votes, latency, errors, snapshots and Redis for a live edgepoll show. Alerts: docs/ops/prometheus/alerts.yml; runbook: docs/OPERATIONS.md.").
		Tags([]string{"edgepoll"}).
		Refresh("10s").
		Time("now-30m", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus"))
	for _, row := range Rows {
		b = b.WithRow(dashboard.NewRowBuilder(row.Title))
		for _, p := range row.Panels {
			if p.Stat {
				sp := stat.NewPanelBuilder().Title(p.Title).Description(p.Description).Unit(p.Unit).
					Datasource(ds).Height(4).Span(4).GraphMode(common.BigValueGraphModeArea)
				for i, q := range p.Queries {
					sp = sp.WithTarget(target(q, i))
				}
				b = b.WithPanel(sp)
				continue
			}
			tp := timeseries.NewPanelBuilder().Title(p.Title).Description(p.Description).Unit(p.Unit).
				Datasource(ds).Height(8).Span(12).Min(0)
			for i, q := range p.Queries {
				tp = tp.WithTarget(target(q, i))
			}
			b = b.WithPanel(tp)
		}
	}
	return b.Build()
}

func target(q Query, i int) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(q.Expr).LegendFormat(q.Legend).RefId(string(rune('A' + i)))
}

// DashboardJSON returns the dashboard as committed: indented JSON with a
// trailing newline.
func DashboardJSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, fmt.Errorf("build dashboard: %w", err)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dashboard: %w", err)
	}
	return append(b, '\n'), nil
}
