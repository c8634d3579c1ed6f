// Package redistest starts real redis-server processes for tests: a single
// node with Start or StartWith, a replica of it with StartReplica, and a
// Redis Cluster (three primaries, optionally with replicas) with
// StartCluster or StartClusterWith. Each server listens on a free 127.0.0.1
// port, keeps its data (append-only file, cluster config) in a temporary
// directory of the test and is stopped (by process group) when the test
// ends. A server can be killed (SIGKILL) and restarted from its data to
// test crashes.
//
// By default servers run with appendonly yes and appendfsync always, the
// durability the origin promises by default (its -durability fsync); use
// Options.Persistence for another policy.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// installHint is the message a test fails with when Redis is not installed.
const installHint = "install it with `apt-get install redis-server redis-tools` (or run make deps)"

// startTimeout bounds how long a server or cluster may take to come up.
const startTimeout = 20 * time.Second

// Persistence is a server's persistence policy.
type Persistence int

const (
	// AOFAlways is appendonly yes with appendfsync always (the default):
	// every write is on disk before Redis answers it.
	AOFAlways Persistence = iota
	// AOFEverysec is appendonly yes with appendfsync everysec.
	AOFEverysec
	// NoPersistence is appendonly no and no RDB snapshots: a crash loses everything.
	NoPersistence
)

func (p Persistence) args() []string {
	switch p {
	case AOFEverysec:
		return []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	case NoPersistence:
		return []string{"--appendonly", "no"}
	default:
		return []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
}

// Options configure a server started with StartWith or StartReplica.
type Options struct {
	// Persistence is the server's persistence policy; the zero value is AOFAlways.
	Persistence Persistence
	// Args are extra redis-server arguments, e.g. "--maxmemory", "100mb".
	// They come last, so they override the ones above.
	Args []string
}

// Server is a running redis-server.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// URL is redis://Addr, ready for redisstore.Open or REDIS_URL.
	URL string
	// Dir is the server's data directory (append-only file, cluster config).
	Dir string

	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Cluster is a running Redis Cluster of three primaries, each with
// ClusterOptions.Replicas replicas.
type Cluster struct {
	// Addrs are the host:port of each node.
	Addrs []string
	// URL is the comma-separated list of Addrs, the cluster form of REDIS_URL.
	URL string
	// Nodes are the cluster's servers, in the order of Addrs. Which of them
	// are primaries changes with failovers; see PrimaryFor.
	Nodes []*Server
}

// ClusterOptions configure a cluster started with StartClusterWith.
type ClusterOptions struct {
	// Replicas is the number of replicas of each of the three primaries.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a primary may be
	// unreachable before its replica takes over. Zero means 5s.
	NodeTimeout time.Duration
	// Persistence is every node's persistence policy; the zero value is AOFAlways.
	Persistence Persistence
}

// Start starts a redis-server (appendonly yes, appendfsync always) on a
// free loopback port and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a redis-server configured by opts on a free loopback
// port and stops it when t ends.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	lookTools(t)
	args := append(opts.Persistence.args(), opts.Args...)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s, err := startServer(t, port, args...)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// StartReplica starts a redis-server that replicates primary (--replicaof)
// and waits until it is in sync (see WaitInSync). It stops when t ends.
func StartReplica(t testing.TB, primary *Server, opts Options) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(primary.Addr)
	opts.Args = append([]string{"--replicaof", host, port}, opts.Args...)
	s := StartWith(t, opts)
	s.WaitInSync(t, primary)
	return s
}

// WaitInSync waits until s, a replica of primary, has its replication link
// up, primary lists it as online, and a write on primary reaches it (WAIT):
// right after a full sync a primary streams to its replica only once the
// replica's first acknowledgement arrives, up to a second later.
func (s *Server) WaitInSync(t testing.TB, primary *Server) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := s.Info("replication")
		if err == nil && info["master_link_status"] == "up" {
			if n, err := OnlineReplicas(primary); err == nil && n > 0 {
				reply, err := pipeline(primary.Addr, []string{"SET", "redistest:probe", "1"}, []string{"DEL", "redistest:probe"}, []string{"WAIT", "1", "100"})
				if n, _ := strconv.Atoi(reply); err == nil && n > 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: replica %s of %s not in sync after %v: %v %v\n%s", s.Addr, primary.Addr, startTimeout, info, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OnlineReplicas returns how many replicas s lists as online.
func OnlineReplicas(s *Server) (int, error) {
	info, err := s.Info("replication")
	if err != nil {
		return 0, err
	}
	n := 0
	for k, v := range info {
		if strings.HasPrefix(k, "slave") && strings.Contains(v, "state=online") {
			n++
		}
	}
	return n, nil
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// `redis-cli --cluster create` (three primaries, no replicas) and waits until
// every node reports cluster_state:ok. The nodes stop when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith starts a cluster of three primaries with opts.Replicas
// replicas each and waits until every node reports cluster_state:ok, every
// replica's link to its primary is up and every primary lists its replicas
// as online. The nodes stop when t ends.
func StartClusterWith(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	lookTools(t)
	timeout := opts.NodeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	c := &Cluster{}
	nodes := 3 * (1 + opts.Replicas)
	for i := 0; i < nodes; i++ {
		var lastErr error
		var s *Server
		for attempt := 0; attempt < 5 && s == nil; attempt++ {
			port, err := freePort(true)
			if err != nil {
				t.Fatalf("redistest: %v", err)
			}
			args := append(opts.Persistence.args(), "--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf",
				"--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
			s, lastErr = startServer(t, port, args...)
		}
		if s == nil {
			t.Fatalf("redistest: start cluster node: %v", lastErr)
		}
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	c.URL = strings.Join(c.Addrs, ",")

	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range c.Nodes {
		for {
			err := nodeReady(s, nodes, opts.Replicas)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ready after %v: %v", s.Addr, startTimeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// nodeReady reports why a cluster node is not ready yet, or nil.
func nodeReady(s *Server, nodes, replicas int) error {
	info, err := s.Do("CLUSTER", "INFO")
	if err != nil {
		return err
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_known_nodes:" + strconv.Itoa(nodes)} {
		if !strings.Contains(info, want) {
			return fmt.Errorf("CLUSTER INFO lacks %s:\n%s", want, info)
		}
	}
	repl, err := s.Info("replication")
	if err != nil {
		return err
	}
	switch repl["role"] {
	case "master":
		if n, err := OnlineReplicas(s); err != nil || n < replicas {
			return fmt.Errorf("primary has %d online replicas, want %d (%v)", n, replicas, err)
		}
	case "slave":
		if repl["master_link_status"] != "up" {
			return fmt.Errorf("replica link is %q", repl["master_link_status"])
		}
	default:
		return fmt.Errorf("role %q", repl["role"])
	}
	return nil
}

// Node returns the cluster's server listening on addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// PrimaryFor returns the node that serves key's hash slot now and one of
// its online replicas (nil if it has none at the moment); primary is nil
// while no running node claims the slot (a primary has just died). It is
// the running node that says of itself (CLUSTER NODES, "myself") that it
// is a primary owning the slot, with the highest config epoch if two do
// (an old primary back from a crash may not know yet that it lost the
// slot); its replicas are the ones its INFO replication lists as online.
func (c *Cluster) PrimaryFor(t testing.TB, key string) (primary, replica *Server) {
	t.Helper()
	slot := -1
	var lastErr error
	bestEpoch := int64(-1)
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		if slot < 0 {
			reply, err := s.Do("CLUSTER", "KEYSLOT", key)
			if err != nil {
				lastErr = err
				continue
			}
			if slot, err = strconv.Atoi(reply); err != nil {
				t.Fatalf("redistest: CLUSTER KEYSLOT %s: %q", key, reply)
			}
		}
		nodes, err := s.Do("CLUSTER", "NODES")
		if err != nil {
			lastErr = err
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(l)
			if len(f) < 8 || !strings.Contains(f[2], "myself") || !strings.Contains(f[2], "master") {
				continue
			}
			epoch, _ := strconv.ParseInt(f[6], 10, 64)
			if ownsSlot(f[8:], slot) && epoch > bestEpoch {
				primary, bestEpoch = s, epoch
			}
		}
	}
	if primary == nil {
		if slot < 0 {
			t.Fatalf("redistest: no node answers CLUSTER KEYSLOT %s: %v", key, lastErr)
		}
		return nil, nil
	}
	info, err := primary.Info("replication")
	if err != nil {
		return primary, nil
	}
	for k, v := range info {
		if !strings.HasPrefix(k, "slave") || !strings.Contains(v, "state=online") {
			continue
		}
		var ip, port string
		for _, kv := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(kv, "=")
			switch name {
			case "ip":
				ip = val
			case "port":
				port = val
			}
		}
		if r := c.Node(net.JoinHostPort(ip, port)); r != nil {
			return primary, r
		}
	}
	return primary, nil
}

// ownsSlot reports whether the slot ranges of a CLUSTER NODES line
// ("0-5460", "5461", "[...]" for migrations) contain slot.
func ownsSlot(ranges []string, slot int) bool {
	for _, r := range ranges {
		lo, hi, ok := strings.Cut(r, "-")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && a <= slot && slot <= b {
			return true
		}
	}
	return false
}

// WaitPrimary waits until key's slot is served by a running primary other
// than old (after a failover of old) that has at least replicas online
// replicas, and every running node reports cluster_state:ok. It returns
// the new primary and one of its replicas.
func (c *Cluster) WaitPrimary(t testing.TB, key string, old *Server, replicas int) (primary, replica *Server) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		primary, replica = c.PrimaryFor(t, key)
		if primary != nil && primary != old && (replicas == 0 || replica != nil) {
			if n, err := OnlineReplicas(primary); err == nil && n >= replicas {
				c.WaitClusterOK(t)
				return primary, replica
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no new primary for %s after %v (now %v)", key, startTimeout, primary)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitClusterOK waits until every running node of c reports
// cluster_state:ok, for instance after a failover.
func (c *Cluster) WaitClusterOK(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %v: %v\n%s", s.Addr, startTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func lookTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("redistest: %s not found: %s", tool, installHint)
		}
	}
}

// startServer starts redis-server on port with extra arguments and waits
// until it answers PING. It registers the stop with t.Cleanup.
func startServer(t testing.TB, port int, extra ...string) (*Server, error) {
	dir := t.TempDir()
	s := &Server{
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:     dir,
		logPath: filepath.Join(dir, "redis.log"),
	}
	s.URL = "redis://" + s.Addr
	s.args = []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", s.logPath, "--daemonize", "no",
		// A replica syncs at once, not after the default 5 s wait for others.
		"--repl-diskless-sync-delay", "0",
	}
	s.args = append(s.args, extra...)
	if err := s.launch(); err != nil {
		return nil, err
	}
	t.Cleanup(s.Stop)
	return s, nil
}

// launch runs the server process and waits until it answers PING (which
// it does only once it has loaded its data).
func (s *Server) launch() error {
	cmd := exec.Command("redis-server", s.args...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%v: %s", err, installHint)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited: %v\n%s", s.Addr, cmd.ProcessState, s.logTail())
		default:
		}
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on %s did not answer PING within %v\n%s", s.Addr, startTimeout, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the server's process group and waits up to wait for
// it to exit; it reports whether it did.
func (s *Server) signal(sig syscall.Signal, wait time.Duration) bool {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return true
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-exited:
		return true
	case <-time.After(wait):
		return false
	}
}

// Stop stops the server with SIGTERM (SIGKILL after 5 s) and waits for it.
// It is safe to call more than once.
func (s *Server) Stop() {
	// Redis refuses a shutdown while it writes its first append-only file
	// (after a full sync, say): ask again until it has.
	for i := 0; i < 50; i++ {
		if s.signal(syscall.SIGTERM, 100*time.Millisecond) {
			return
		}
	}
	s.signal(syscall.SIGKILL, time.Minute)
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it to
// exit. Whatever Redis had not written to its append-only file is lost.
func (s *Server) Kill() { s.signal(syscall.SIGKILL, time.Minute) }

// Restart starts a stopped or killed server again on the same port with
// the same arguments and data directory, and waits until it has loaded its
// data and answers PING.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.Running() {
		t.Fatalf("redistest: restart %s: still running", s.Addr)
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger for a moment
	}
	t.Fatalf("redistest: restart %s: %v", s.Addr, err)
}

// Do sends one command to the server and returns its reply: a simple or
// bulk string, an integer in decimal, or an array's elements one per line.
// A Redis error reply is returned as an error.
func (s *Server) Do(args ...string) (string, error) { return command(s.Addr, args...) }

// Info returns the fields of INFO section as a map.
func (s *Server) Info(section string) (map[string]string, error) {
	out, err := s.Do("INFO", section)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// logTail returns the end of the server's log file, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freePort returns a loopback TCP port that is free now. For cluster nodes
// the bus port (port+10000) must be free too.
func freePort(cluster bool) (int, error) {
	for i := 0; i < 100; i++ {
		port := 0
		if cluster {
			port = 20000 + rand.IntN(25000)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		port = l.Addr().(*net.TCPAddr).Port
		if cluster {
			bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
			if err != nil {
				l.Close()
				continue
			}
			bus.Close()
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port found")
}

// command sends one command in RESP to addr and returns its reply (see
// Server.Do). It is just enough to probe a server without a client library.
func command(addr string, args ...string) (string, error) { return pipeline(addr, args) }

// pipeline sends commands on one connection to addr and returns the last
// reply, or the first error.
func pipeline(addr string, cmds ...[]string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	var reply string
	for range cmds {
		if reply, err = readReply(r); err != nil {
			return "", err
		}
	}
	return reply, nil
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("bad array reply %q", line)
		}
		var elems []string
		var firstErr error
		for i := 0; i < n; i++ {
			e, err := readReply(r)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			elems = append(elems, e)
		}
		return strings.Join(elems, "\n"), firstErr
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}
