package server

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
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
		var words []shared.WordCount
		if r.Kind == shared.KindWords && format == "csv" {
			c, cancel := s.readCtx()
			words, err = s.store.AllWords(c, id)
			cancel()
			if err != nil {
				s.fail(ctx, s.storeErr("words", err))
				return
			}
		}
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			switch {
			case format == "csv":
				writeResultsCSV(w, r, words)
			case r.Kind != "":
				b, _ := json.Marshal(r)
				_, _ = w.Write(append(b, '\n'))
			default:
				writeResultsJSON(w, r)
			}
		})
		return
	}
	c, cancel := s.readCtx()
	p, err := s.store.Poll(c, id)
	var hidden map[string]bool
	if err == nil && p.Kind == shared.KindWords {
		var hs []string
		hs, err = s.store.HiddenWords(c, id)
		hidden = map[string]bool{}
		for _, w := range append(hs, shared.DefaultHiddenWords()...) {
			hidden[w] = true
		}
	}
	cancel()
	if err != nil {
		s.fail(ctx, s.storeErr("poll", err))
		return
	}
	lk := ledgerKind{poll: p, hidden: hidden}
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		c, cancel := context.WithTimeout(context.Background(), exportTimeout)
		defer cancel()
		var err error
		if format == "csv" {
			err = s.writeLedgerCSV(c, w, id, lk)
		} else {
			err = s.writeLedgerJSON(c, w, id, lk)
		}
		if err != nil {
			// The status line is gone; the truncated body (no final
			// newline / closing bracket) tells the client it failed.
			s.log.Error("ledger export failed", "poll", id, "err", err)
			s.storeErr("ledger", err)
		}
	})
}

func writeResultsCSV(w *bufio.Writer, r *origin.Results, words []shared.WordCount) {
	cw := csv.NewWriter(w)
	switch r.Kind {
	case shared.KindScale:
		_ = cw.Write([]string{"value", "votes"})
		for i, n := range r.Counts {
			_ = cw.Write([]string{strconv.FormatInt(*r.Min+int64(i), 10), strconv.FormatUint(n, 10)})
		}
	case shared.KindRanked:
		_ = cw.Write([]string{"option", "label", "first", "borda"})
		for i, label := range r.Options {
			_ = cw.Write([]string{strconv.Itoa(i), label, strconv.FormatUint(r.Counts[i], 10), strconv.FormatUint(r.Borda[i], 10)})
		}
	case shared.KindWords:
		_ = cw.Write([]string{"word", "count"})
		for _, wc := range words {
			_ = cw.Write([]string{wc.Word, strconv.FormatUint(wc.Count, 10)})
		}
	default:
		_ = cw.Write([]string{"option", "label", "votes"})
		for i, label := range r.Options {
			_ = cw.Write([]string{strconv.Itoa(i), label, strconv.FormatUint(r.Counts[i], 10)})
		}
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

// ledgerKind is what a ledger export needs of its poll: the kind, a scale's
// minimum, a words poll's hidden words at the start of the export.
type ledgerKind struct {
	poll   *shared.Poll
	hidden map[string]bool
}

// header is the ledger CSV header of the poll's kind.
func (k ledgerKind) header() string {
	switch k.poll.Kind {
	case shared.KindScale:
		return "voter_key,value,batch\n"
	case shared.KindWords:
		return "voter_key,words,hidden,batch\n"
	}
	return "voter_key,choices,batch\n"
}

// value is a scale ballot's value.
func (k ledgerKind) value(e *origin.LedgerEntry) int64 {
	if len(e.Choices) == 0 || k.poll.Scale == nil {
		return 0
	}
	return int64(k.poll.Scale.Min) + int64(e.Choices[0])
}

// appendWords appends the words of e (hidden ones only when hidden) joined by sep,
// each through quote.
func (k ledgerKind) appendWords(b []byte, e *origin.LedgerEntry, hidden bool, sep byte, quote func([]byte, string) []byte) []byte {
	n := 0
	for _, w := range e.Words {
		if hidden && !k.hidden[w] {
			continue
		}
		if n > 0 {
			b = append(b, sep)
		}
		b = quote(b, w)
		n++
	}
	return b
}

func plain(b []byte, s string) []byte { return append(b, s...) }

func (s *Server) writeLedgerCSV(ctx context.Context, w *bufio.Writer, id string, k ledgerKind) error {
	if _, err := w.WriteString(k.header()); err != nil {
		return err
	}
	b := make([]byte, 0, 128)
	n := 0
	return s.store.Ledger(ctx, id, func(e origin.LedgerEntry) error {
		// Voter keys and batch ids are hex, choices digits and ';', normal
		// form words letters, digits, '-' and '\'': nothing to quote.
		b = append(b[:0], e.VoterKey...)
		b = append(b, ',')
		switch k.poll.Kind {
		case shared.KindScale:
			b = strconv.AppendInt(b, k.value(&e), 10)
		case shared.KindWords:
			b = k.appendWords(b, &e, false, ';', plain)
			b = append(b, ',')
			b = k.appendWords(b, &e, true, ';', plain)
		default:
			b = appendChoices(b, e.Choices, ';')
		}
		b = append(b, ',')
		b = append(b, e.Batch...)
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

func (s *Server) writeLedgerJSON(ctx context.Context, w *bufio.Writer, id string, k ledgerKind) error {
	if _, err := w.WriteString(`{"poll":` + string(shared.AppendJSONString(nil, id)) + `,"kind":` + string(shared.AppendJSONString(nil, string(k.poll.Kind))) + `,"ballots":[`); err != nil {
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
		switch k.poll.Kind {
		case shared.KindScale:
			b = append(b, `,"value":`...)
			b = strconv.AppendInt(b, k.value(&e), 10)
		case shared.KindWords:
			b = append(b, `,"words":[`...)
			b = k.appendWords(b, &e, false, ',', shared.AppendJSONString)
			b = append(b, `],"hidden":[`...)
			b = k.appendWords(b, &e, true, ',', shared.AppendJSONString)
			b = append(b, ']')
		default:
			b = append(b, `,"choices":[`...)
			b = appendChoices(b, e.Choices, ',')
			b = append(b, ']')
		}
		b = append(b, `,"batch":`...)
		b = shared.AppendJSONString(b, e.Batch)
		b = append(b, '}')
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
