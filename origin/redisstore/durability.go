package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/redis/go-redis/v9"
)

// DurabilityMode says when Apply may return a receipt: what a crash of
// Redis can no longer take away from an acknowledged batch.
type DurabilityMode string

// Durability modes.
const (
	// DurabilityNone acknowledges a batch once Redis has applied it in
	// memory: a crash of Redis loses what it had not persisted by itself.
	DurabilityNone DurabilityMode = "none"
	// DurabilityFsync needs Redis to run with appendonly yes and
	// appendfsync always, so a batch is in the append-only file, fsynced,
	// before Redis answers the apply script.
	DurabilityFsync DurabilityMode = "fsync"
	// DurabilityReplica acknowledges a batch only once WAIT says enough
	// replicas of the primary that applied it have it.
	DurabilityReplica DurabilityMode = "replica"
)

// DurabilityModes lists the modes, for usage messages.
var DurabilityModes = []DurabilityMode{DurabilityNone, DurabilityFsync, DurabilityReplica}

// ParseDurabilityMode returns the mode named s, or EINVALID.
func ParseDurabilityMode(s string) (DurabilityMode, error) {
	for _, m := range DurabilityModes {
		if string(m) == s {
			return m, nil
		}
	}
	return "", shared.Errorf(shared.EINVALID, "durability %q: want none, fsync or replica", s)
}

// Replica-mode limits.
const (
	// DefaultReplicaTimeout is how long a batch waits for its replicas by default.
	DefaultReplicaTimeout = 500 * time.Millisecond
	// MaxReplicaTimeout bounds ReplicaTimeout, below the client's read timeout.
	MaxReplicaTimeout = 2 * time.Second
	// MaxReplicas bounds Durability.Replicas.
	MaxReplicas = 16
)

// durabilityCacheFor is how long a durability check result is reused.
const durabilityCacheFor = time.Second

// Durability is the promise the store keeps before Apply returns a receipt.
type Durability struct {
	// Mode is the kind of promise; empty means DurabilityNone.
	Mode DurabilityMode
	// Trust skips the CONFIG GET check of fsync mode, for a managed Redis
	// that refuses CONFIG but is known to run with appendonly yes and
	// appendfsync always.
	Trust bool
	// Replicas is how many replicas must have a batch in replica mode (≥ 1).
	Replicas int
	// ReplicaTimeout is how long a batch waits for them (WAIT's timeout);
	// zero means DefaultReplicaTimeout.
	ReplicaTimeout time.Duration
}

// ErrNotDurable is in the chain of errors that say Redis cannot keep the
// promised durability (as opposed to being unreachable).
var ErrNotDurable = errors.New("the promised durability is not in force")

// notDurable returns an EUNAVAILABLE error wrapping ErrNotDurable; its
// message, safe to show, says what Redis reported.
func notDurable(format string, args ...any) error {
	return &shared.Error{Code: shared.EUNAVAILABLE, Message: fmt.Sprintf(format, args...), Err: ErrNotDurable}
}

// durabilityState is the store's promise and its last check.
type durabilityState struct {
	d          Durability
	checkMu    sync.Mutex // one check at a time
	last       atomic.Pointer[checkResult]
	refreshing atomic.Bool
	shortfalls atomic.Uint64

	nodesMu sync.Mutex
	nodes   map[string]*redis.Client // Cluster node address → client, for the checks
}

type checkResult struct {
	at  time.Time
	err error
}

// SetDurability checks that Redis can keep the promise d now and makes
// Apply keep it from then on. Call it once, before the store serves. It
// returns EINVALID for a malformed d, an error wrapping ErrNotDurable
// (EUNAVAILABLE) when Redis does not give the durability d asks for, with
// a message naming the setting and what Redis says, and EUNAVAILABLE when
// Redis cannot be asked.
func (s *Store) SetDurability(ctx context.Context, d Durability) error {
	if d.Mode == "" {
		d.Mode = DurabilityNone
	}
	if _, err := ParseDurabilityMode(string(d.Mode)); err != nil {
		return err
	}
	if d.Mode == DurabilityReplica {
		if d.ReplicaTimeout == 0 {
			d.ReplicaTimeout = DefaultReplicaTimeout
		}
		if d.Replicas < 1 || d.Replicas > MaxReplicas {
			return shared.Errorf(shared.EINVALID, "durability replica: replicas must be 1..%d, not %d", MaxReplicas, d.Replicas)
		}
		if d.ReplicaTimeout < time.Millisecond || d.ReplicaTimeout > MaxReplicaTimeout {
			return shared.Errorf(shared.EINVALID, "durability replica: replica timeout must be 1ms..%v, not %v", MaxReplicaTimeout, d.ReplicaTimeout)
		}
	}
	s.dur.d = d
	s.dur.last.Store(nil)
	return s.CheckDurability(ctx)
}

// Durability returns the promise in force.
func (s *Store) Durability() Durability {
	d := s.dur.d
	if d.Mode == "" {
		d.Mode = DurabilityNone
	}
	return d
}

// DurabilityMode returns the name of the mode in force: none, fsync or replica.
func (s *Store) DurabilityMode() string { return string(s.Durability().Mode) }

// WaitShortfalls returns how many applies in replica mode were refused
// because fewer replicas than promised acknowledged them in time.
func (s *Store) WaitShortfalls() uint64 { return s.dur.shortfalls.Load() }

// CheckDurability returns nil while Redis keeps the promised durability:
// in fsync mode every node has appendonly yes and appendfsync always (not
// checked with Trust); in replica mode every primary has at least the
// promised number of replicas online. The result is reused for a second,
// so calling it on every readiness probe is cheap. Errors are as for
// SetDurability.
func (s *Store) CheckDurability(ctx context.Context) error {
	if r := s.dur.last.Load(); r != nil && time.Since(r.at) < durabilityCacheFor {
		return r.err
	}
	s.dur.checkMu.Lock()
	defer s.dur.checkMu.Unlock()
	if r := s.dur.last.Load(); r != nil && time.Since(r.at) < durabilityCacheFor {
		return r.err
	}
	err := s.checkDurability(ctx)
	s.dur.last.Store(&checkResult{at: time.Now(), err: err})
	return err
}

// durable is Apply's guard in fsync mode: the last check's verdict, with a
// new check started in the background when it is older than a second. Only
// a verdict that Redis does not keep the promise refuses the batch; an
// unreachable Redis is Apply's own business.
func (s *Store) durable() error {
	r := s.dur.last.Load()
	if r == nil || time.Since(r.at) >= durabilityCacheFor {
		if s.dur.refreshing.CompareAndSwap(false, true) {
			go func() {
				defer s.dur.refreshing.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = s.CheckDurability(ctx)
			}()
		}
	}
	if r != nil && errors.Is(r.err, ErrNotDurable) {
		return r.err
	}
	return nil
}

func (s *Store) checkDurability(ctx context.Context) error {
	d := s.Durability()
	switch {
	case d.Mode == DurabilityFsync && !d.Trust:
		return s.forEachNode(ctx, false, checkFsync)
	case d.Mode == DurabilityReplica:
		return s.forEachNode(ctx, true, func(ctx context.Context, c *redis.Client) error {
			return checkReplicas(ctx, c, d.Replicas)
		})
	}
	return nil
}

// forEachNode runs fn on the single node, or on every serving node of the
// Cluster (only the primaries when primaries is set), and returns the error
// of the first node in address order that fails, so messages are stable.
// Cluster nodes come from CLUSTER NODES, not from the client's slot map:
// CLUSTER SLOTS leaves out replicas that have not replicated anything yet.
func (s *Store) forEachNode(ctx context.Context, primaries bool, fn func(context.Context, *redis.Client) error) error {
	if s.cluster == nil {
		return fn(ctx, s.single)
	}
	addrs, err := s.clusterNodes(ctx, primaries)
	if err != nil {
		return err
	}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { errs[i] = fn(ctx, s.nodeClient(a)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clusterNodes returns the sorted addresses of the Cluster's serving nodes
// (primaries owning slots and their replicas, or only the primaries), as
// CLUSTER NODES says. Nodes flagged fail, noaddr or handshake are left out:
// they serve nothing now and are checked again when they are back.
func (s *Store) clusterNodes(ctx context.Context, primaries bool) ([]string, error) {
	out, err := s.cluster.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, unavailable(err, "durability check: CLUSTER NODES")
	}
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || strings.Contains(f[2], "fail") || strings.Contains(f[2], "noaddr") || strings.Contains(f[2], "handshake") {
			continue
		}
		master := strings.Contains(f[2], "master")
		if master && len(f) == 8 {
			continue // a primary without slots serves nothing
		}
		if primaries && !master {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",") // 7.0 may add ",hostname"
		addrs = append(addrs, addr)
	}
	if len(addrs) == 0 {
		return nil, shared.Errorf(shared.EUNAVAILABLE, "durability check: CLUSTER NODES lists no serving node")
	}
	sort.Strings(addrs)
	return addrs, nil
}

// nodeClient returns a small client of one Cluster node for the durability
// checks, made with the Cluster's credentials and TLS settings and kept
// until Close.
func (s *Store) nodeClient(addr string) *redis.Client {
	s.dur.nodesMu.Lock()
	defer s.dur.nodesMu.Unlock()
	if c := s.dur.nodes[addr]; c != nil {
		return c
	}
	o := s.cluster.Options()
	c := redis.NewClient(&redis.Options{
		Addr: addr, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolSize: 2, MaintNotificationsConfig: o.MaintNotificationsConfig,
	})
	if s.dur.nodes == nil {
		s.dur.nodes = map[string]*redis.Client{}
	}
	if len(s.dur.nodes) >= 1000 {
		for a, old := range s.dur.nodes { // bound the map; clients are re-made on demand
			old.Close()
			delete(s.dur.nodes, a)
		}
	}
	s.dur.nodes[addr] = c
	return c
}

// closeNodes closes the clients made by nodeClient.
func (s *Store) closeNodes() {
	s.dur.nodesMu.Lock()
	defer s.dur.nodesMu.Unlock()
	for a, c := range s.dur.nodes {
		c.Close()
		delete(s.dur.nodes, a)
	}
}

// checkFsync checks one node runs with appendonly yes and appendfsync always.
func checkFsync(ctx context.Context, c *redis.Client) error {
	addr := c.Options().Addr
	cfg, err := c.ConfigGet(ctx, "append*").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return notDurable("durability fsync: redis %s refuses CONFIG GET (%v); if it is known to run with appendonly yes and appendfsync always, set -durability-trust (DURABILITY_TRUST=1)", addr, err)
		}
		return unavailable(err, "durability check: CONFIG GET on "+addr)
	}
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" {
		return notDurable("durability fsync needs appendonly yes and appendfsync always, but redis %s has appendonly %s and appendfsync %s",
			addr, orUnknown(cfg["appendonly"]), orUnknown(cfg["appendfsync"]))
	}
	return nil
}

// checkReplicas checks one primary has at least want replicas online.
func checkReplicas(ctx context.Context, c *redis.Client, want int) error {
	addr := c.Options().Addr
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return notDurable("durability replica: redis %s refuses INFO replication (%v)", addr, err)
		}
		return unavailable(err, "durability check: INFO replication on "+addr)
	}
	role, online := "", 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case k == "role":
			role = v
		case strings.HasPrefix(k, "slave") && strings.Contains(v, "state=online"):
			if _, err := strconv.Atoi(k[len("slave"):]); err == nil {
				online++
			}
		}
	}
	if role != "master" {
		return notDurable("durability replica: redis %s is a %s, not a primary", addr, orUnknown(role))
	}
	if online < want {
		return notDurable("durability replica needs %d online replica(s) of every primary, but redis %s has %d", want, addr, online)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// pexpireReplay refreshes a replay key: a write on the connection after a
// replayed receipt was read, so that WAIT covers the original apply too
// (WAIT counts replicas that have this connection's last write).
func pexpireReplay(ctx context.Context, pipe redis.Pipeliner, p *part, ttl int64) *redis.BoolCmd {
	return pipe.PExpire(ctx, p.keys[2], time.Duration(ttl)*time.Millisecond)
}

// applyReplicated applies parts (their arguments built) on the primaries
// that own them, and returns only once Durability.Replicas replicas of each
// have acknowledged (WAIT), or an EUNAVAILABLE error. On a Cluster the
// parts go to the primary of their poll's slot, per primary on one
// connection: the scripts, then WAIT, pipelined. WAIT cannot run inside
// Lua, and counts the replicas that have the connection's last write.
func (s *Store) applyReplicated(ctx context.Context, b *shared.Batch, parts []*part, now, ttl int64, rec *shared.Receipt) (replayed int, err error) {
	if s.cluster == nil {
		return s.applyOnPrimary(ctx, s.single, b, parts, now, ttl, rec)
	}
	type group struct {
		node  *redis.Client
		parts []*part
	}
	var groups []*group
	for _, p := range parts {
		node, err := s.cluster.MasterForKey(ctx, p.keys[0])
		if err != nil {
			s.cluster.ReloadState(ctx)
			return 0, redisErr(err, "apply batch %s to poll %s: find its primary", b.ID, p.poll)
		}
		var g *group
		for _, h := range groups {
			if h.node == node {
				g = h
				break
			}
		}
		if g == nil {
			g = &group{node: node}
			groups = append(groups, g)
		}
		g.parts = append(g.parts, p)
	}
	for _, g := range groups {
		n, err := s.applyOnPrimary(ctx, g.node, b, g.parts, now, ttl, rec)
		if err != nil {
			return 0, err
		}
		replayed += n
	}
	return replayed, nil
}

// applyOnPrimary applies parts on one node and waits for its replicas, all
// on one connection. A part that needs another round (script not loaded,
// stale bucket count) goes again on the same connection; a replayed part
// gets its replay key refreshed, so that the final WAIT also covers the
// write that stored the receipt, made by an earlier, perhaps unacknowledged,
// delivery.
func (s *Store) applyOnPrimary(ctx context.Context, node *redis.Client, b *shared.Batch, parts []*part, now, ttl int64, rec *shared.Receipt) (replayed int, err error) {
	d := s.Durability()
	conn := node.Conn()
	defer conn.Close()
	addr := node.Options().Addr
	fail := func(err error, format string, args ...any) (int, error) {
		if s.cluster != nil {
			s.cluster.ReloadState(ctx) // MOVED, a failover, a dead node: learn the new layout
		}
		return 0, redisErr(err, format, args...)
	}
	pending, touch := parts, []*part(nil)
	eval := false
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			return 0, shared.Errorf(shared.EUNAVAILABLE, "apply batch %s on %s: bucket count keeps changing", b.ID, addr)
		}
		cmds := make([]*redis.Cmd, len(pending))
		touched := make([]*redis.BoolCmd, len(touch))
		var wait *redis.IntCmd
		_, _ = conn.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, p := range pending {
				if eval {
					cmds[i] = p.family.script().Eval(ctx, pipe, p.keys, p.args...)
				} else {
					cmds[i] = p.family.script().EvalSha(ctx, pipe, p.keys, p.args...)
				}
			}
			for i, p := range touch {
				touched[i] = pexpireReplay(ctx, pipe, p, ttl)
			}
			// Pipeliner has no Wait method; the command is the same.
			wait = redis.NewIntCmd(ctx, "wait", d.Replicas, d.ReplicaTimeout.Milliseconds())
			return pipe.Process(ctx, wait)
		})
		var again, replays []*part
		for i, p := range pending {
			done, rep, err := s.result(p, cmds[i], rec)
			switch {
			case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT"):
				eval = true
				again = append(again, p)
			case err != nil:
				return fail(err, "apply batch %s to poll %s on %s", b.ID, p.poll, addr)
			case done:
				if rep {
					replayed++
					replays = append(replays, p)
				}
			default:
				p.build(b, p.buckets, now, ttl) // result updated p.buckets and p.family
				again = append(again, p)
			}
		}
		for i, c := range touched {
			ok, err := c.Result()
			if err != nil {
				return fail(err, "apply batch %s to poll %s on %s: refresh its receipt", b.ID, touch[i].poll, addr)
			}
			if !ok {
				return 0, shared.Errorf(shared.EUNAVAILABLE, "apply batch %s to poll %s: its receipt expired while it was read; retry", b.ID, touch[i].poll)
			}
		}
		if len(again) > 0 || len(replays) > 0 {
			pending, touch = again, replays
			continue
		}
		n, err := wait.Result()
		if err != nil {
			return fail(err, "apply batch %s on %s: WAIT", b.ID, addr)
		}
		if int(n) < d.Replicas {
			s.dur.shortfalls.Add(1)
			return 0, shared.Errorf(shared.EUNAVAILABLE,
				"batch %s not acknowledged: %d of %d replica(s) of redis %s had it within %v (durability replica); retry",
				b.ID, n, d.Replicas, addr, d.ReplicaTimeout)
		}
		return replayed, nil
	}
}
