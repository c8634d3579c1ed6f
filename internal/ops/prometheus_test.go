package ops_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/ops"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/origin/adminclient"
)

const rulesDir = "../../docs/ops/prometheus"

// keySeries must exist once votes have flowed: what the dashboard and the
// alerts stand on.
var keySeries = []string{
	"up",
	"edgepoll_origin_votes_accepted_total", "edgepoll_origin_batches_total", "edgepoll_origin_batch_apply_duration_seconds_bucket",
	"edgepoll_origin_redis_up", "edgepoll_origin_ready", "edgepoll_origin_poll_votes_counted_total",
	"edgepoll_origin_snapshot_age_seconds", "edgepoll_origin_ingest_in_flight_requests", "edgepoll_origin_durability_mode",
	"edgepoll_origin_redis_ping_duration_seconds_bucket", "edgepoll_origin_redis_memory_used_bytes",
	"edgepoll_harness_http_requests_total", "edgepoll_harness_rate_limited_total", "edgepoll_harness_dedupe_hits_total",
	"edgepoll_harness_handoff_failures_total", "edgepoll_harness_queue_votes", "edgepoll_harness_ingest_retries_total",
	"go_goroutines", "process_resident_memory_bytes",
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run make deps (Debian: apt-get install prometheus)", name)
	}
	return p
}

// ruleTests runs promtool check rules and test rules and returns the
// number of alert evaluations the rule tests check.
func ruleTests(t *testing.T) int {
	t.Helper()
	promtool := lookTool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = rulesDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(rulesDir, "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return len(regexp.MustCompile(`(?m)^\s+- eval_time:`).FindAll(b, -1))
}

func TestRules(t *testing.T) {
	if n := ruleTests(t); n < 9 {
		t.Errorf("%d rule test cases; want at least one per alert", n)
	}
}

// prom is a Prometheus server started by a test.
type prom struct {
	t    *testing.T
	url  string
	logs *syncbuf.Buffer
}

// startPrometheus runs Debian's prometheus on a free loopback port,
// scraping the origin and the harness every second and evaluating the
// committed rules every second, their `for` durations cut to forShort.
func startPrometheus(t *testing.T, origin, harness string, forShort string) *prom {
	t.Helper()
	bin := lookTool(t, "prometheus")
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(rulesDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules = regexp.MustCompile(`(?m)^(\s+for:) .*$`).ReplaceAll(rules, []byte("$1 "+forShort))
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: edgepoll-origin
    static_configs: [{targets: [%q]}]
  - job_name: edgepoll-harness
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(origin, "http://"), strings.TrimPrefix(harness, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := harnesstest.FreeAddr(t)
	p := &prom{t: t, url: "http://" + addr, logs: &syncbuf.Buffer{}}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.logs.String())
		}
	})
	p.waitFor("Prometheus ready", time.Minute, func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *prom) waitFor(what string, within time.Duration, ok func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// api GETs a Prometheus HTTP API path and decodes its data.
func (p *prom) api(path string, q url.Values, data any) error {
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %s: %s", path, q.Get("query"), env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates an instant query and returns its samples.
func (p *prom) query(expr string) ([]sample, error) {
	var d struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &d); err != nil {
		return nil, err
	}
	return d.Result, nil
}

// scalar evaluates expr, which must give one sample, as a float.
func (p *prom) scalar(expr string) (float64, bool) {
	s, err := p.query(expr)
	if err != nil || len(s) != 1 {
		return 0, false
	}
	var f float64
	str, _ := s[0].Value[1].(string)
	_, err = fmt.Sscan(str, &f)
	return f, err == nil
}

// firing returns the names of the alerts firing now.
func (p *prom) firing() []string {
	var d struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", nil, &d); err != nil {
		p.t.Fatal(err)
	}
	var names []string
	for _, a := range d.Alerts {
		if a.State == "firing" {
			names = append(names, a.Labels["alertname"])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestPrometheus runs Redis, an origin and the wazero harness while votes
// flow, scraped by a real Prometheus with the committed rules loaded. It
// checks the key series, that votes acknowledged at the edge equal votes
// counted at the origin, that every dashboard query parses, evaluates to
// data and names only exported metrics, that no alert fires on a healthy
// show, and that stopping Redis fires EdgepollRedisUnreachable. With
// OPS_SUMMARY set it writes the ops summary line there.
func TestPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus, Redis, the origin and the harness")
	}
	ruleCases := ruleTests(t)
	redis := redistest.Start(t)
	o := origintest.Start(t, redis.URL)
	h := harnesstest.Start(t, harnesstest.Options{Origin: o.URL, IngestKey: o.IngestKey.ID + "=" + string(o.IngestKey.Secret)})
	admin := adminclient.New(o.URL, o.AdminToken)
	harnesstest.OpenPoll(t, admin, "show", "yes", "no")
	const forShort = "3s"
	p := startPrometheus(t, o.URL, h.URL(), forShort)

	// Votes flow, with a repeat, a malformed vote and results reads.
	const voters = 120
	for i := range voters {
		harnesstest.Vote(t, h.URL(), "show", i%2)
		if i%10 == 0 {
			resp, err := http.Get(h.URL() + "/v1/polls/show/results")
			if err == nil {
				resp.Body.Close()
			}
		}
		if i == voters/2 {
			// A malformed vote (edge 400) and an unknown poll (origin 404).
			resp, err := http.Post(h.URL()+"/v1/polls/show/votes", "application/json", strings.NewReader(`{"choice":`))
			if err == nil {
				resp.Body.Close()
			}
			if resp, err = http.Get(o.URL + "/v1/polls/nope"); err == nil {
				resp.Body.Close()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	counted := func() bool {
		acked, ok1 := p.scalar(`sum(edgepoll_harness_votes_submitted_total)`)
		got, ok2 := p.scalar(`sum(edgepoll_origin_votes_accepted_total)`)
		return ok1 && ok2 && acked == voters && got == voters
	}
	p.waitFor("Prometheus sees every acknowledged vote counted", time.Minute, counted)
	// The rates agree too: over the same window, votes acknowledged at the
	// edge and counted at the origin are the same votes.
	p.waitFor("acknowledged and counted increases agree", 30*time.Second, func() bool {
		a, ok1 := p.scalar(`sum(max_over_time(edgepoll_harness_votes_submitted_total[5m]))`)
		c, ok2 := p.scalar(`sum(max_over_time(edgepoll_origin_votes_accepted_total[5m]))`)
		return ok1 && ok2 && a == c && a == voters
	})

	var names []string
	if err := p.api("/api/v1/label/__name__/values", nil, &names); err != nil {
		t.Fatal(err)
	}
	for _, s := range keySeries {
		if !slices.Contains(names, s) {
			t.Errorf("key series %s not in Prometheus", s)
		}
	}

	// Every dashboard query: parsed and evaluated by Prometheus, with data,
	// naming only metrics Prometheus has.
	missing := map[string]bool{}
	panels := ops.Panels()
	p.waitFor("rates have samples from every target", 30*time.Second, func() bool {
		n, ok := p.scalar(`min(count_over_time(up[5m]))`)
		return ok && n >= 3
	})
	for _, panel := range panels {
		for _, q := range panel.Queries {
			expr := strings.ReplaceAll(q.Expr, "$__rate_interval", "5m")
			for _, m := range ops.MetricNames(expr) {
				if !slices.Contains(names, m) {
					missing[m] = true
					t.Errorf("panel %q names %s, which no target exports", panel.Title, m)
				}
			}
			res, err := p.query(expr)
			if err != nil {
				t.Errorf("panel %q: %v", panel.Title, err)
			} else if len(res) == 0 {
				n, _ := p.query(`count_over_time(up[5m])`)
				t.Errorf("panel %q: %s gives no data after a run (scrapes per target: %v)", panel.Title, expr, n)
			}
		}
	}

	if f := p.firing(); len(f) > 0 {
		t.Errorf("alerts firing on a healthy show: %v", f)
	}

	// Redis goes away: EdgepollRedisUnreachable fires within its (cut) for
	// duration, a scrape and an evaluation.
	redis.Stop()
	var fired []string
	p.waitFor("EdgepollRedisUnreachable fires", 30*time.Second, func() bool {
		fired = p.firing()
		return slices.Contains(fired, "EdgepollRedisUnreachable")
	})
	// Its companion: the origin is not ready either.
	p.waitFor("EdgepollOriginNotReady fires", 30*time.Second, func() bool {
		fired = p.firing()
		return slices.Contains(fired, "EdgepollOriginNotReady")
	})
	redis.Restart(t)
	p.waitFor("the alerts resolve once Redis is back", time.Minute, func() bool {
		return !slices.Contains(p.firing(), "EdgepollRedisUnreachable")
	})

	line := fmt.Sprintf("ops rule_tests=%d alerts_fired=%d dashboard_panels=%d missing_metrics=%d",
		ruleCases, len(fired), len(panels), len(missing))
	t.Log(line, "fired:", fired)
	if out := os.Getenv("OPS_SUMMARY"); out != "" {
		if err := os.WriteFile(out, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
