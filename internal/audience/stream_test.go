//go:build linux

package audience

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/harnesstest"
	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/internal/redistest"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/origin/rehearse"
)

// sseEvent is one parsed event of a stream.
type sseEvent struct {
	id, data string
}

// readEvents parses Server-Sent Events from r into ch until it fails.
func readEvents(r *bufio.Reader, ch chan<- sseEvent) {
	defer close(ch)
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.data != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[6:]
		}
	}
}

func openStream(t *testing.T, url, lastID string) (chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 64)
	if resp.StatusCode == 200 {
		go readEvents(bufio.NewReader(resp.Body), ch)
	}
	return ch, resp
}

// TestStreamHarness checks GET /v1/polls/{id}/stream through the harness
// against a real origin and Redis: an event per new snapshot version, with
// the version as id, resumed by Last-Event-ID, and the results route's
// errors before the stream starts.
func TestStreamHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis, an origin and the harness")
	}
	rs := redistest.Start(t)
	o := origintest.Start(t, rs.URL)
	h := harnesstest.Start(t, harnesstest.Options{Origin: o.URL, IngestKey: o.IngestKey.ID + "=" + string(o.IngestKey.Secret)})
	admin := adminclient.New(o.URL, o.AdminToken)
	harnesstest.OpenPoll(t, admin, "live", "a", "b")

	if _, resp := openStream(t, h.URL()+"/v1/polls/nope/stream", ""); resp.StatusCode != 404 {
		t.Fatalf("unknown poll: %d, want 404", resp.StatusCode)
	}
	ch, resp := openStream(t, h.URL()+"/v1/polls/live/stream", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	next := func() sseEvent {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatal("no event within 20 s")
		}
		return sseEvent{}
	}
	first := next()
	if !strings.Contains(first.data, `"poll":"live"`) || !strings.Contains(first.data, `"voters":0`) {
		t.Fatalf("first event: %+v", first)
	}
	v0, err := strconv.ParseUint(first.id, 10, 64)
	if err != nil {
		t.Fatalf("event id %q is not a version", first.id)
	}
	// Votes arrive: new versions come as events until every voter shows.
	rep, err := rehearse.Run(context.Background(), rehearse.Config{Edge: h.URL(), Poll: "live", Concurrency: 4, Voters: 40})
	if err != nil || rep.Acknowledged != 40 {
		t.Fatalf("votes: %v %+v", err, rep)
	}
	last := first
	for !strings.Contains(last.data, `"voters":40`) {
		ev := next()
		v, _ := strconv.ParseUint(ev.id, 10, 64)
		lv, _ := strconv.ParseUint(last.id, 10, 64)
		if v <= lv {
			t.Fatalf("event version %d after %d", v, lv)
		}
		last = ev
	}
	if lv, _ := strconv.ParseUint(last.id, 10, 64); lv <= v0 {
		t.Fatalf("final version %d not after %d", lv, v0)
	}
	// A client resuming at the current version gets no repeat of it.
	ch2, resp2 := openStream(t, h.URL()+"/v1/polls/live/stream", last.id)
	if resp2.StatusCode != 200 {
		t.Fatalf("resume: %d", resp2.StatusCode)
	}
	select {
	case ev := <-ch2:
		t.Fatalf("resumed stream repeated an event: %+v", ev)
	case <-time.After(3 * time.Second):
	}
}
