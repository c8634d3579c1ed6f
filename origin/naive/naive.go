// Package naive is the benchmark baseline the origin is measured against:
// a plain net/http server taking one JSON request per vote and doing one
// SADD (dedupe) plus one HINCRBY (count) per vote through go-redis. It is
// deliberately simple and is not used in production.
package naive

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/edgepoll/edgepoll/shared"
)

// Vote is the request body of POST /vote.
type Vote struct {
	Poll   string `json:"poll"`
	Voter  string `json:"voter"`
	Choice int    `json:"choice"`
}

// Handler serves POST /vote.
type Handler struct {
	rdb redis.UniversalClient
}

// New returns a Handler storing votes in rdb.
func New(rdb redis.UniversalClient) *Handler { return &Handler{rdb: rdb} }

// ServeHTTP counts one vote: 202 when counted, 409 for a repeat voter.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/vote" {
		http.Error(w, `{"error":{"code":"not_found","message":"POST /vote"}}`, http.StatusNotFound)
		return
	}
	var v Vote
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&v); err != nil ||
		!shared.ValidPollID(v.Poll) || v.Voter == "" || v.Choice < 0 || v.Choice >= shared.MaxOptions {
		http.Error(w, `{"error":{"code":"invalid","message":"bad vote"}}`, http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	added, err := h.rdb.SAdd(ctx, "naive:{"+v.Poll+"}:voters", v.Voter).Result()
	if err != nil {
		http.Error(w, `{"error":{"code":"unavailable","message":"redis"}}`, http.StatusServiceUnavailable)
		return
	}
	if added == 0 {
		w.WriteHeader(http.StatusConflict)
		return
	}
	if err := h.rdb.HIncrBy(ctx, "naive:{"+v.Poll+"}:counts", strconv.Itoa(v.Choice), 1).Err(); err != nil {
		http.Error(w, `{"error":{"code":"unavailable","message":"redis"}}`, http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
