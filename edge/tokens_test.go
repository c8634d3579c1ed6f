package edge_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/edgepoll/edgepoll/edge"
	"github.com/edgepoll/edgepoll/edge/edgetest"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/token"
)

// tokenHost is a FakeHost that also implements edge.TokenService (as the
// wasm guest does), with shared/token under the table's secret, counting calls.
type tokenHost struct {
	*edgetest.FakeHost
	secret         []byte
	issued, verify *atomic.Int64
}

func (h tokenHost) IssueToken(poll string, v shared.VoterID) (string, error) {
	h.issued.Add(1)
	return token.Issue(h.secret, poll, v), nil
}

func (h tokenHost) VerifyToken(poll, tok string) (shared.VoterID, error) {
	h.verify.Add(1)
	return token.Verify(h.secret, poll, tok)
}

// TestTableWithTokenService: a host that implements edge.TokenService does
// every token operation, and the behaviour table is unchanged.
func TestTableWithTokenService(t *testing.T) {
	var issued, verify atomic.Int64
	edgetest.RunTable(t, func(t *testing.T, host edge.Host, cfg edge.Config) http.Handler {
		return edge.New(cfg, tokenHost{host.(*edgetest.FakeHost), cfg.TokenSecret, &issued, &verify})
	})
	if issued.Load() == 0 || verify.Load() == 0 {
		t.Fatalf("token service calls: %d issued, %d verified; want both > 0", issued.Load(), verify.Load())
	}
}
