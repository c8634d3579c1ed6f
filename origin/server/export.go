package server

import (
	"bufio"
	"context"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

// exportTimeout bounds one streamed ledger export.
const exportTimeout = 10 * time.Minute

// adminExport serves GET /v1/admin/polls/{id}/export?data=results|ledger&format=csv|json.
// The poll is looked up first so a missing poll is a clean 404; the body is
// then streamed, so a ledger of millions of voters never sits in memory.
func (s *Server) adminExport(ctx *fasthttp.RequestCtx, id string) {
	args := ctx.QueryArgs()
	data := string(args.Peek("data"))
	if data == "" {
		data = "results"
	}
	format := string(args.Peek("format"))
	if format == "" {
		format = "json"
	}
	if data != "results" && data != "ledger" {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "data must be results or ledger"))
		return
	}
	if format != "csv" && format != "json" {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "format must be csv or json"))
		return
	}
	filename := id + "-" + data + "." + format
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	if format == "csv" {
		ctx.SetContentType("text/csv; charset=utf-8")
	} else {
		ctx.SetContentType("application/json")
	}
	if data == "results" {
		r, err := s.freshResults(id)
		if err != nil {
			s.fail(ctx, err)
			return
		}
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			if format == "csv" {
				writeResultsCSV(w, r)
			} else {
				writeResultsJSON(w, r)
			}
		})
		return
	}
	c, cancel := s.readCtx()
	_, err := s.store.Poll(c, id)
	cancel()
	if err != nil {
		s.fail(ctx, s.storeErr("poll", err))
		return
	}
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		c, cancel := context.WithTimeout(context.Background(), exportTimeout)
		defer cancel()
		var err error
		if format == "csv" {
			err = s.writeLedgerCSV(c, w, id)
		} else {
			err = s.writeLedgerJSON(c, w, id)
		}
		if err != nil {
			// The status line is gone; the truncated body (no final
			// newline / closing bracket) tells the client it failed.
			s.log.Error("ledger export failed", "poll", id, "err", err)
			s.storeErr("ledger", err)
		}
	})
}

func writeResultsCSV(w *bufio.Writer, r *origin.Results) {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"option", "label", "votes"})
	for i, label := range r.Options {
		_ = cw.Write([]string{strconv.Itoa(i), label, strconv.FormatUint(r.Counts[i], 10)})
	}
	cw.Flush()
}

func writeResultsJSON(w *bufio.Writer, r *origin.Results) {
	b := make([]byte, 0, 256)
	b = append(b, `{"poll":`...)
	b = shared.AppendJSONString(b, r.Poll)
	b = append(b, `,"title":`...)
	b = shared.AppendJSONString(b, r.Title)
	b = append(b, `,"state":`...)
	b = shared.AppendJSONString(b, r.State)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, r.Version, 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendUint(b, r.Total, 10)
	b = append(b, `,"voters":`...)
	b = strconv.AppendUint(b, r.Voters, 10)
	b = append(b, `,"generated_at":"`...)
	b = r.GeneratedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","options":[`...)
	for i, label := range r.Options {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"option":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"label":`...)
		b = shared.AppendJSONString(b, label)
		b = append(b, `,"votes":`...)
		b = strconv.AppendUint(b, r.Counts[i], 10)
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	_, _ = w.Write(b)
}

func appendChoices(b []byte, choices []uint8, sep byte) []byte {
	for i, c := range choices {
		if i > 0 {
			b = append(b, sep)
		}
		b = strconv.AppendUint(b, uint64(c), 10)
	}
	return b
}

// ledgerFlushEvery is how many ledger rows are buffered between flushes.
const ledgerFlushEvery = 1024

func (s *Server) writeLedgerCSV(ctx context.Context, w *bufio.Writer, id string) error {
	if _, err := w.WriteString("voter_key,choices\n"); err != nil {
		return err
	}
	b := make([]byte, 0, 128)
	n := 0
	return s.store.Ledger(ctx, id, func(e origin.LedgerEntry) error {
		// Voter keys are hex and choices digits and ';': nothing to quote.
		b = append(b[:0], e.VoterKey...)
		b = append(b, ',')
		b = appendChoices(b, e.Choices, ';')
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
		if n++; n%ledgerFlushEvery == 0 {
			return w.Flush()
		}
		return nil
	})
}

func (s *Server) writeLedgerJSON(ctx context.Context, w *bufio.Writer, id string) error {
	if _, err := w.WriteString(`{"poll":` + string(shared.AppendJSONString(nil, id)) + `,"ballots":[`); err != nil {
		return err
	}
	b := make([]byte, 0, 128)
	n := 0
	err := s.store.Ledger(ctx, id, func(e origin.LedgerEntry) error {
		b = b[:0]
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+`{"voter_key":`...)
		b = shared.AppendJSONString(b, e.VoterKey)
		b = append(b, `,"choices":[`...)
		b = appendChoices(b, e.Choices, ',')
		b = append(b, "]}"...)
		if _, err := w.Write(b); err != nil {
			return err
		}
		if n++; n%ledgerFlushEvery == 0 {
			return w.Flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = w.WriteString("\n]}\n")
	return err
}
