//go:build wasip1

// Command faultyguest is a test-only edgepoll guest that misbehaves on
// request: GET /trap panics (the module exits), GET /loop never returns, any
// other path answers 200 "ok". Its ABI version comes from -ldflags
// "-X main.abiVersion=N" (default abi.Version), to test the host's check.
package main

import (
	"strconv"
	"unsafe"

	"github.com/edgepoll/edgepoll/wasm/abi"
)

func main() {}

var (
	abiVersion string // set by -ldflags -X to claim another version
	allocs     = map[uint32][]byte{}
	out        []byte
	req        abi.Request
	spin       int
)

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

//go:wasmexport ep_abi_version
func epABIVersion() uint32 {
	if v, err := strconv.Atoi(abiVersion); err == nil {
		return uint32(v)
	}
	return abi.Version
}

//go:wasmexport ep_init
func epInit() uint64 { return 0 }

//go:wasmexport ep_alloc
func epAlloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	allocs[addr(b)] = b
	return addr(b)
}

//go:wasmexport ep_free
func epFree(ptr uint32) { delete(allocs, ptr) }

//go:wasmexport ep_handle
func epHandle(ptr, n uint32) uint64 {
	b := allocs[ptr]
	if int(n) > len(b) {
		panic("bad request range")
	}
	if err := abi.DecodeRequest(b[:n], &req); err != nil {
		panic(err)
	}
	switch req.URI {
	case "/trap":
		var p *abi.Request
		_ = p.Method // nil dereference: the guest dies
	case "/loop":
		for {
			spin++
		}
	}
	out = abi.AppendResponseHead(out[:0], 200, 1)
	out = abi.AppendString(out, "Content-Type")
	out = abi.AppendString(out, "text/plain")
	out = abi.AppendBytes(out, []byte("ok"))
	return abi.PackPtrLen(addr(out), uint32(len(out)))
}
