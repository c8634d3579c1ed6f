// Package redistest starts real redis-server processes for tests: a single
// node with Start and a three-node Redis Cluster with StartCluster. Each
// server listens on a free 127.0.0.1 port, keeps nothing on disk and is
// stopped (by process group) when the test ends.
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
	"syscall"
	"testing"
	"time"
)

// installHint is the message a test fails with when Redis is not installed.
const installHint = "install redis-server and redis-tools (run make deps)"

// startTimeout bounds how long a server or cluster may take to come up.
const startTimeout = 20 * time.Second

// Server is a running single redis-server.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// URL is redis://Addr, ready for redisstore.Open or REDIS_URL.
	URL string

	cmd     *exec.Cmd
	logPath string
}

// Cluster is a running three-master Redis Cluster without replicas.
type Cluster struct {
	// Addrs are the host:port of each node.
	Addrs []string
	// URL is the comma-separated list of Addrs, the cluster form of REDIS_URL.
	URL string
	// Nodes are the cluster's servers, in the order of Addrs.
	Nodes []*Server
}

// Start starts a redis-server on a free loopback port and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	lookTools(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s, err := startServer(t, port)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// `redis-cli --cluster create` (three masters, no replicas) and waits until
// every node reports cluster_state:ok. The nodes stop when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	lookTools(t)
	c := &Cluster{}
	for i := 0; i < 3; i++ {
		var lastErr error
		var s *Server
		for attempt := 0; attempt < 5 && s == nil; attempt++ {
			port, err := freePort(true)
			if err != nil {
				t.Fatalf("redistest: %v", err)
			}
			s, lastErr = startServer(t, port, "--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf",
				"--cluster-node-timeout", "5000")
		}
		if s == nil {
			t.Fatalf("redistest: start cluster node: %v", lastErr)
		}
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	c.URL = strings.Join(c.Addrs, ",")

	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range c.Nodes {
		for {
			info, err := command(s.Addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %v: %v\n%s", s.Addr, startTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
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
		logPath: filepath.Join(dir, "redis.log"),
	}
	s.URL = "redis://" + s.Addr
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", s.logPath, "--daemonize", "no",
	}
	args = append(args, extra...)
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, installHint)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	stop := func() {
		if s.cmd.Process == nil {
			return
		}
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // let stop see it
			return nil, fmt.Errorf("redis-server on port %d exited: %v\n%s", port, err, s.logTail())
		default:
		}
		if reply, err := command(s.Addr, "PING"); err == nil && reply == "PONG" {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer PING within %v\n%s", port, startTimeout, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(stop)
	return s, nil
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

// command sends one command in RESP to addr and returns a simple or bulk
// string reply. It is just enough to probe a server without a client library.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}
