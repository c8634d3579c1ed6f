package harness

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/edgepoll/edgepoll/shared"
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
	_, err := b.Instantiate(ctx)
	return err
}

// read returns a view of guest memory; a range outside it traps the guest
// (a guest passing bad pointers is broken and gets replaced).
func read(m api.Module, ptr, n uint64) []byte {
	b, ok := m.Memory().Read(uint32(ptr), uint32(n))
	if !ok {
		panic("edgepoll host import: range outside guest memory")
	}
	return b
}

// reply writes a successful result into the guest's (out_ptr, out_cap)
// buffer when it fits and returns the packed result (full length either way).
func reply(m api.Module, outPtr, outCap uint64, data []byte) uint64 {
	if uint64(len(data)) <= outCap && len(data) > 0 {
		if !m.Memory().Write(uint32(outPtr), data) {
			panic("edgepoll host import: output buffer outside guest memory")
		}
	}
	return abi.PackResult(abi.StatusOK, uint32(len(data)))
}

// replyErr writes err's client-safe message, truncated to out_cap, and
// returns the packed error result.
func replyErr(m api.Module, outPtr, outCap uint64, err error) uint64 {
	msg := shared.ErrorMessage(err)
	if uint64(len(msg)) > outCap {
		msg = msg[:outCap]
	}
	if len(msg) > 0 && !m.Memory().Write(uint32(outPtr), []byte(msg)) {
		panic("edgepoll host import: output buffer outside guest memory")
	}
	return abi.PackResult(abi.StatusOf(err), uint32(len(msg)))
}

func (h *Harness) importNow(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = uint64(h.backing.Now().UnixNano())
}

func (h *Harness) importPoll(ctx context.Context, m api.Module, stack []uint64) {
	id := string(read(m, stack[0], stack[1]))
	outPtr, outCap := stack[2], stack[3]
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
	id := string(read(m, stack[0], stack[1]))
	msgpack := stack[2] != 0
	outPtr, outCap := stack[3], stack[4]
	c, err := h.backing.Results(ctx, id, msgpack)
	if err != nil {
		stack[0] = replyErr(m, outPtr, outCap, err)
		return
	}
	ac := abi.Cached{Status: c.Status, ContentType: c.ContentType, ETag: c.ETag, CacheControl: c.CacheControl, Body: c.Body}
	stack[0] = reply(m, outPtr, outCap, ac.Append(nil))
}

func (h *Harness) importSubmit(ctx context.Context, m api.Module, stack []uint64) {
	outPtr, outCap := stack[2], stack[3]
	var v shared.Vote
	if err := abi.DecodeVote(read(m, stack[0], stack[1]), &v); err != nil {
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
	key := string(read(m, stack[0], stack[1]))
	if h.backing.Allow(ctx, key) {
		stack[0] = 1
	} else {
		stack[0] = 0
	}
}

func (h *Harness) importLog(_ context.Context, m api.Module, stack []uint64) {
	level := abi.LevelName(uint32(stack[0]))
	msg := string(read(m, stack[1], min(stack[2], abi.MaxMessageBytes)))
	kv, err := abi.DecodeAttrs(read(m, stack[3], stack[4]))
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
	key := string(read(m, stack[0], stack[1]))
	outPtr, outCap := stack[2], stack[3]
	v, ok := h.cfg.Env(key)
	if !ok {
		stack[0] = replyErr(m, outPtr, outCap, shared.Errorf(shared.ENOTFOUND, "%s is not set", key))
		return
	}
	stack[0] = reply(m, outPtr, outCap, []byte(v))
}
