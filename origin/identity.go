package origin

import (
	"context"
	"unicode/utf8"

	"github.com/edgepoll/edgepoll/shared"
)

// Limits on one edge's identity report (POST /v1/polls/{id}/identity-stats).
const (
	MaxReportAddrs   = 256 // addresses (or IPv6 prefixes) per report
	MaxReportReasons = 32  // refusal reasons per report
	MaxReportKeyLen  = 64  // bytes of an address or a reason
	// MaxKeptAddrs bounds the addresses a poll's report keeps (the top ones).
	MaxKeptAddrs = 1000
)

// IdentityDelta is what one edge counted for a poll since its last report:
// new voter tokens, by client address (IPv6 by prefix) and in all, and
// refused token requests by reason.
type IdentityDelta struct {
	Tokens  uint64            `json:"tokens"`
	Addrs   map[string]uint64 `json:"addrs,omitempty"`
	Refused map[string]uint64 `json:"refused,omitempty"`
}

// Validate returns an EINVALID error for a delta the origin will not store.
func (d *IdentityDelta) Validate() error {
	if len(d.Addrs) > MaxReportAddrs || len(d.Refused) > MaxReportReasons {
		return shared.Errorf(shared.EINVALID, "at most %d addresses and %d reasons per report", MaxReportAddrs, MaxReportReasons)
	}
	for k := range d.Addrs {
		if !printable(k) {
			return shared.Errorf(shared.EINVALID, "an address must be 1-%d printable bytes", MaxReportKeyLen)
		}
	}
	for k := range d.Refused {
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c == '_') {
				return shared.Errorf(shared.EINVALID, "a reason must be 1-%d of a-z _", MaxReportKeyLen)
			}
		}
		if k == "" || len(k) > MaxReportKeyLen {
			return shared.Errorf(shared.EINVALID, "a reason must be 1-%d of a-z _", MaxReportKeyLen)
		}
	}
	return nil
}

func printable(s string) bool {
	if s == "" || len(s) > MaxReportKeyLen || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// AddrCount is one address (or IPv6 prefix) and the tokens issued to it.
type AddrCount struct {
	Addr   string `json:"addr"`
	Tokens uint64 `json:"tokens"`
}

// IdentityReport is a poll's identity figures as edges reported them.
type IdentityReport struct {
	TokensIssued uint64            `json:"tokens_issued"`
	Refused      map[string]uint64 `json:"refused,omitempty"`
	TopAddresses []AddrCount       `json:"top_addresses"`
}

// IdentityStatsStore keeps the figures edges report for the integrity report.
type IdentityStatsStore interface {
	// AddIdentityStats adds an edge's delta to poll's figures, keeping the
	// MaxKeptAddrs addresses with the most tokens. Returns ENOTFOUND.
	AddIdentityStats(ctx context.Context, poll string, d *IdentityDelta) error
	// IdentityStats returns poll's figures with its top addresses. Returns ENOTFOUND.
	IdentityStats(ctx context.Context, poll string, top int) (*IdentityReport, error)
}
