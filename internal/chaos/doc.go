// Package chaos is the platform's fault suite (make chaos): Redis with
// fsync durability, two origin processes and the wazero harness as the
// edge, with a fault proxy between the edge and the origins, under load
// from the rehearse engine while processes are killed, stopped and cut
// off. At the end every vote answered 202 must be counted exactly once.
//
// The test runs only with CHAOS=1 (CHAOS_SHORT=1 for a run of about a
// minute); plain go test skips it.
package chaos
