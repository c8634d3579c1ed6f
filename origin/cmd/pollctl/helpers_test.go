package main_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/internal/origintest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
)

func nowMilli() int64 { return time.Now().UnixMilli() }

// ingest posts a signed batch to the origin and fails unless it is accepted.
func ingest(t *testing.T, o *origintest.Origin, b *shared.Batch) {
	t.Helper()
	body, err := shared.MarshalBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", o.URL+"/v1/ingest", bytes.NewReader(body))
	sig := sign.Sign(o.IngestKey, time.Now(), body)
	req.Header.Set("Content-Type", shared.ContentTypeMsgpack)
	sig.SetHeaders(req.Header.Set)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var r shared.Receipt
	if resp.StatusCode != 200 || shared.UnmarshalReceipt(out, &r) != nil || int(r.Accepted) != len(b.Votes) {
		t.Fatalf("ingest: %d %q %+v", resp.StatusCode, out, r)
	}
}
