// Package chaos is the platform's fault suite: Redis with fsync
// durability, two origin processes and the wazero harness as the edge, with
// a fault proxy between the edge and the origins, under load from the
// rehearse engine while processes are killed, stopped and cut off. At the
// end every vote answered 202 must be counted exactly once.
//
// TestChaosShort (faults 1, 2, 4 and 5, about a minute) runs in make test;
// TestChaos, all eight faults, runs with CHAOS=1 (make chaos).
package chaos
