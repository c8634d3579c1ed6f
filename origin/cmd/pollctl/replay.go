package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

// Outcomes of one replayed batch.
const (
	outcomeDryRun       = "dry-run"      // read and shown, not sent
	outcomeApplied      = "applied"      // the origin applied it now (votes counted, or duplicates of counted ones)
	outcomeReplayed     = "replayed"     // the origin had applied it before and answered its original receipt
	outcomeRefused      = "refused"      // the origin refused the batch itself (4xx): sending it again cannot help
	outcomeUnauthorized = "unauthorized" // the origin refused the signature (401): fix the key or the clock, then replay again
	outcomeFailed       = "failed"       // not delivered (network, 5xx): replay again later
	outcomeUnreadable   = "unreadable"   // the input holds no batch body pollctl can read
)

// replayItem is one batch read from the input and what became of it.
type replayItem struct {
	// Source is where it was read: a file, file:line or file#message.
	Source string `json:"source"`
	Batch  string `json:"batch,omitempty"`
	Edge   string `json:"edge,omitempty"`
	Votes  int    `json:"votes"`
	// Polls counts the batch's votes per poll id.
	Polls map[string]int `json:"polls,omitempty"`
	// FirstVote and LastVote bound the votes' edge receive times.
	FirstVote *time.Time `json:"first_vote,omitempty"`
	LastVote  *time.Time `json:"last_vote,omitempty"`
	// DeadLettered is the refusal the input records (the harness's
	// dead-letter line: when, status, the origin's message).
	DeadLettered *deadLettered `json:"dead_lettered,omitempty"`
	// Undecodable says why pollctl could not decode the batch; it is still
	// sent with --send, so the origin judges it as it came.
	Undecodable string `json:"undecodable,omitempty"`

	Outcome     string            `json:"outcome"`
	Status      int               `json:"status,omitempty"`
	OriginError string            `json:"origin_error,omitempty"`
	Accepted    uint32            `json:"accepted"`
	Duplicate   uint32            `json:"duplicate"`
	Rejected    map[string]uint32 `json:"rejected,omitempty"`
	// Advice says what to do about a batch that was not applied.
	Advice string `json:"advice,omitempty"`

	body []byte
}

// deadLettered is what a harness dead-letter line records of the refusal.
type deadLettered struct {
	Time        string `json:"time,omitempty"`
	Status      int    `json:"status,omitempty"`
	OriginError string `json:"origin_error,omitempty"`
}

// replayTotals sums a replay's outcomes.
type replayTotals struct {
	Batches  int            `json:"batches"`
	Votes    int            `json:"votes"`
	Outcomes map[string]int `json:"outcomes"`
	// Accepted, Duplicate and Rejected add up the batches applied now.
	Accepted  uint64            `json:"accepted"`
	Duplicate uint64            `json:"duplicate"`
	Rejected  map[string]uint64 `json:"rejected,omitempty"`
	// ReplayedVotes is the votes of batches the origin had applied before
	// (their receipts are the original ones; nothing changed now).
	ReplayedVotes uint64 `json:"replayed_votes"`
}

// replayReport is replay's -o json output.
type replayReport struct {
	Origin  string        `json:"origin"`
	DryRun  bool          `json:"dry_run"`
	Batches []*replayItem `json:"batches"`
	Totals  replayTotals  `json:"totals"`
}

const replayHelp = `Re-send dead-lettered vote batches to the origin's ingest endpoint, safely.

Inputs, any mix:
  - the wazero harness's SPOOL/dead-letter.jsonl (one JSON object a line, body_base64);
  - a Cloudflare Queues pull response saved as JSON ({"result":{"messages":[…]}}, or
    JSON lines of such messages), as from the dead-letter queue's HTTP pull consumer;
  - raw MessagePack batch files, one batch per file.

Each batch is decoded and shown (batch id, edge, votes, polls, receive times). Nothing is
sent without --send. With --send each batch is signed afresh with the ingest key
(--ingest-key or EDGEPOLL_INGEST_KEY, kid=secret, one of the origin's INGEST_KEYS) and
posted to ORIGIN/v1/ingest with its batch id unchanged, one at a time. The origin counts
each voter once per poll: a batch it applied before answers its original receipt
(replayed) or, past its replay memory (twice the sign window), counts its votes as
duplicates; nothing is counted twice, so replaying again is always safe.

Per batch: applied, replayed, refused (the origin's error: sending it again cannot help),
unauthorized (wrong key or clock), failed (not delivered: replay again later) or
unreadable (a line or file with no batch in it; the others still go). Exit status: 0 when
every batch was applied or replayed (or, without --send, read and decoded), 5 if any was
unauthorized, 1 if any failed, else 2 if any was refused, unreadable or (without --send)
undecodable. See docs/OPERATIONS.md, "After a dead-letter delivery".

Examples:
  pollctl replay .dev/spool/dead-letter.jsonl
  EDGEPOLL_INGEST_KEY="$INGEST_KEY" pollctl replay --send --origin https://origin.example dead-letter.jsonl
  pollctl replay --send dlq-pull-1.json dlq-pull-2.json batch-*.msgpack`

// replay runs "pollctl replay FILE... [--send]".
func (c *cli) replay(ctx context.Context, args []string) error {
	fs := c.newFlags("replay", "[--send] [--ingest-key KID=SECRET] <file>...", replayHelp)
	send := fs.Bool("send", false, "post the batches to the origin (without it, only show them)")
	dryRun := fs.Bool("dry-run", false, "only show the batches (the default; for scripts that say so)")
	key := fs.String("ingest-key", "", "the ingest `kid=secret` to sign with (env EDGEPOLL_INGEST_KEY; prefer the env)")
	timeout := fs.Duration("timeout", 30*time.Second, "per-batch request timeout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("replay needs at least one file (dead-letter.jsonl, a saved pull response, or MessagePack batches)")
	}
	if *send && *dryRun {
		return usagef("--send and --dry-run contradict each other")
	}
	if c.g.output != "table" && c.g.output != "json" {
		return usagef("-o must be table or json, not %q", c.g.output)
	}
	var k sign.Key
	if *send {
		if !strings.HasPrefix(c.g.origin, "http://") && !strings.HasPrefix(c.g.origin, "https://") {
			return usagef("--origin must be an http:// or https:// URL, not %q", c.g.origin)
		}
		if *key == "" {
			*key = os.Getenv("EDGEPOLL_INGEST_KEY")
		}
		if *key == "" {
			return usagef("--send needs the ingest key: set EDGEPOLL_INGEST_KEY or --ingest-key to kid=secret (one of the origin's INGEST_KEYS)")
		}
		keys, err := sign.ParseKeys(*key)
		if err != nil {
			return usagef("ingest key: %s", shared.ErrorMessage(err))
		}
		if len(keys) != 1 {
			return usagef("ingest key: give exactly one kid=secret, not %d", len(keys))
		}
		k = keys[0]
	}

	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var items []*replayItem
	for _, p := range pos {
		items = append(items, readReplayFile(p)...)
	}
	if *send {
		n := 0
		for _, it := range items {
			if it.Outcome != outcomeUnreadable {
				n++
			}
		}
		fmt.Fprintf(c.stderr, "sending %d batch(es) to %s/v1/ingest\n", n, strings.TrimRight(c.g.origin, "/"))
	}
	sender := &ingestSender{origin: strings.TrimRight(c.g.origin, "/"), key: k, http: &http.Client{Timeout: *timeout}}
	for _, it := range items {
		if it.Outcome == outcomeUnreadable {
			continue
		}
		if !*send {
			it.Outcome = outcomeDryRun
			continue
		}
		if err := ctx.Err(); err != nil {
			it.Outcome, it.OriginError = outcomeFailed, "interrupted before it was sent"
			continue
		}
		sender.send(ctx, it)
		if it.Outcome != outcomeApplied && it.Outcome != outcomeReplayed {
			log.Warn("batch not applied", "source", it.Source, "batch", it.Batch, "outcome", it.Outcome,
				"status", it.Status, "origin_error", it.OriginError)
		}
	}
	for _, it := range items {
		it.Advice = replayAdvice(it)
	}
	rep := &replayReport{Origin: sender.origin, DryRun: !*send, Batches: items, Totals: sumReplay(items)}
	if c.g.output == "json" {
		if err := c.printJSON(rep); err != nil {
			return err
		}
	} else if err := printReplay(c.stdout, rep); err != nil {
		return err
	}
	return replayExit(rep)
}

// readReplayFile reads every batch in one input file. A file whose first
// byte (after white space) is '{' or '[' is JSON: a whole document (a pull
// response, one message or dead-letter object, or an array of them) or,
// failing that, JSON lines; anything else is one raw MessagePack batch
// (which always starts with an array header, never '{' or '[').
func readReplayFile(path string) []*replayItem {
	data, err := os.ReadFile(path)
	if err != nil {
		return []*replayItem{unreadable(path, fmt.Errorf("read: %w", err))}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return []*replayItem{unreadable(path, errors.New("empty file"))}
	}
	if trimmed[0] != '{' && trimmed[0] != '[' {
		it := &replayItem{Source: path}
		setBody(it, data)
		return []*replayItem{it}
	}
	if json.Valid(trimmed) {
		return fromJSONDocument(path, trimmed)
	}
	var out []*replayItem
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		src := path + ":" + strconv.Itoa(i+1)
		var rec replayRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			out = append(out, unreadable(src, fmt.Errorf("not a JSON object (a truncated or damaged line?): %w", err)))
			continue
		}
		out = append(out, rec.items(src)...)
	}
	return out
}

// fromJSONDocument reads one JSON document: an object (a pull response, one
// pulled message or one dead-letter entry) or an array of objects.
func fromJSONDocument(path string, doc []byte) []*replayItem {
	if doc[0] == '[' {
		var recs []json.RawMessage
		if err := json.Unmarshal(doc, &recs); err != nil {
			return []*replayItem{unreadable(path, fmt.Errorf("JSON array: %w", err))}
		}
		var out []*replayItem
		for i, raw := range recs {
			src := fmt.Sprintf("%s#%d", path, i+1)
			var rec replayRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				out = append(out, unreadable(src, fmt.Errorf("not a message object: %w", err)))
				continue
			}
			out = append(out, rec.items(src)...)
		}
		return out
	}
	var rec replayRecord
	if err := json.Unmarshal(doc, &rec); err != nil {
		return []*replayItem{unreadable(path, fmt.Errorf("JSON object: %w", err))}
	}
	// A single line of dead-letter.jsonl is a whole document too: name it
	// as a line.
	src := path
	if rec.BodyBase64 != nil {
		src = path + ":1"
	}
	return rec.items(src)
}

// replayRecord is any JSON object replay reads: a harness dead-letter line
// (wasm/originhost's deadLetterEntry), a Cloudflare Queues message from the
// pull API, or a whole pull response.
type replayRecord struct {
	// dead-letter.jsonl
	Time        string  `json:"time"`
	Batch       string  `json:"batch"`
	Status      int     `json:"status"`
	OriginError string  `json:"origin_error"`
	BodyBase64  *string `json:"body_base64"`

	// a pulled queue message
	ID       string         `json:"id"`
	Body     *string        `json:"body"`
	Metadata map[string]any `json:"metadata"`

	// a pull response: {"result":{"messages":[…]}}
	Result *struct {
		Messages []json.RawMessage `json:"messages"`
	} `json:"result"`
}

// items turns a record into the batches it holds.
func (r *replayRecord) items(src string) []*replayItem {
	switch {
	case r.Result != nil:
		if len(r.Result.Messages) == 0 {
			return []*replayItem{unreadable(src, errors.New("pull response with no messages (the queue was empty, or every message was leased)"))}
		}
		var out []*replayItem
		for i, raw := range r.Result.Messages {
			msrc := fmt.Sprintf("%s#%d", src, i+1)
			var m replayRecord
			if err := json.Unmarshal(raw, &m); err != nil || m.Body == nil {
				out = append(out, unreadable(msrc, fmt.Errorf("not a queue message with a body: %v", err)))
				continue
			}
			out = append(out, m.items(msrc)...)
		}
		return out
	case r.BodyBase64 != nil:
		it := &replayItem{Source: src, DeadLettered: &deadLettered{Time: r.Time, Status: r.Status, OriginError: r.OriginError}}
		body, err := base64.StdEncoding.DecodeString(*r.BodyBase64)
		if err != nil {
			return []*replayItem{unreadable(src, fmt.Errorf("body_base64: %w", err))}
		}
		setBody(it, body)
		if it.Batch == "" {
			it.Batch = r.Batch
		}
		return []*replayItem{it}
	case r.Body != nil:
		if r.ID != "" {
			src += " (message " + r.ID + ")"
		}
		ct, _ := r.Metadata["CF-Content-Type"].(string)
		if ct != "" && ct != "bytes" {
			return []*replayItem{unreadable(src, fmt.Errorf("queue message of content type %q: the Worker sends batches as bytes", ct))}
		}
		// The pull API returns a bytes message base64-encoded.
		body, err := base64.StdEncoding.DecodeString(*r.Body)
		if err != nil {
			return []*replayItem{unreadable(src, fmt.Errorf("message body is not base64 (as the pull API returns bytes messages): %w", err))}
		}
		it := &replayItem{Source: src}
		setBody(it, body)
		return []*replayItem{it}
	}
	return []*replayItem{unreadable(src, errors.New("JSON object with neither body_base64 (dead-letter.jsonl) nor body (a queue message) nor result.messages (a pull response)"))}
}

// unreadable is an input that holds no batch body.
func unreadable(src string, err error) *replayItem {
	return &replayItem{Source: src, Outcome: outcomeUnreadable, OriginError: err.Error()}
}

// setBody keeps body and fills in what it holds, or why it cannot be decoded.
func setBody(it *replayItem, body []byte) {
	it.body = body
	var b shared.Batch
	if err := shared.UnmarshalBatch(body, &b); err != nil {
		it.Undecodable = shared.ErrorMessage(err)
		return
	}
	it.Batch, it.Edge, it.Votes = b.ID.String(), b.Edge, len(b.Votes)
	it.Polls = map[string]int{}
	var lo, hi int64
	for i, v := range b.Votes {
		it.Polls[v.Poll]++
		if i == 0 || v.At < lo {
			lo = v.At
		}
		if i == 0 || v.At > hi {
			hi = v.At
		}
	}
	first, last := shared.FromUnixMilli(lo).UTC(), shared.FromUnixMilli(hi).UTC()
	it.FirstVote, it.LastVote = &first, &last
}

// ingestSender posts batches to one origin's ingest endpoint.
type ingestSender struct {
	origin string
	key    sign.Key
	http   *http.Client
}

// send signs it.body now and posts it, recording the outcome in it.
func (s *ingestSender) send(ctx context.Context, it *replayItem) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.origin+"/v1/ingest", bytes.NewReader(it.body))
	if err != nil {
		it.Outcome, it.OriginError = outcomeFailed, fmt.Sprintf("build request: %v", err)
		return
	}
	req.Header.Set("Content-Type", shared.ContentTypeMsgpack)
	sign.Sign(s.key, time.Now(), it.body).SetHeaders(req.Header.Set)
	resp, err := s.http.Do(req)
	if err != nil {
		it.Outcome, it.OriginError = outcomeFailed, fmt.Sprintf("cannot reach origin %s: %v", s.origin, err)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	it.Status = resp.StatusCode
	if err != nil {
		it.Outcome, it.OriginError = outcomeFailed, fmt.Sprintf("read the origin's answer: %v", err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		it.OriginError = originMessage(out, resp.Status)
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			it.Outcome = outcomeUnauthorized
		case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			it.Outcome = outcomeFailed
		default:
			it.Outcome = outcomeRefused
		}
		return
	}
	var r shared.Receipt
	if err := shared.UnmarshalReceipt(out, &r); err != nil {
		// Applied or not, the origin said 200: replaying again tells.
		it.Outcome, it.OriginError = outcomeFailed, fmt.Sprintf("the origin answered 200 with an unreadable receipt (%s); replay again to learn its fate", shared.ErrorMessage(err))
		return
	}
	it.Outcome = outcomeApplied
	if r.Replayed {
		it.Outcome = outcomeReplayed
	}
	it.Accepted, it.Duplicate = r.Accepted, r.Duplicate
	for i, n := range r.Rejected {
		if n > 0 {
			if it.Rejected == nil {
				it.Rejected = map[string]uint32{}
			}
			it.Rejected[shared.Reasons[i]] = n
		}
	}
}

// originMessage is the message of the origin's JSON error body, or status.
func originMessage(body []byte, status string) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return e.Error.Code + ": " + e.Error.Message
	}
	return "origin answered " + status
}

// replayAdvice says what to do about a batch that was not applied, and
// what rejected votes mean.
func replayAdvice(it *replayItem) string {
	switch it.Outcome {
	case outcomeUnreadable:
		return "no batch could be read here; the other inputs were still read. Take the body again from its source " +
			"(the dead-letter line, the queue message) if it was cut while copying; a body damaged at the source cannot be counted"
	case outcomeRefused:
		return "the origin refuses the batch itself, and will refuse it the same way however often it is sent: " +
			"nothing of it was applied. If the origin is older than the edge that wrote it (a wire format it cannot read), " +
			"upgrade the origin and replay it then; otherwise the batch is damaged and its votes cannot be counted: " +
			"keep the file and record its batch id and vote count as votes lost"
	case outcomeUnauthorized:
		return "the origin did not accept the signature: the key must be one of the origin's INGEST_KEYS (kid=secret) and " +
			"this machine's clock within the origin's sign window (5 min by default). Nothing was applied; fix it and replay again"
	case outcomeFailed:
		return "not delivered (the origin or Redis unavailable, or the network): replay again once /readyz answers 200; " +
			"a batch that did reach the origin answers replayed, so nothing counts twice"
	case outcomeDryRun:
		if it.Undecodable != "" {
			return "pollctl cannot decode this batch (" + it.Undecodable + "); --send posts it anyway, as it came, for the origin to judge, " +
				"and an origin of the same version refuses it the same way"
		}
	}
	var notes []string
	if it.Rejected[shared.RejectClosed] > 0 || it.Rejected[shared.RejectNotOpen] > 0 {
		notes = append(notes, "votes received outside the poll's voting window are refused for good, as they would have been on time")
	}
	if it.Rejected[shared.RejectUnknownPoll] > 0 {
		notes = append(notes, "unknown_poll: the poll was deleted (or never existed on this origin); those votes cannot be counted")
	}
	if it.Outcome == outcomeApplied && it.Duplicate > 0 && it.Accepted == 0 {
		notes = append(notes, "every vote was already counted (the batch was applied before, longer ago than the origin remembers batch ids)")
	}
	return strings.Join(notes, "; ")
}

// sumReplay adds up the items' outcomes.
func sumReplay(items []*replayItem) replayTotals {
	t := replayTotals{Outcomes: map[string]int{}}
	for _, it := range items {
		t.Outcomes[it.Outcome]++
		if it.Outcome == outcomeUnreadable {
			continue
		}
		t.Batches++
		t.Votes += it.Votes
		if it.Outcome == outcomeReplayed {
			t.ReplayedVotes += uint64(it.Votes)
			continue
		}
		t.Accepted += uint64(it.Accepted)
		t.Duplicate += uint64(it.Duplicate)
		for r, n := range it.Rejected {
			if t.Rejected == nil {
				t.Rejected = map[string]uint64{}
			}
			t.Rejected[r] += uint64(n)
		}
	}
	return t
}

// replayExit maps the worst outcome to the CLI's exit codes: unauthorized
// (5) before failed (1) before refused or unreadable (2).
func replayExit(rep *replayReport) error {
	o := rep.Totals.Outcomes
	undecodable := 0
	for _, it := range rep.Batches {
		if rep.DryRun && it.Undecodable != "" {
			undecodable++
		}
	}
	switch {
	case o[outcomeUnauthorized] > 0:
		return shared.Errorf(shared.EUNAUTHORIZED, "replay: %d batch(es) refused for their signature: check the ingest key and this machine's clock", o[outcomeUnauthorized])
	case o[outcomeFailed] > 0:
		return shared.Errorf(shared.EUNAVAILABLE, "replay: %d batch(es) not delivered: replay again later (safe)", o[outcomeFailed])
	case o[outcomeRefused] > 0 || o[outcomeUnreadable] > 0:
		return shared.Errorf(shared.EINVALID, "replay: %d batch(es) refused by the origin, %d input(s) unreadable (see the notes above)", o[outcomeRefused], o[outcomeUnreadable])
	case undecodable > 0:
		return shared.Errorf(shared.EINVALID, "replay: %d batch(es) pollctl cannot decode (see the notes above)", undecodable)
	}
	return nil
}

// printReplay writes the table: one row per batch, its notes, the totals.
func printReplay(w io.Writer, rep *replayReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tBATCH\tEDGE\tVOTES\tPOLLS\tRECEIVED (UTC)\tRESULT")
	for _, it := range rep.Batches {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", it.Source, dash(it.Batch), dash(it.Edge), it.Votes,
			dash(pollList(it.Polls)), dash(voteRange(it)), resultText(it))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, it := range rep.Batches {
		if it.DeadLettered != nil && it.DeadLettered.Status != 0 {
			fmt.Fprintf(w, "\n%s: dead-lettered %s with %d: %s", it.Source, it.DeadLettered.Time, it.DeadLettered.Status, it.DeadLettered.OriginError)
		}
		if it.Advice != "" {
			fmt.Fprintf(w, "\n%s: %s", it.Source, it.Advice)
		}
	}
	t := rep.Totals
	fmt.Fprintf(w, "\n\nbatches  %d read", t.Batches)
	for _, o := range []string{outcomeApplied, outcomeReplayed, outcomeRefused, outcomeUnauthorized, outcomeFailed, outcomeUnreadable} {
		if t.Outcomes[o] > 0 || (!rep.DryRun && (o == outcomeApplied || o == outcomeReplayed || o == outcomeRefused)) {
			fmt.Fprintf(w, ", %d %s", t.Outcomes[o], o)
		}
	}
	fmt.Fprintf(w, "\nvotes    %d", t.Votes)
	if !rep.DryRun {
		fmt.Fprintf(w, ": %d counted now, %d already counted (duplicate), %d rejected", t.Accepted, t.Duplicate, sumValues(t.Rejected))
		for _, r := range slices.Sorted(maps.Keys(t.Rejected)) {
			fmt.Fprintf(w, " %s:%d", r, t.Rejected[r])
		}
		_, err := fmt.Fprintf(w, ", %d in batches applied before (replayed: their original receipts, nothing changed now)\n", t.ReplayedVotes)
		return err
	}
	_, err := fmt.Fprintf(w, "\ndry run: nothing was sent. Add --send to post them to %s/v1/ingest.\n", rep.Origin)
	return err
}

func resultText(it *replayItem) string {
	switch it.Outcome {
	case outcomeDryRun:
		if it.Undecodable != "" {
			return "not sent; cannot decode: " + it.Undecodable
		}
		return "not sent (dry run)"
	case outcomeApplied, outcomeReplayed:
		s := fmt.Sprintf("%s: %d counted, %d duplicate", it.Outcome, it.Accepted, it.Duplicate)
		for _, r := range slices.Sorted(maps.Keys(it.Rejected)) {
			s += fmt.Sprintf(", rejected %s:%d", r, it.Rejected[r])
		}
		return s
	case outcomeUnreadable:
		return "unreadable: " + it.OriginError
	}
	if it.Status != 0 {
		return fmt.Sprintf("%s %d: %s", it.Outcome, it.Status, it.OriginError)
	}
	return it.Outcome + ": " + it.OriginError
}

func pollList(m map[string]int) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", p, m[p]))
	}
	return strings.Join(parts, ",")
}

func voteRange(it *replayItem) string {
	if it.FirstVote == nil {
		return ""
	}
	const f = "2006-01-02T15:04:05.000"
	if it.FirstVote.Equal(*it.LastVote) {
		return it.FirstVote.Format(f)
	}
	return it.FirstVote.Format(f) + "–" + it.LastVote.Format("15:04:05.000")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sumValues(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
