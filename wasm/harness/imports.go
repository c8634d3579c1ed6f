package harness

import (
	"context"
	"math"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/invite"
	"github.com/edgepoll/edgepoll/shared/token"
	"github.com/edgepoll/edgepoll/wasm/abi"
)

// PollEncoder is implemented by backing hosts that hold a poll config in its
// wire encoding already (shared.MarshalPoll bytes), sparing the harness a
// marshal per lookup. The returned bytes must not be modified.
type PollEncoder interface {
	PollBytes(ctx context.Context, id string) ([]byte, error)
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// instantiateImports registers the "edgepoll" host module (wasm/ABI.md).
func (h *Harness) instantiateImports(ctx context.Context) error {
	b := h.rt.NewHostModuleBuilder(abi.ImportModule)
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).Export(name)
	}
	fn(abi.ImportNow, h.importNow, nil, []api.ValueType{i64})
	fn(abi.ImportPoll, h.importPoll, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportResults, h.importResults, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportSubmit, h.importSubmit, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportAllow, h.importAllow, []api.ValueType{i32, i32}, []api.ValueType{i32})
	fn(abi.ImportLog, h.importLog, []api.ValueType{i32, i32, i32, i32, i32}, nil)
	fn(abi.ImportConfig, h.importConfig, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportTokenIssue, h.importTokenIssue, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportTokenVerify, h.importTokenVerify, []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportSeenAdd, h.importSeenAdd, []api.ValueType{i32, i32, i32}, []api.ValueType{i32})
	fn(abi.ImportSeenRemove, h.importSeenRemove, []api.ValueType{i32, i32, i32}, nil)
	fn(abi.ImportLimit, h.importLimit, []api.ValueType{i32, i64, i64}, []api.ValueType{i64})
	fn(abi.ImportVoted, h.importVoted, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportInviteRedeem, h.importInviteRedeem, []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i64})
	fn(abi.ImportCount, h.importCount, []api.ValueType{i32, i32, i32, i32, i32}, nil)
	_, err := b.Instantiate(ctx)
	return err
}

// arg returns the i32 argument in a stack slot. wazero leaves the upper 32
// bits of an i32 slot undefined, so they must never be looked at.
func arg(v uint64) uint32 { return api.DecodeU32(v) }

// read returns a view of guest memory; a range outside it traps the guest
// (a guest passing bad pointers is broken and gets replaced).
func read(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic("edgepoll host import: range outside guest memory")
	}
	return b
}

// reply writes a successful result into the guest's (out_ptr, out_cap)
// buffer when it fits and returns the packed result (full length either way).
func reply(m api.Module, outPtr, outCap uint32, data []byte) uint64 {
	if uint64(len(data)) <= uint64(outCap) && len(data) > 0 {
		if !m.Memory().Write(outPtr, data) {
			panic("edgepoll host import: output buffer outside guest memory")
		}
	}
	return abi.PackResult(abi.StatusOK, uint32(len(data)))
}

// replyErr writes err's client-safe message, truncated to out_cap, and
// returns the packed error result.
func replyErr(m api.Module, outPtr, outCap uint32, err error) uint64 {
	msg := shared.ErrorMessage(err)
	if uint64(len(msg)) > uint64(outCap) {
		msg = msg[:outCap]
	}
	if len(msg) > 0 && !m.Memory().Write(outPtr, []byte(msg)) {
		panic("edgepoll host import: output buffer outside guest memory")
	}
	return abi.PackResult(abi.StatusOf(err), uint32(len(msg)))
}

func (h *Harness) importNow(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = uint64(h.backing.Now().UnixNano())
}

func (h *Harness) importPoll(ctx context.Context, m api.Module, stack []uint64) {
	defer hostCall(ctx).resume() // host I/O does not count against the guest's budget
	id := string(read(m, arg(stack[0]), arg(stack[1])))
	outPtr, outCap := arg(stack[2]), arg(stack[3])
	var data []byte
	var err error
	if pe, ok := h.backing.(PollEncoder); ok {
		data, err = pe.PollBytes(ctx, id)
	} else {
		var p *shared.Poll
		if p, err = h.backing.Poll(ctx, id); err == nil {
			data, err = shared.MarshalPoll(p)
		}
	}
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	stack[0] = reply(m, outPtr, outCap, data)
}

func (h *Harness) importResults(ctx context.Context, m api.Module, stack []uint64) {
	defer hostCall(ctx).resume() // host I/O does not count against the guest's budget
	id := string(read(m, arg(stack[0]), arg(stack[1])))
	msgpack := arg(stack[2]) != 0
	outPtr, outCap := arg(stack[3]), arg(stack[4])
	c, err := h.backing.Results(ctx, id, msgpack)
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	ac := abi.Cached{Status: c.Status, ContentType: c.ContentType, ETag: c.ETag, CacheControl: c.CacheControl, Body: c.Body}
	stack[0] = reply(m, outPtr, outCap, ac.Append(nil))
}

func (h *Harness) importSubmit(ctx context.Context, m api.Module, stack []uint64) {
	defer hostCall(ctx).resume() // host I/O does not count against the guest's budget
	outPtr, outCap := arg(stack[2]), arg(stack[3])
	var v shared.Vote
	if err := abi.DecodeVote(read(m, arg(stack[0]), arg(stack[1])), &v); err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	if err := h.backing.Submit(ctx, &v); err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	stack[0] = abi.PackResult(abi.StatusOK, 0)
}

func (h *Harness) importAllow(ctx context.Context, m api.Module, stack []uint64) {
	defer hostCall(ctx).resume() // host I/O does not count against the guest's budget
	key := string(read(m, arg(stack[0]), arg(stack[1])))
	if h.backing.Allow(ctx, key) {
		stack[0] = 1
	} else {
		stack[0] = 0
	}
}

func (h *Harness) importLog(_ context.Context, m api.Module, stack []uint64) {
	level := abi.LevelName(arg(stack[0]))
	msg := string(read(m, arg(stack[1]), min(arg(stack[2]), abi.MaxMessageBytes)))
	kv, err := abi.DecodeAttrs(read(m, arg(stack[3]), arg(stack[4])))
	attrs := make([]any, 0, len(kv)+2)
	for _, s := range kv {
		attrs = append(attrs, s)
	}
	if err != nil {
		attrs = append(attrs, "attrs_error", err.Error())
	}
	h.backing.Log(level, msg, attrs...)
}

func (h *Harness) importConfig(_ context.Context, m api.Module, stack []uint64) {
	key := string(read(m, arg(stack[0]), arg(stack[1])))
	outPtr, outCap := arg(stack[2]), arg(stack[3])
	v, ok := h.cfg.Env(key)
	if !ok {
		stack[0] = replyErr(m, outPtr, outCap, shared.Errorf(shared.ENOTFOUND, "%s is not set", key))
		return
	}
	stack[0] = reply(m, outPtr, outCap, []byte(v))
}

// tokenService returns the voter-token service the token imports use: the
// backing host's if it implements edge.TokenService, else shared/token
// keyed with TOKEN_SECRET from Config.Env (nil when that is unset: the
// guest's own configuration check then refuses to start).
func (h *Harness) tokenService() edge.TokenService {
	if ts, ok := h.backing.(edge.TokenService); ok {
		return ts
	}
	if s, ok := h.cfg.Env("TOKEN_SECRET"); ok && s != "" {
		return secretTokens([]byte(s))
	}
	return nil
}

// secretTokens is shared/token keyed with a secret, run natively.
type secretTokens []byte

func (s secretTokens) IssueToken(poll string, v shared.VoterID) (string, error) {
	return token.Issue(s, poll, v), nil
}

func (s secretTokens) VerifyToken(poll, tok string) (shared.VoterID, error) {
	return token.Verify(s, poll, tok)
}

var errNoTokens = shared.Errorf(shared.EUNAVAILABLE, "no voter-token service: TOKEN_SECRET is not set")

func (h *Harness) importTokenIssue(_ context.Context, m api.Module, stack []uint64) {
	poll := read(m, arg(stack[0]), arg(stack[1]))
	raw := read(m, arg(stack[2]), 16)
	outPtr, outCap := arg(stack[3]), arg(stack[4])
	if h.tokens == nil {
		stack[0] = replyErr(m, outPtr, outCap, errNoTokens)
		return
	}
	var v shared.VoterID
	copy(v[:], raw)
	tok, err := h.tokens.IssueToken(string(poll), v)
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	var buf [token.Len]byte
	stack[0] = reply(m, outPtr, outCap, append(buf[:0], tok...))
}

func (h *Harness) importTokenVerify(_ context.Context, m api.Module, stack []uint64) {
	poll := read(m, arg(stack[0]), arg(stack[1]))
	tok := read(m, arg(stack[2]), arg(stack[3]))
	outPtr, outCap := arg(stack[4]), arg(stack[5])
	if h.tokens == nil {
		stack[0] = replyErr(m, outPtr, outCap, errNoTokens)
		return
	}
	v, err := h.tokens.VerifyToken(string(poll), string(tok))
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	stack[0] = reply(m, outPtr, outCap, v[:])
}

// locationState returns the state the seen and limit imports use: the
// backing host's if it implements edge.StateHost, else one in-memory
// edge.NewLocationState configured by Config.Env exactly as the guest
// configures itself (edge.ConfigFromEnv). When Env is invalid the guest
// refuses to start anyway, and the state takes the defaults.
func (h *Harness) locationState() edge.LocationState {
	if sh, ok := h.backing.(edge.StateHost); ok {
		if s := sh.LocationState(); s != nil {
			return s
		}
	}
	cfg, err := edge.ConfigFromEnv(func(k string) string { v, _ := h.cfg.Env(k); return v })
	if err != nil {
		cfg = edge.DefaultConfig()
	}
	return edge.NewLocationState(cfg)
}

// voter reads the 16-byte voter id at ptr.
func voter(m api.Module, ptr uint32) shared.VoterID {
	var v shared.VoterID
	copy(v[:], read(m, ptr, uint32(len(v))))
	return v
}

// pollID returns the poll id at (ptr, n) as a string, reusing the last one
// the harness made when it is the same (votes come for few polls), so the
// per-vote state calls do not allocate.
func (h *Harness) pollID(m api.Module, ptr, n uint32) string {
	b := read(m, ptr, n)
	if last := h.lastPoll.Load(); last != nil && *last == string(b) {
		return *last
	}
	s := string(b)
	h.lastPoll.Store(&s)
	return s
}

func (h *Harness) importSeenAdd(_ context.Context, m api.Module, stack []uint64) {
	poll := h.pollID(m, arg(stack[0]), arg(stack[1]))
	if h.state.SeenAdd(poll, voter(m, arg(stack[2]))) {
		stack[0] = 1
	} else {
		h.dedupeHits.Add(1)
		stack[0] = 0
	}
}

func (h *Harness) importSeenRemove(_ context.Context, m api.Module, stack []uint64) {
	poll := h.pollID(m, arg(stack[0]), arg(stack[1]))
	h.state.SeenRemove(poll, voter(m, arg(stack[2])))
}

func (h *Harness) importLimit(_ context.Context, _ api.Module, stack []uint64) {
	l := arg(stack[0])
	if l > math.MaxUint8 {
		stack[0] = 0 // no such limiter: conforms, as an unknown one does in edge
		return
	}
	ok, wait := h.state.Limit(edge.Limiter(l), stack[1], time.Unix(0, int64(stack[2])))
	if !ok && l < uint32(len(h.limited)) {
		h.limited[l].Add(1)
	}
	switch {
	case ok:
		stack[0] = 0
	case wait < 1:
		stack[0] = 1
	default:
		stack[0] = uint64(wait)
	}
}

func (h *Harness) importVoted(ctx context.Context, m api.Module, stack []uint64) {
	defer hostCall(ctx).resume() // host I/O does not count against the guest's budget
	poll := string(read(m, arg(stack[0]), arg(stack[1])))
	v := voter(m, arg(stack[2]))
	outPtr, outCap := arg(stack[3]), arg(stack[4])
	counted, err := h.backing.Voted(ctx, poll, v)
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	answer := [1]byte{0}
	if counted {
		answer[0] = 1
	}
	stack[0] = reply(m, outPtr, outCap, answer[:])
}

// errNoInvites answers invite_redeem when the backing host cannot redeem codes.
var errNoInvites = shared.Errorf(shared.EUNAVAILABLE, "this edge cannot redeem invite codes")

func (h *Harness) importInviteRedeem(ctx context.Context, m api.Module, stack []uint64) {
	defer hostCall(ctx).resume() // host I/O does not count against the guest's budget
	poll := string(read(m, arg(stack[0]), arg(stack[1])))
	raw := string(read(m, arg(stack[2]), arg(stack[3])))
	outPtr, outCap := arg(stack[4]), arg(stack[5])
	ih, ok := h.backing.(edge.InviteHost)
	if !ok {
		stack[0] = replyErr(m, outPtr, outCap, errNoInvites)
		return
	}
	code, err := invite.Parse(raw) // the guest sends a canonical code; never trust it
	if err == nil {
		err = ih.RedeemInvite(ctx, poll, code)
	}
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	stack[0] = reply(m, outPtr, outCap, nil)
}

// maxCountKey bounds the key of a count event (an address, a prefix or a reason).
const maxCountKey = 64

func (h *Harness) importCount(_ context.Context, m api.Module, stack []uint64) {
	ic, ok := h.backing.(edge.IdentityCounter)
	if !ok {
		return
	}
	event := arg(stack[0])
	poll := string(read(m, arg(stack[1]), arg(stack[2])))
	key := read(m, arg(stack[3]), arg(stack[4]))
	if len(key) > maxCountKey || !shared.ValidPollID(poll) {
		return
	}
	switch event {
	case abi.CountTokenIssued:
		ic.TokenIssued(poll, string(key))
	case abi.CountTokenRefused:
		ic.TokenRefused(poll, string(key))
	}
}
