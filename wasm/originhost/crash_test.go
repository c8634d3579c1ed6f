//go:build linux

package originhost_test

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/internal/syncbuf"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
	"github.com/edgepoll/edgepoll/wasm/internal/wasmtest"
)

const crashTokenSecret = "crash-token-secret-0123456789abcdef0123456789"

// harnessProc is a running harness binary (wasm/cmd/harness) in its own
// process group.
type harnessProc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncbuf.Buffer
	done chan struct{}
}

// crashRig holds what the harness processes of one test share.
type crashRig struct {
	t      *testing.T
	bin    string // harness binary
	module string // guest module file
	spool  string
	cache  string // wazero compilation cache, shared by restarts
	origin *origintest.Origin
	client *http.Client
	logs   []*syncbuf.Buffer
}

func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: apt-get install redis-server (or run make deps)")
	}
	dir := t.TempDir()
	r := &crashRig{t: t, bin: filepath.Join(dir, "harness"), module: filepath.Join(dir, "edge.wasm"),
		spool: filepath.Join(dir, "spool"), cache: filepath.Join(dir, "cache"),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	build := exec.Command("go", "build", "-o", r.bin, "github.com/edgepoll/edgepoll/wasm/cmd/harness")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build harness: %v\n%s", err, out)
	}
	if err := os.WriteFile(r.module, wasmtest.Build(t, wasmtest.EdgeGuest, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t)
	r.origin = origintest.Start(t, rs.URL)
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range r.logs {
				t.Logf("harness run %d log tail:\n%s", i+1, l.Tail(6000))
			}
		}
	})
	return r
}

// start runs the harness binary on the rig's spool (with extra flags) and
// waits for /healthz.
func (r *crashRig) start(extra ...string) *harnessProc {
	t := r.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &harnessProc{url: "http://" + addr, logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	r.logs = append(r.logs, p.logs)
	args := append([]string{"-listen", addr, "-module", r.module, "-spool", r.spool, "-instances", "8", "-shutdown-timeout", "20s"}, extra...)
	p.cmd = exec.Command(r.bin, args...)
	p.cmd.Env = append(os.Environ(),
		"ORIGIN_URL="+r.origin.URL,
		"INGEST_KEY="+r.origin.IngestKey.ID+"="+string(r.origin.IngestKey.Secret),
		"TOKEN_SECRET="+crashTokenSecret, "EDGE_ID=crash",
		"RATE_IP_VOTES=off", "RATE_IP_TOKENS=off", "RATE_VOTER=off", "COOKIE_SECURE=false",
		"XDG_CACHE_HOME="+r.cache,
	)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("harness exited during start-up: %v", p.cmd.ProcessState)
		default:
		}
		if resp, err := r.client.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("harness did not answer /healthz")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the harness's process group and waits for it.
func (p *harnessProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// metric reads one value from the harness's /metrics.
func (r *crashRig) metric(p *harnessProc, name string) uint64 {
	r.t.Helper()
	resp, err := r.client.Get(p.url + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64) // the text format may write 1e+06
			if err != nil {
				r.t.Fatalf("metric %s: %v", name, err)
			}
			return uint64(v)
		}
	}
	r.t.Fatalf("metric %s missing", name)
	return 0
}

func (r *crashRig) admin(method, path, body string) []byte {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.origin.URL+"/v1/admin/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.origin.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		r.t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

// outcome is what a voter was told.
type outcome int

const (
	acked   outcome = iota + 1 // 202
	refused                    // 503
	unknown                    // no answer: the harness died mid-request
)

type ballot struct {
	choice  int
	outcome outcome
}

// crashLoad is many concurrent voters, each with its own token, voting
// once each through whichever harness is current.
type crashLoad struct {
	r       *crashRig
	poll    string
	url     atomic.Value // string
	mu      sync.Mutex
	ballots map[shared.VoterID]ballot
	counts  [4]atomic.Int64 // by outcome
	bad     []string
	stop    chan struct{}
	wg      sync.WaitGroup
}

func (l *crashLoad) count(o outcome) int64 { return l.counts[o].Load() }

// run starts n voters against p until halt.
func (l *crashLoad) run(p *harnessProc, n int) {
	l.url.Store(p.url)
	l.stop = make(chan struct{})
	for w := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.vote((w + i) % 3)
			}
		}()
	}
}

func (l *crashLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

func (l *crashLoad) vote(choice int) {
	var voter shared.VoterID
	rand.Read(voter[:])
	tok := token.Issue([]byte(crashTokenSecret), l.poll, voter)
	body := fmt.Sprintf(`{"token":%q,"choice":%d}`, tok, choice)
	o := unknown
	resp, err := l.r.client.Post(l.url.Load().(string)+"/v1/polls/"+l.poll+"/votes", "application/json", strings.NewReader(body))
	if err == nil {
		rb, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
		case resp.StatusCode == http.StatusAccepted:
			var a struct{ Receipt string }
			if json.Unmarshal(rb, &a) != nil || a.Receipt != voter.String() {
				l.fail("202 with receipt %q for voter %s: %s", a.Receipt, voter, rb)
			}
			o = acked
		case resp.StatusCode == http.StatusServiceUnavailable:
			o = refused
		default:
			l.fail("vote answered %d: %s", resp.StatusCode, rb)
		}
	}
	l.counts[o].Add(1)
	l.mu.Lock()
	l.ballots[voter] = ballot{choice: choice, outcome: o}
	l.mu.Unlock()
}

func (l *crashLoad) fail(format string, args ...any) {
	l.mu.Lock()
	l.bad = append(l.bad, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// waitFor waits until cond holds (failing after a generous deadline).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid: writes past
// it fail with EFBIG (Go ignores SIGXFSZ), a real I/O error for the spool.
func setFileSizeLimit(t *testing.T, pid int, soft uint64) {
	t.Helper()
	var old syscall.Rlimit
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&old)), 0, 0); e != 0 {
		t.Fatalf("prlimit get: %v", e)
	}
	lim := syscall.Rlimit{Cur: min(soft, old.Max), Max: old.Max}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		t.Fatalf("prlimit set: %v", e)
	}
}

// TestKill9Harness: under load from many concurrent voters, the harness
// binary is killed with SIGKILL twice (once with the origin down and votes
// piled up in the spool, once with deliveries in flight) and restarted on
// the same spool; for a while its spool cannot be written (a file size
// limit makes every write fail), so some voters are answered 503. In the
// end every vote answered 202 is in the origin's ledger exactly once, its
// receipt being the voter id, no vote answered 503 is, and the results
// agree with the ledger. A last SIGTERM leaves the spool empty.
func TestKill9Harness(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server, origin and harness processes; skipped with -short")
	}
	r := newCrashRig(t)
	const poll = "crash"
	r.admin("POST", "polls", `{"id":"crash","title":"kill -9","options":[{"label":"a"},{"label":"b"},{"label":"c"}],"kind":"single","visibility":"live"}`)
	r.admin("POST", "polls/"+poll+"/open", "")
	l := &crashLoad{r: r, poll: poll, ballots: map[shared.VoterID]ballot{}}
	const voters = 32
	more := func(o outcome, n int64, what string) {
		t.Helper()
		target := l.count(o) + n
		waitFor(t, what, func() bool { return l.count(o) >= target })
	}

	// 1. Votes flow; then, for a while, every write to the spool fails:
	// those voters are answered 503; then writes work again.
	h1 := r.start()
	l.run(h1, voters)
	more(acked, 300, "votes acknowledged")
	setFileSizeLimit(t, h1.cmd.Process.Pid, 0)
	more(refused, 50, "votes refused while the spool cannot be written")
	setFileSizeLimit(t, h1.cmd.Process.Pid, ^uint64(0))
	more(acked, 300, "votes acknowledged once the spool can be written again")
	if n := r.metric(h1, "edgepoll_harness_spool_errors_total"); n == 0 {
		t.Fatal("503s without spool errors: the fault was not the spool's")
	}

	// 2. The origin goes away: votes are still acknowledged (spooled), and
	// pile up undelivered; then kill -9 of the harness, mid-load.
	r.origin.Stop()
	more(acked, 300, "votes acknowledged with the origin down")
	if n := r.metric(h1, "edgepoll_harness_queue_votes"); n == 0 {
		t.Fatal("origin down, yet no vote waiting in the spool")
	}
	h1.kill()
	l.halt()

	// 3. Origin back, harness restarted on the same spool: it delivers what
	// the dead one left; under load it is killed again, deliveries in flight.
	r.origin.Restart()
	h2 := r.start()
	if n := r.metric(h2, "edgepoll_harness_spool_recovered_votes"); n == 0 {
		t.Fatal("restart found no votes in the spool")
	}
	l.run(h2, voters)
	more(acked, 1000, "votes acknowledged after the restart")
	h2.kill()
	l.halt()

	// 4. A last start delivers the rest; SIGTERM stops it cleanly.
	h3 := r.start()
	waitFor(t, "the spool to be delivered", func() bool { return r.metric(h3, "edgepoll_harness_queue_votes") == 0 })
	syscall.Kill(-h3.cmd.Process.Pid, syscall.SIGTERM)
	<-h3.done
	if code := h3.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("harness exit code after SIGTERM: %d", code)
	}
	if m, _ := filepath.Glob(filepath.Join(r.spool, "seg-*")); len(m) != 0 {
		t.Fatalf("spool not empty after a full delivery and SIGTERM: %v", m)
	}
	if len(l.bad) > 0 {
		t.Fatalf("%d bad answers, first: %s", len(l.bad), l.bad[0])
	}

	// 5. The ledger: every 202 exactly once, no 503, nothing unknown to us.
	ledger := map[string]int{}
	perChoice := map[int]int{}
	lines := strings.Split(strings.TrimSuffix(string(r.admin("GET", "polls/"+poll+"/export?data=ledger&format=csv", "")), "\n"), "\n")
	if lines[0] != "voter_key,choices,batch" {
		t.Fatalf("ledger header %q", lines[0])
	}
	for _, line := range lines[1:] {
		k, c, ok := strings.Cut(line, ",")
		c, _, _ = strings.Cut(c, ",") // the batch id follows
		n, err := strconv.Atoi(c)
		if !ok || err != nil {
			t.Fatalf("ledger line %q", line)
		}
		ledger[k]++
		perChoice[n]++
	}
	byKey := map[string]ballot{}
	for v, b := range l.ballots {
		byKey[v.String()[:16]] = b
	}
	var n202, n503, nUnknown int
	for v, b := range l.ballots {
		k := v.String()[:16]
		switch b.outcome {
		case acked:
			n202++
			if ledger[k] != 1 {
				t.Errorf("voter %s was answered 202 and is in the ledger %d times", v, ledger[k])
			}
		case refused:
			n503++
			if ledger[k] != 0 {
				t.Errorf("voter %s was answered 503 and is in the ledger", v)
			}
		default:
			nUnknown++
		}
	}
	for k, n := range ledger {
		if n != 1 {
			t.Errorf("voter key %s is in the ledger %d times", k, n)
		}
		if _, ok := byKey[k]; !ok {
			t.Errorf("voter key %s in the ledger never voted", k)
		}
	}
	var res struct {
		Counts []int `json:"counts"`
		Voters int   `json:"voters"`
	}
	if err := json.Unmarshal(r.admin("GET", "polls/"+poll+"/results", ""), &res); err != nil {
		t.Fatal(err)
	}
	if res.Voters != len(ledger) || len(res.Counts) != 3 || res.Counts[0] != perChoice[0] || res.Counts[1] != perChoice[1] || res.Counts[2] != perChoice[2] {
		t.Errorf("results %+v disagree with the ledger (%d ballots, by choice %v)", res, len(ledger), perChoice)
	}
	t.Logf("%d voters: %d answered 202, %d answered 503, %d unanswered (harness killed mid-request); %d counted", len(l.ballots), n202, n503, nUnknown, len(ledger))
}

// TestSIGTERMLeavesSpool: SIGTERM with the origin down stops the harness
// within -shutdown-timeout (exit 0), the acknowledged votes stay in the
// spool, and the next start delivers every one of them.
func TestSIGTERMLeavesSpool(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real redis-server, origin and harness processes; skipped with -short")
	}
	r := newCrashRig(t)
	const poll = "term"
	r.admin("POST", "polls", `{"id":"term","title":"SIGTERM","options":[{"label":"a"},{"label":"b"},{"label":"c"}],"kind":"single","visibility":"live"}`)
	r.admin("POST", "polls/"+poll+"/open", "")
	l := &crashLoad{r: r, poll: poll, ballots: map[shared.VoterID]ballot{}}
	h1 := r.start("-shutdown-timeout", "1s")
	l.run(h1, 1) // warm the poll config
	waitFor(t, "a vote", func() bool { return l.count(acked) > 0 })
	l.halt()
	r.origin.Stop()
	l.run(h1, 16)
	target := l.count(acked) + 200
	waitFor(t, "votes acknowledged with the origin down", func() bool { return l.count(acked) >= target })
	l.halt()
	syscall.Kill(-h1.cmd.Process.Pid, syscall.SIGTERM)
	<-h1.done
	if code := h1.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGTERM: %d", code)
	}
	if !strings.Contains(h1.logs.String(), "votes left in the spool") {
		t.Fatalf("shutdown did not report the votes it left in the spool")
	}
	if m, _ := filepath.Glob(filepath.Join(r.spool, "seg-*.log")); len(m) == 0 {
		t.Fatal("no spool segment left after a shutdown that could not deliver")
	}

	r.origin.Restart()
	h2 := r.start()
	waitFor(t, "the spool to be delivered", func() bool { return r.metric(h2, "edgepoll_harness_queue_votes") == 0 })
	if n := r.metric(h2, "edgepoll_harness_spool_recovered_votes"); n == 0 {
		t.Fatal("the restart recovered nothing")
	}
	var res struct {
		Voters int `json:"voters"`
	}
	json.Unmarshal(r.admin("GET", "polls/"+poll+"/results", ""), &res)
	if res.Voters != int(l.count(acked)) || l.count(unknown) != 0 || len(l.bad) != 0 {
		t.Fatalf("%d voters counted; %d answered 202, %d unanswered, bad answers %v", res.Voters, l.count(acked), l.count(unknown), l.bad)
	}
}
