// Package harness runs edgepoll's edge guest (wasm/guest) under wazero and
// serves it over HTTP: one edge location, a pool of guest instances whose
// host imports (wasm/ABI.md) delegate to a native edge.Host. The location's
// dedupe memory and rate limiters are the harness's, one
// edge.LocationState shared by every instance, so a repeat vote is refused
// whichever instance serves it. The binary (wasm/cmd/harness) backs the
// imports with the origin (wasm/originhost); tests back them with
// edgetest.FakeHost.
package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/wasm/abi"
	"github.com/edgepoll/edgepoll/wasm/internal/interrupt"
)

// Defaults for zero Config fields.
const (
	DefaultTimeout        = 2 * time.Second
	DefaultAcquireTimeout = time.Second
)

// Config configures a Harness. Zero fields take defaults.
type Config struct {
	// Instances is the number of guest instances (default GOMAXPROCS).
	Instances int
	// Timeout is each request's time budget inside the guest, not counting
	// the time host imports take (DefaultTimeout). A guest that runs past it is stopped, the
	// request gets a 500 and the instance is replaced.
	Timeout time.Duration
	// NoBudget turns the time budget off: the guest runs without
	// interruption checks, but a guest that loops forever holds its request
	// and instance, and a core, for good. Only for trusted guests and for
	// measuring the checks' cost.
	NoBudget bool
	// WazeroBudget enforces the time budget with wazero's own mechanism
	// (RuntimeConfig.WithCloseOnContextDone: an exit to Go at every loop
	// header, 2–3× slower guest code) instead of the default, the countdown
	// the harness instruments the module with (package
	// wasm/internal/interrupt: a decrement and an untaken branch at every
	// loop header and function entry, and a call to the host's budget check
	// every tickEvery of them). The harness falls back to it by itself when
	// the module cannot be instrumented. For comparison and as a fallback.
	WazeroBudget bool
	// AcquireTimeout bounds the wait for a free instance (DefaultAcquireTimeout);
	// past it the request gets a 503.
	AcquireTimeout time.Duration
	// Env answers the guest's config import (TOKEN_SECRET, ALLOWED_ORIGINS, …);
	// nil means no configuration.
	Env func(key string) (string, bool)
	// CacheDir holds wazero's compilation cache, reused across runs. Empty
	// means <user cache dir>/edgepoll/wazero; "off" disables the cache.
	CacheDir string
	// Stderr receives the guest's stdout and stderr (default os.Stderr).
	Stderr io.Writer
	// Logger logs harness events (default slog.Default()).
	Logger *slog.Logger
}

// Stats counts what the harness did.
type Stats struct {
	Requests  uint64 // requests served by a guest
	Traps     uint64 // guest calls that trapped or exited
	Timeouts  uint64 // guest calls stopped for running out their time budget
	Busy      uint64 // requests refused because no instance was free
	Instances uint64 // instances created, replacements included
	// DedupeHits counts votes the location's dedupe memory had already
	// seen (answered 409 without reaching the origin).
	DedupeHits uint64
	// Limited counts the rate-limit refusals (429s) by edge.Limiter.
	Limited [edge.NumLimiters]uint64
}

// Harness is a pool of guest instances of one compiled module.
type Harness struct {
	cfg      Config
	log      *slog.Logger
	backing  edge.Host
	tokens   edge.TokenService      // nil without TOKEN_SECRET
	state    edge.LocationState     // the location's dedupe memory and limiters, shared by the pool
	lastPoll atomic.Pointer[string] // see pollID
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	pool     chan *instance

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup // replacement goroutines

	requests, traps, timeouts, busy, created atomic.Uint64
	dedupeHits                               atomic.Uint64
	limited                                  [edge.NumLimiters]atomic.Uint64
}

// instance is one guest: it serves one request at a time.
type instance struct {
	mod            api.Module
	mem            api.Memory
	handle, alloc  api.Function
	free           api.Function
	reqPtr, reqCap uint32
	buf            []byte // host-side request encoding buffer
	resp           abi.Response
	stack          [2]uint64
}

// DefaultCacheDir returns the directory of wazero's compilation cache.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "edgepoll", "wazero")
}

// New compiles module (once, through the compilation cache), checks its ABI
// version and starts cfg.Instances instances whose host imports delegate to
// backing. A module of another ABI version, or one whose edge config is
// invalid, is refused with an error saying so.
func New(ctx context.Context, module []byte, backing edge.Host, cfg Config) (*Harness, error) {
	if cfg.Instances <= 0 {
		cfg.Instances = runtime.GOMAXPROCS(0)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = DefaultAcquireTimeout
	}
	if cfg.Env == nil {
		cfg.Env = func(string) (string, bool) { return "", false }
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !cfg.NoBudget && !cfg.WazeroBudget {
		inst, err := interrupt.Instrument(module, interrupt.Config{Module: budgetModule, Name: budgetTick, Every: tickEvery})
		if err != nil {
			cfg.Logger.Warn("harness: cannot instrument the guest for its time budget; using wazero's slower termination checks", "err", err)
			cfg.WazeroBudget = true
		} else {
			module = inst
		}
	}
	rc := wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(!cfg.NoBudget && cfg.WazeroBudget)
	if cfg.CacheDir != "off" {
		if cfg.CacheDir == "" {
			cfg.CacheDir = DefaultCacheDir()
		}
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("harness: compilation cache %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	h := &Harness{
		cfg:     cfg,
		log:     cfg.Logger,
		backing: backing,
		rt:      wazero.NewRuntimeWithConfig(ctx, rc),
		pool:    make(chan *instance, cfg.Instances),
		closing: make(chan struct{}),
	}
	h.tokens = h.tokenService()
	h.state = h.locationState()
	if err := h.setup(ctx, module); err != nil {
		h.rt.Close(ctx)
		return nil, err
	}
	for range cfg.Instances {
		inst, err := h.newInstance(ctx)
		if err != nil {
			h.rt.Close(ctx)
			return nil, err
		}
		h.pool <- inst
	}
	return h, nil
}

func (h *Harness) setup(ctx context.Context, module []byte) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		return fmt.Errorf("harness: instantiate WASI: %w", err)
	}
	if err := h.instantiateImports(ctx); err != nil {
		return fmt.Errorf("harness: instantiate host imports: %w", err)
	}
	if !h.cfg.NoBudget && !h.cfg.WazeroBudget {
		if err := instantiateBudget(ctx, h.rt); err != nil {
			return fmt.Errorf("harness: instantiate the budget check: %w", err)
		}
	}
	compiled, err := h.rt.CompileModule(ctx, module)
	if err != nil {
		return fmt.Errorf("harness: compile guest module: %w", err)
	}
	exports := compiled.ExportedFunctions()
	if _, ok := exports[abi.ExportABIVersion]; !ok {
		return fmt.Errorf("harness: guest module exports no %s: not an edgepoll guest (harness speaks ABI version %d)", abi.ExportABIVersion, abi.Version)
	}
	for _, name := range []string{abi.ExportInit, abi.ExportAlloc, abi.ExportFree, abi.ExportHandle} {
		if _, ok := exports[name]; !ok {
			return fmt.Errorf("harness: guest module does not export %s (ABI version %d)", name, abi.Version)
		}
	}
	h.compiled = compiled
	return nil
}

func (h *Harness) newInstance(ctx context.Context) (*instance, error) {
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(abi.ExportInitialize).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStdout(h.cfg.Stderr).
		WithStderr(h.cfg.Stderr)
	mod, err := h.rt.InstantiateModule(ctx, h.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("harness: instantiate guest: %w", err)
	}
	fail := func(err error) (*instance, error) {
		mod.Close(ctx)
		return nil, err
	}
	res, err := mod.ExportedFunction(abi.ExportABIVersion).Call(ctx)
	if err != nil {
		return fail(fmt.Errorf("harness: call %s: %w", abi.ExportABIVersion, err))
	}
	if v := uint32(res[0]); v != abi.Version {
		return fail(fmt.Errorf("harness: guest module speaks edgepoll ABI version %d but this harness speaks version %d; rebuild both from the same source (make wasm)", v, abi.Version))
	}
	res, err = mod.ExportedFunction(abi.ExportInit).Call(ctx)
	if err != nil {
		return fail(fmt.Errorf("harness: call %s: %w", abi.ExportInit, err))
	}
	if ptr, n := abi.UnpackPtrLen(res[0]); n != 0 {
		msg, _ := mod.Memory().Read(ptr, n)
		return fail(fmt.Errorf("harness: guest refused its configuration: %s", msg))
	}
	h.created.Add(1)
	return &instance{
		mod:    mod,
		mem:    mod.Memory(),
		handle: mod.ExportedFunction(abi.ExportHandle),
		alloc:  mod.ExportedFunction(abi.ExportAlloc),
		free:   mod.ExportedFunction(abi.ExportFree),
	}, nil
}

// Stats returns the harness's counters.
func (h *Harness) Stats() Stats {
	s := Stats{
		Requests:   h.requests.Load(),
		Traps:      h.traps.Load(),
		Timeouts:   h.timeouts.Load(),
		Busy:       h.busy.Load(),
		Instances:  h.created.Load(),
		DedupeHits: h.dedupeHits.Load(),
	}
	for i := range h.limited {
		s.Limited[i] = h.limited[i].Load()
	}
	return s
}

// Instances returns the size of the pool.
func (h *Harness) Instances() int { return h.cfg.Instances }

var (
	errBusy    = shared.Errorf(shared.EUNAVAILABLE, "all edge instances are busy, try again")
	errClosed  = shared.Errorf(shared.EUNAVAILABLE, "edge is shutting down")
	errTrap    = shared.Errorf(shared.EINTERNAL, "edge guest failed while handling the request")
	errTimeout = shared.Errorf(shared.EINTERNAL, "edge guest ran out of its time budget")
)

func (h *Harness) acquire(ctx context.Context) (*instance, error) {
	select {
	case inst := <-h.pool:
		return inst, nil
	default:
	}
	t := time.NewTimer(h.cfg.AcquireTimeout)
	defer t.Stop()
	select {
	case inst := <-h.pool:
		return inst, nil
	case <-t.C:
		h.busy.Add(1)
		return nil, errBusy
	case <-ctx.Done():
		return nil, errBusy
	case <-h.closing:
		return nil, errClosed
	}
}

// encodeFunc appends an encoded abi.Request to b.
type encodeFunc func(b []byte) []byte

// do runs one request through a guest: enc encodes it, and emit gets the
// decoded response, whose slices alias guest memory and are valid only
// during the call. A failure before the guest answered returns an error
// whose code maps to the status to send.
func (h *Harness) do(ctx context.Context, enc encodeFunc, emit func(*abi.Response)) error {
	inst, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	inst.buf = enc(inst.buf[:0])
	if !h.cfg.NoBudget {
		b := newBudget(ctx, h.cfg.Timeout, h.cfg.WazeroBudget)
		defer b.end()
		ctx = b
	}
	err = inst.call(ctx, inst.buf)
	if err != nil {
		h.fail(inst, err, ctx.Err() != nil)
		if ctx.Err() != nil {
			return errTimeout
		}
		return errTrap
	}
	ptr, n := abi.UnpackPtrLen(inst.stack[0])
	out, ok := inst.mem.Read(ptr, n)
	if !ok {
		h.fail(inst, fmt.Errorf("response range %d+%d outside guest memory", ptr, n), false)
		return errTrap
	}
	if err := abi.DecodeResponse(out, &inst.resp); err != nil {
		h.fail(inst, err, false)
		return errTrap
	}
	h.requests.Add(1)
	emit(&inst.resp)
	h.pool <- inst
	return nil
}

// call writes req into the instance's request buffer and calls ep_handle.
func (inst *instance) call(ctx context.Context, req []byte) error {
	if uint32(len(req)) > inst.reqCap || inst.reqPtr == 0 {
		if inst.reqPtr != 0 {
			inst.stack[0] = uint64(inst.reqPtr)
			if err := inst.free.CallWithStack(ctx, inst.stack[:]); err != nil {
				return err
			}
		}
		size := max(uint32(len(req)), 4<<10)
		inst.stack[0] = uint64(size)
		if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
			return err
		}
		inst.reqPtr, inst.reqCap = uint32(inst.stack[0]), size
	}
	if !inst.mem.Write(inst.reqPtr, req) {
		return errors.New("request buffer outside guest memory")
	}
	inst.stack[0], inst.stack[1] = uint64(inst.reqPtr), uint64(len(req))
	return inst.handle.CallWithStack(ctx, inst.stack[:])
}

// fail closes a failed instance and replaces it in the background.
func (h *Harness) fail(inst *instance, err error, timeout bool) {
	if timeout {
		h.timeouts.Add(1)
		h.log.Error("edge guest ran out of its time budget; replacing the instance", "budget", h.cfg.Timeout, "err", err)
	} else {
		h.traps.Add(1)
		h.log.Error("edge guest failed; replacing the instance", "err", err)
	}
	inst.mod.Close(context.Background())
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			n, err := h.newInstance(context.Background())
			if err == nil {
				h.pool <- n
				return
			}
			h.log.Error("cannot replace edge guest instance", "err", err)
			select {
			case <-h.closing:
				return
			case <-time.After(backoff):
			}
		}
	}()
}

// Close stops handing out instances, waits for requests in flight (up to
// ctx) and releases the runtime.
func (h *Harness) Close(ctx context.Context) error {
	h.closeOnce.Do(func() { close(h.closing) })
	h.wg.Wait()
	for range h.cfg.Instances {
		select {
		case <-h.pool:
		case <-ctx.Done():
			h.rt.Close(context.Background())
			return fmt.Errorf("harness: close: %w", ctx.Err())
		}
	}
	return h.rt.Close(ctx)
}
