//go:build !wasip1

package main

import (
	"time"

	"github.com/edgepoll/edgepoll/wasm/abi"
)

// Native twins of the host imports, so the package builds, vets and tests
// outside wasip1. They behave like a host with no services: the clock works,
// lookups, hand-offs and vote checks report EUNAVAILABLE, the location state
// remembers nothing and limits nothing, and the configuration is nativeEnv.

// nativeEnv answers the config import natively.
var nativeEnv = map[string]string{}

func unavailable(out []byte) uint64 {
	n := copy(out, "no host: not running under wasip1")
	return abi.PackResult(abi.StatusUnavailable, uint32(n))
}

func hostNow() int64                                  { return time.Now().UnixNano() }
func hostPoll(_ string, out []byte) uint64            { return unavailable(out) }
func hostResults(_ string, _ bool, out []byte) uint64 { return unavailable(out) }
func hostSubmit(_, out []byte) uint64                 { return unavailable(out) }
func hostAllow(string) bool                           { return true }
func hostTokenIssue(string, *[16]byte, []byte) uint64 {
	return abi.PackResult(abi.StatusUnavailable, 0)
}
func hostTokenVerify(string, string, []byte) uint64 { return abi.PackResult(abi.StatusUnavailable, 0) }
func hostLog(uint32, string, []byte)                {}
func hostSeenAdd(string, *[16]byte) bool            { return true }
func hostSeenRemove(string, *[16]byte)              {}
func hostLimit(uint32, uint64, int64) uint64        { return 0 }
func hostVoted(_ string, _ *[16]byte, out []byte) uint64 {
	return unavailable(out)
}
func hostInviteRedeem(_, _ string, out []byte) uint64 { return unavailable(out) }
func hostCount(uint32, string, string)                {}
func hostConfig(key string, out []byte) uint64 {
	v, ok := nativeEnv[key]
	if !ok {
		return abi.PackResult(abi.StatusNotFound, 0)
	}
	if len(v) <= len(out) {
		copy(out, v)
	}
	return abi.PackResult(abi.StatusOK, uint32(len(v)))
}
