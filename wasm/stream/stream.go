// Package stream writes a poll's results as Server-Sent Events
// (GET /v1/polls/{id}/stream, docs/EDGE-API.md): one event per new snapshot
// version, with the version as the event id so Last-Event-ID resumes, read
// from the same edge cache as the results route, so the origin's load does
// not grow with viewers. The harness serves it; the Worker's glue has the
// same loop in JS (edge/worker/glue/worker.mjs).
package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Defaults of a stream; the Worker's glue uses the same.
const (
	// Interval is how often a stream re-reads the cached snapshot.
	Interval = time.Second
	// Lifetime bounds a stream; the client's EventSource reconnects with
	// Last-Event-ID.
	Lifetime = 5 * time.Minute
	// Heartbeat is the longest silence: a comment line keeps proxies from
	// closing an idle stream.
	Heartbeat = 15 * time.Second
	// RetryMillis is the reconnection delay sent to clients.
	RetryMillis = 2000
)

// Snapshot is one results answer: its ETag, version and JSON body.
type Snapshot struct {
	ETag    string
	Version uint64
	Body    []byte
}

// Parse reads the version of a results JSON body.
func Parse(etag string, body []byte) (*Snapshot, error) {
	var v struct {
		Version *uint64 `json:"version"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Version == nil {
		return nil, fmt.Errorf("results body without a version: %.100q", body)
	}
	return &Snapshot{ETag: etag, Version: *v.Version, Body: body}, nil
}

// Source re-reads the snapshot, conditionally on etag: nil, nil when it is
// unchanged.
type Source func(ctx context.Context, etag string) (*Snapshot, error)

// Options tune a stream; zero values take the defaults above.
type Options struct {
	Interval, Lifetime, Heartbeat time.Duration
}

// Write streams events to w, starting with first unless the client already
// has its version (lastEventID), until ctx ends, the lifetime is over or a
// write fails (the client went away). A failing read of the source is
// skipped: the stream waits for the next interval.
func Write(ctx context.Context, w *bufio.Writer, first *Snapshot, lastEventID string, next Source, o Options) error {
	if o.Interval <= 0 {
		o.Interval = Interval
	}
	if o.Lifetime <= 0 {
		o.Lifetime = Lifetime
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = Heartbeat
	}
	fmt.Fprintf(w, "retry: %d\n\n", RetryMillis)
	cur := first
	if lastEventID != strconv.FormatUint(first.Version, 10) {
		event(w, first)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	end := time.Now().Add(o.Lifetime)
	quiet := time.Now()
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-t.C:
			if now.After(end) {
				return nil
			}
			s, err := next(ctx, cur.ETag)
			switch {
			case err == nil && s != nil && s.Version != cur.Version:
				event(w, s)
				cur = s
			case now.Sub(quiet) >= o.Heartbeat:
				w.WriteString(": keep-alive\n\n")
			default:
				continue
			}
			quiet = now
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// event writes one snapshot; a body line break would end the data field,
// so each line gets its own data: prefix (results JSON has none).
func event(w *bufio.Writer, s *Snapshot) {
	fmt.Fprintf(w, "id: %d\n", s.Version)
	for _, line := range bytes.Split(s.Body, []byte("\n")) {
		w.WriteString("data: ")
		w.Write(line)
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
}
