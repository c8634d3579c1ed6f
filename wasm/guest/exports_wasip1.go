//go:build wasip1

package main

import (
	"unsafe"

	"github.com/edgepoll/edgepoll/wasm/abi"
)

// Exports (see wasm/ABI.md).

//go:wasmexport ep_abi_version
func epABIVersion() uint32 { return abi.Version }

//go:wasmexport ep_init
func epInit() uint64 {
	msg := initGuest()
	if msg == "" {
		return 0
	}
	state.out = append(state.out[:0], msg...)
	return abi.PackPtrLen(addr(state.out), uint32(len(state.out)))
}

//go:wasmexport ep_alloc
func epAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	p := addr(b)
	if state.allocs == nil {
		state.allocs = make(map[uint32][]byte)
	}
	state.allocs[p] = b
	return p
}

//go:wasmexport ep_free
func epFree(ptr uint32) { delete(state.allocs, ptr) }

//go:wasmexport ep_handle
func epHandle(ptr, n uint32) uint64 {
	var data []byte
	if b, ok := state.allocs[ptr]; ok && int(n) <= len(b) {
		data = b[:n]
	}
	// A range outside a live allocation decodes as an empty request: 400.
	out := handle(data)
	return abi.PackPtrLen(addr(out), uint32(len(out)))
}

func addr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// Imports (see wasm/ABI.md).

//go:wasmimport edgepoll now
func importNow() int64

//go:wasmimport edgepoll poll
func importPoll(idPtr unsafe.Pointer, idLen uint32, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll results
func importResults(idPtr unsafe.Pointer, idLen uint32, msgpack uint32, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll submit
func importSubmit(votePtr unsafe.Pointer, voteLen uint32, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll allow
func importAllow(keyPtr unsafe.Pointer, keyLen uint32) uint32

//go:wasmimport edgepoll log
func importLog(level uint32, msgPtr unsafe.Pointer, msgLen uint32, attrsPtr unsafe.Pointer, attrsLen uint32)

//go:wasmimport edgepoll config
func importConfig(keyPtr unsafe.Pointer, keyLen uint32, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll token_issue
func importTokenIssue(pollPtr unsafe.Pointer, pollLen uint32, voterPtr unsafe.Pointer, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll token_verify
func importTokenVerify(pollPtr unsafe.Pointer, pollLen uint32, tokPtr unsafe.Pointer, tokLen uint32, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll seen_add
func importSeenAdd(pollPtr unsafe.Pointer, pollLen uint32, voterPtr unsafe.Pointer) uint32

//go:wasmimport edgepoll seen_remove
func importSeenRemove(pollPtr unsafe.Pointer, pollLen uint32, voterPtr unsafe.Pointer)

//go:wasmimport edgepoll limit
func importLimit(limiter uint32, key uint64, now int64) uint64

//go:wasmimport edgepoll voted
func importVoted(pollPtr unsafe.Pointer, pollLen uint32, voterPtr unsafe.Pointer, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport edgepoll count
func importCount(event uint32, pollPtr unsafe.Pointer, pollLen uint32, keyPtr unsafe.Pointer, keyLen uint32)

//go:wasmimport edgepoll invite_redeem
func importInviteRedeem(pollPtr unsafe.Pointer, pollLen uint32, codePtr unsafe.Pointer, codeLen uint32, outPtr unsafe.Pointer, outCap uint32) uint64

func sp(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }
func bp(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func hostNow() int64 { return importNow() }

func hostPoll(id string, out []byte) uint64 {
	return importPoll(sp(id), uint32(len(id)), bp(out), uint32(len(out)))
}

func hostResults(id string, msgpack bool, out []byte) uint64 {
	var m uint32
	if msgpack {
		m = 1
	}
	return importResults(sp(id), uint32(len(id)), m, bp(out), uint32(len(out)))
}

func hostSubmit(vote, out []byte) uint64 {
	return importSubmit(bp(vote), uint32(len(vote)), bp(out), uint32(len(out)))
}

func hostAllow(key string) bool { return importAllow(sp(key), uint32(len(key))) != 0 }

func hostLog(level uint32, msg string, attrs []byte) {
	importLog(level, sp(msg), uint32(len(msg)), bp(attrs), uint32(len(attrs)))
}

func hostConfig(key string, out []byte) uint64 {
	return importConfig(sp(key), uint32(len(key)), bp(out), uint32(len(out)))
}

func hostTokenIssue(poll string, voter *[16]byte, out []byte) uint64 {
	return importTokenIssue(sp(poll), uint32(len(poll)), unsafe.Pointer(voter), bp(out), uint32(len(out)))
}

func hostTokenVerify(poll, tok string, out []byte) uint64 {
	return importTokenVerify(sp(poll), uint32(len(poll)), sp(tok), uint32(len(tok)), bp(out), uint32(len(out)))
}

func hostSeenAdd(poll string, voter *[16]byte) bool {
	return importSeenAdd(sp(poll), uint32(len(poll)), unsafe.Pointer(voter)) != 0
}

func hostSeenRemove(poll string, voter *[16]byte) {
	importSeenRemove(sp(poll), uint32(len(poll)), unsafe.Pointer(voter))
}

func hostLimit(limiter uint32, key uint64, now int64) uint64 { return importLimit(limiter, key, now) }

func hostVoted(poll string, voter *[16]byte, out []byte) uint64 {
	return importVoted(sp(poll), uint32(len(poll)), unsafe.Pointer(voter), bp(out), uint32(len(out)))
}

func hostInviteRedeem(poll, code string, out []byte) uint64 {
	return importInviteRedeem(sp(poll), uint32(len(poll)), sp(code), uint32(len(code)), bp(out), uint32(len(out)))
}

func hostCount(event uint32, poll, key string) {
	importCount(event, sp(poll), uint32(len(poll)), sp(key), uint32(len(key)))
}
