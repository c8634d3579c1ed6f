// Package shared holds edgepoll's domain: polls, votes, batches, receipts and
// result snapshots, their validation and limits, the error type with codes,
// and the versioned MessagePack wire format (see docs/WIRE.md).
//
// It imports only the standard library and vmihailenco/msgpack/v5 and builds
// for native targets, GOOS=js and GOOS=wasip1, so the edge (Cloudflare Worker
// and wazero guest) and the origin share one definition of every rule.
package shared
