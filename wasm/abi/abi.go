// Package abi is the contract between the edgepoll wasm guest (wasm/guest)
// and its host (wasm/harness): export and import names, the version the host
// checks, the status codes host calls return, and the MessagePack payloads
// both sides exchange. wasm/ABI.md documents it byte by byte.
//
// It imports only the standard library and shared, and uses no reflection, so
// it builds natively, for GOOS=wasip1 and with TinyGo.
package abi

import "github.com/edgepoll/edgepoll/shared"

// Version is the ABI version. The guest exports it as ep_abi_version; the host
// refuses to serve a module whose version differs.
const Version = 5

// ImportModule is the wasm module name of the host imports.
const ImportModule = "edgepoll"

// Guest exports.
const (
	ExportABIVersion = "ep_abi_version" // () -> i32
	ExportInit       = "ep_init"        // () -> i64 packed (ptr, len) of an error message; len 0 = ok
	ExportAlloc      = "ep_alloc"       // (size i32) -> ptr i32
	ExportFree       = "ep_free"        // (ptr i32) -> ()
	ExportHandle     = "ep_handle"      // (ptr i32, len i32) -> i64 packed (ptr, len) of a Response
	ExportInitialize = "_initialize"    // WASI reactor start function
)

// Host imports, all in module ImportModule.
const (
	ImportNow     = "now"     // () -> i64 Unix nanoseconds
	ImportPoll    = "poll"    // (id_ptr, id_len, out_ptr, out_cap i32) -> i64 result
	ImportResults = "results" // (id_ptr, id_len, msgpack i32, out_ptr, out_cap i32) -> i64 result
	ImportSubmit  = "submit"  // (vote_ptr, vote_len, out_ptr, out_cap i32) -> i64 result
	ImportAllow   = "allow"   // (key_ptr, key_len i32) -> i32 (1 allow, 0 deny)
	ImportLog     = "log"     // (level i32, msg_ptr, msg_len, attrs_ptr, attrs_len i32) -> ()
	ImportConfig  = "config"  // (key_ptr, key_len, out_ptr, out_cap i32) -> i64 result
	// ImportTokenIssue returns the voter token (shared/token) binding a
	// 16-byte voter id to a poll: (poll_ptr, poll_len, voter_ptr, out_ptr, out_cap i32) -> i64 result.
	ImportTokenIssue = "token_issue"
	// ImportTokenVerify checks a voter token for a poll and writes the
	// 16-byte voter id: (poll_ptr, poll_len, tok_ptr, tok_len, out_ptr, out_cap i32) -> i64 result.
	ImportTokenVerify = "token_verify"
	// ImportSeenAdd records that a voter voted in a poll in the location's
	// dedupe memory: (poll_ptr, poll_len, voter_ptr i32) -> i32 (1 new, 0 seen before).
	ImportSeenAdd = "seen_add"
	// ImportSeenRemove forgets a seen_add: (poll_ptr, poll_len, voter_ptr i32) -> ().
	ImportSeenRemove = "seen_remove"
	// ImportLimit counts one event under one of the location's rate limits:
	// (limiter i32, key i64, now i64 Unix ns) -> i64 (0 conforms; otherwise
	// the nanoseconds to wait, at least 1).
	ImportLimit = "limit"
	// ImportVoted asks whether the origin counts a voter's vote:
	// (poll_ptr, poll_len, voter_ptr, out_ptr, out_cap i32) -> i64 result
	// whose one byte is 1 (counted) or 0.
	ImportVoted = "voted"
	// ImportInviteRedeem trades an invite code (canonical, invite.Symbols
	// bytes) at the origin, once for all edges:
	// (poll_ptr, poll_len, code_ptr, code_len, out_ptr, out_cap i32) -> i64
	// result with no payload (StatusConflict: already used; StatusForbidden:
	// unknown code).
	ImportInviteRedeem = "invite_redeem"
	// ImportCount counts an identity event for the integrity report:
	// (event i32, poll_ptr, poll_len, key_ptr, key_len i32) -> (), event
	// CountTokenIssued (key: the client address or prefix) or
	// CountTokenRefused (key: the reason).
	ImportCount = "count"
)

// Events of the count import.
const (
	CountTokenIssued  = 0
	CountTokenRefused = 1
)

// Log levels passed to the log import.
const (
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

// LevelOf maps an edge.Host log level name to its number (unknown → info).
func LevelOf(name string) uint32 {
	switch name {
	case "debug":
		return LevelDebug
	case "warn":
		return LevelWarn
	case "error":
		return LevelError
	}
	return LevelInfo
}

// LevelName is the inverse of LevelOf.
func LevelName(level uint32) string {
	switch level {
	case LevelDebug:
		return "debug"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return "info"
}

// Status is the status half of a host call result. StatusOK is success; every
// other value is one shared error code.
type Status uint32

// Statuses returned by host calls. The numbering is part of the ABI.
const (
	StatusOK          Status = 0
	StatusInvalid     Status = 1
	StatusNotFound    Status = 2
	StatusConflict    Status = 3
	StatusUnauth      Status = 4
	StatusForbidden   Status = 5
	StatusRateLimited Status = 6
	StatusUnavailable Status = 7
	StatusInternal    Status = 8
	StatusTooLarge    Status = 9
	StatusUnsupported Status = 10
)

var codes = [...]shared.Code{
	StatusOK:          "",
	StatusInvalid:     shared.EINVALID,
	StatusNotFound:    shared.ENOTFOUND,
	StatusConflict:    shared.ECONFLICT,
	StatusUnauth:      shared.EUNAUTHORIZED,
	StatusForbidden:   shared.EFORBIDDEN,
	StatusRateLimited: shared.ERATELIMITED,
	StatusUnavailable: shared.EUNAVAILABLE,
	StatusInternal:    shared.EINTERNAL,
	StatusTooLarge:    shared.ETOOLARGE,
	StatusUnsupported: shared.EUNSUPPORTED,
}

// StatusOf returns the status for an error: StatusOK for nil, the code's
// status for a *shared.Error, StatusInternal otherwise.
func StatusOf(err error) Status {
	c := shared.ErrorCode(err)
	for i, k := range codes {
		if k == c {
			return Status(i)
		}
	}
	return StatusInternal
}

// Code returns the shared error code of s ("" for StatusOK, EINTERNAL for an
// unknown status).
func (s Status) Code() shared.Code {
	if int(s) < len(codes) {
		return codes[s]
	}
	return shared.EINTERNAL
}

// Err turns a non-OK status and its message into a *shared.Error (nil for OK).
func (s Status) Err(message string) error {
	if s == StatusOK {
		return nil
	}
	if message == "" {
		message = "host call failed"
	}
	return shared.Errorf(s.Code(), "%s", message)
}

// PackResult packs a host call result: the status in the high 32 bits and a
// byte length in the low 32 bits.
func PackResult(s Status, n uint32) uint64 { return uint64(s)<<32 | uint64(n) }

// UnpackResult is the inverse of PackResult.
func UnpackResult(r uint64) (Status, uint32) { return Status(r >> 32), uint32(r) }

// PackPtrLen packs a guest memory range as returned by ep_handle and ep_init:
// the pointer in the high 32 bits and the length in the low 32 bits.
func PackPtrLen(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// UnpackPtrLen is the inverse of PackPtrLen.
func UnpackPtrLen(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }

// Limits on payloads, so neither side trusts a length blindly.
const (
	MaxRequestBytes  = 1 << 20 // an encoded Request
	MaxResponseBytes = 8 << 20 // an encoded Response
	MaxHeaders       = 128     // header fields per Request/Response
	MaxHeaderBytes   = 16 << 10
	MaxURIBytes      = 8 << 10
	MaxMessageBytes  = 4 << 10 // error and log messages
)
