package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/wasm/stream"
)

func TestWrite(t *testing.T) {
	first, err := stream.Parse(`"v1"`, []byte(`{"poll":"p","version":1,"voters":0}`))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	next := func(_ context.Context, etag string) (*stream.Snapshot, error) {
		switch calls.Add(1) {
		case 1:
			return nil, nil // unchanged
		case 2:
			return nil, errors.New("origin down") // skipped
		case 3:
			return stream.Parse(`"v2"`, []byte("{\"version\":2,\n\"voters\":1}"))
		}
		if etag != `"v2"` {
			t.Errorf("conditional read with %q, want the last ETag", etag)
		}
		return nil, nil
	}
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	err = stream.Write(context.Background(), w, first, "", next,
		stream.Options{Interval: time.Millisecond, Heartbeat: 3 * time.Millisecond, Lifetime: 60 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"retry: 2000\n\n", "id: 1\ndata: {\"poll\":\"p\",\"version\":1,\"voters\":0}\n\n",
		"id: 2\ndata: {\"version\":2,\ndata: \"voters\":1}\n\n", ": keep-alive\n\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("stream lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "id: ") != 2 {
		t.Errorf("want 2 events:\n%s", got)
	}
}

func TestWriteResumes(t *testing.T) {
	first, _ := stream.Parse("", []byte(`{"version":7}`))
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	nothing := func(context.Context, string) (*stream.Snapshot, error) { return nil, nil }
	if err := stream.Write(ctx, w, first, "7", nothing, stream.Options{Interval: time.Millisecond}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	if strings.Contains(out.String(), "id: 7") {
		t.Fatalf("resumed at 7 but got it again:\n%s", out.String())
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{``, `{}`, `{"version":"x"}`, `[1]`} {
		if _, err := stream.Parse("", []byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
