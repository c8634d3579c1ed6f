package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

// MaxExpectedVoters bounds origin.CreateRequest.ExpectedVoters.
const MaxExpectedVoters = 1 << 30

// DecodeCreate strictly decodes and validates a create request body.
// Errors are EINVALID with a message that says what is wrong.
func DecodeCreate(body []byte) (*origin.CreateRequest, error) {
	var r origin.CreateRequest
	if err := decodeStrict(body, &r); err != nil {
		return nil, err
	}
	r.SetDefaults()
	if r.ExpectedVoters < 0 || r.ExpectedVoters > MaxExpectedVoters {
		return nil, shared.Errorf(shared.EINVALID, "expected_voters must be 0-%d", MaxExpectedVoters)
	}
	r.Version = 0
	if err := r.Poll.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeUpdate strictly decodes an update request body.
func DecodeUpdate(body []byte) (*origin.UpdateRequest, error) {
	var u origin.UpdateRequest
	if err := decodeStrict(body, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data, with errors that name the problem.
func decodeStrict(body []byte, v any) error {
	if len(body) > maxAdminBody {
		return shared.Errorf(shared.ETOOLARGE, "body larger than %d bytes", maxAdminBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return shared.Errorf(shared.EINVALID, "empty body: a JSON object is required")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return shared.Errorf(shared.EINVALID, "bad JSON: %s", jsonErrorMessage(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return shared.Errorf(shared.EINVALID, "bad JSON: unexpected data after the object")
	}
	return nil
}

func jsonErrorMessage(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
		}
		return fmt.Sprintf("expected %s", te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// admin routes /v1/admin/{rest} for an authorized caller and returns the
// route label.
func (s *Server) admin(ctx *fasthttp.RequestCtx, rest string) string {
	if rest == "stats" {
		if s.allow(ctx, fasthttp.MethodGet) {
			s.adminStats(ctx)
		}
		return "admin_stats"
	}
	if rest == "polls" {
		switch string(ctx.Method()) {
		case fasthttp.MethodGet:
			s.adminList(ctx)
		case fasthttp.MethodPost:
			s.adminCreate(ctx)
		default:
			s.allow(ctx, fasthttp.MethodGet, fasthttp.MethodPost)
		}
		return "admin_polls"
	}
	tail, ok := strings.CutPrefix(rest, "polls/")
	if !ok {
		s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "no admin route %q", truncate(rest, 100)))
		return "not_found"
	}
	id, action, _ := strings.Cut(tail, "/")
	if !shared.ValidPollID(id) {
		s.fail(ctx, shared.Errorf(shared.EINVALID, "poll id must be 1-%d characters of A-Z a-z 0-9 - _", shared.MaxPollIDLen))
		return "admin_poll"
	}
	switch action {
	case "":
		switch string(ctx.Method()) {
		case fasthttp.MethodGet:
			s.adminShow(ctx, id)
		case fasthttp.MethodPatch:
			s.adminUpdate(ctx, id)
		case fasthttp.MethodDelete:
			s.adminDelete(ctx, id)
		default:
			s.allow(ctx, fasthttp.MethodGet, fasthttp.MethodPatch, fasthttp.MethodDelete)
		}
		return "admin_poll"
	case "open", "close":
		if s.allow(ctx, fasthttp.MethodPost) {
			state := shared.StateOpen
			if action == "close" {
				state = shared.StateClosed
			}
			s.adminSetState(ctx, id, state)
		}
		return "admin_" + action
	case "reset":
		if s.allow(ctx, fasthttp.MethodPost) {
			s.adminReset(ctx, id)
		}
		return "admin_reset"
	case "results":
		if s.allow(ctx, fasthttp.MethodGet) {
			s.adminResults(ctx, id)
		}
		return "admin_results"
	case "export":
		if s.allow(ctx, fasthttp.MethodGet) {
			s.adminExport(ctx, id)
		}
		return "admin_export"
	case "invites":
		s.adminInvites(ctx, id)
		return "admin_invites"
	case "invites/stats":
		s.adminInviteStats(ctx, id)
		return "admin_invite_stats"
	case "identity-stats":
		s.adminIdentityStats(ctx, id)
		return "admin_identity_stats"
	case "words/ban":
		if s.allow(ctx, fasthttp.MethodPost) {
			s.adminBanWord(ctx, id)
		}
		return "admin_words_ban"
	case "words/hidden":
		if s.allow(ctx, fasthttp.MethodGet) {
			s.adminHiddenWords(ctx, id)
		}
		return "admin_words_hidden"
	}
	s.fail(ctx, shared.Errorf(shared.ENOTFOUND, "no admin route %q", truncate(rest, 100)))
	return "not_found"
}

func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(ctx, shared.Wrap(shared.EINTERNAL, err, "encode response"))
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.SetBodyRaw(append(b, '\n'))
}

// invalidate drops this process's cached reads of a poll after a change.
func (s *Server) invalidate(id string) {
	s.polls.invalidate(id)
	s.results.invalidate(id)
}

// PollList is the body of GET /v1/admin/polls.
type PollList struct {
	Polls []*shared.Poll `json:"polls"`
}

func (s *Server) adminList(ctx *fasthttp.RequestCtx) {
	c, cancel := s.readCtx()
	defer cancel()
	ps, err := s.store.Polls(c)
	if err != nil {
		s.fail(ctx, s.storeErr("polls", err))
		return
	}
	if ps == nil {
		ps = []*shared.Poll{}
	}
	s.writeJSON(ctx, fasthttp.StatusOK, PollList{Polls: ps})
}

func (s *Server) adminCreate(ctx *fasthttp.RequestCtx) {
	if !isJSON(ctx.Request.Header.ContentType()) {
		s.fail(ctx, shared.Errorf(shared.EUNSUPPORTED, "Content-Type must be application/json"))
		return
	}
	r, err := DecodeCreate(ctx.Request.Body())
	if err != nil {
		s.fail(ctx, err)
		return
	}
	c, cancel := s.readCtx()
	defer cancel()
	p, err := s.store.CreatePoll(c, &r.Poll, origin.CreateOptions{ExpectedVoters: r.ExpectedVoters, Blocklist: r.Blocklist})
	if err != nil {
		s.fail(ctx, s.storeErr("create", err))
		return
	}
	s.invalidate(p.ID)
	s.log.Info("poll created", "poll", p.ID)
	ctx.Response.Header.Set(fasthttp.HeaderLocation, "/v1/admin/polls/"+p.ID)
	s.writeJSON(ctx, fasthttp.StatusCreated, p)
}

func (s *Server) adminShow(ctx *fasthttp.RequestCtx, id string) {
	c, cancel := s.readCtx()
	defer cancel()
	p, err := s.store.Poll(c, id)
	if err != nil {
		s.fail(ctx, s.storeErr("poll", err))
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, p)
}

func (s *Server) adminUpdate(ctx *fasthttp.RequestCtx, id string) {
	if !isJSON(ctx.Request.Header.ContentType()) {
		s.fail(ctx, shared.Errorf(shared.EUNSUPPORTED, "Content-Type must be application/json"))
		return
	}
	u, err := DecodeUpdate(ctx.Request.Body())
	if err != nil {
		s.fail(ctx, err)
		return
	}
	c, cancel := s.readCtx()
	defer cancel()
	now := s.now()
	p, err := s.store.UpdatePoll(c, id, func(p *shared.Poll) error {
		old := *p
		old.Options = slices.Clone(p.Options)
		u.Apply(p)
		if err := p.Validate(); err != nil {
			return err
		}
		return origin.CheckLiveChange(&old, p, now)
	})
	if err != nil {
		s.fail(ctx, s.storeErr("update", err))
		return
	}
	s.invalidate(id)
	s.log.Info("poll updated", "poll", id, "version", p.Version)
	s.writeJSON(ctx, fasthttp.StatusOK, p)
}

// adminDelete deletes a poll. A poll that is taking votes (origin.Live) is
// refused with 409 unless ?force=true: edges would go on acknowledging votes
// that the origin could no longer count.
func (s *Server) adminDelete(ctx *fasthttp.RequestCtx, id string) {
	c, cancel := s.readCtx()
	defer cancel()
	force, err := queryBool(ctx, "force")
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if !force {
		p, err := s.store.Poll(c, id)
		if err != nil {
			s.fail(ctx, s.storeErr("delete", err))
			return
		}
		if origin.Live(p, s.now()) {
			s.fail(ctx, shared.Errorf(shared.ECONFLICT, "poll %s is taking votes: close it first, or delete with force=true (votes edges acknowledge meanwhile are lost)", id))
			return
		}
	}
	if err := s.store.DeletePoll(c, id); err != nil {
		s.fail(ctx, s.storeErr("delete", err))
		return
	}
	s.invalidate(id)
	s.log.Info("poll deleted", "poll", id)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// adminSetState opens or closes a poll. A close is announced ahead by
// default (origin.AnnounceClose: closes_at = now+CloseLead); ?now=true
// closes at once, and votes edges acknowledged in the propagation window
// are then refused as poll_closed and counted in the poll's rejected
// figures (admin results).
func (s *Server) adminSetState(ctx *fasthttp.RequestCtx, id string, state shared.State) {
	c, cancel := s.readCtx()
	defer cancel()
	immediate, err := queryBool(ctx, "now")
	if err != nil {
		s.fail(ctx, err)
		return
	}
	now := s.now()
	var p *shared.Poll
	if state == shared.StateClosed && !immediate {
		p, err = s.store.UpdatePoll(c, id, func(p *shared.Poll) error {
			origin.AnnounceClose(p, now)
			return nil
		})
	} else {
		p, err = s.store.SetState(c, id, state, now)
	}
	if err != nil {
		s.fail(ctx, s.storeErr("set_state", err))
		return
	}
	s.invalidate(id)
	s.log.Info("poll state set", "poll", id, "state", string(state), "now", immediate, "stops_at", origin.StopsAt(p, now))
	s.writeJSON(ctx, fasthttp.StatusOK, p)
}

// queryBool reads an optional boolean query parameter (true/false/1/0).
func queryBool(ctx *fasthttp.RequestCtx, name string) (bool, error) {
	v := ctx.QueryArgs().Peek(name)
	if len(v) == 0 {
		return false, nil
	}
	b, err := strconv.ParseBool(string(v))
	if err != nil {
		return false, shared.Errorf(shared.EINVALID, "query parameter %s must be true or false", name)
	}
	return b, nil
}

func (s *Server) adminReset(ctx *fasthttp.RequestCtx, id string) {
	c, cancel := s.readCtx()
	defer cancel()
	p, err := s.store.ResetPoll(c, id)
	if err != nil {
		s.fail(ctx, s.storeErr("reset", err))
		return
	}
	s.invalidate(id)
	s.log.Info("poll reset", "poll", id)
	s.writeJSON(ctx, fasthttp.StatusOK, p)
}

func (s *Server) freshResults(id string) (*origin.Results, error) {
	c, cancel := s.readCtx()
	defer cancel()
	p, err := s.store.Poll(c, id)
	if err != nil {
		return nil, s.storeErr("poll", err)
	}
	snap, err := s.store.Snapshot(c, id)
	if err != nil {
		return nil, s.storeErr("snapshot", err)
	}
	state := p.State
	if state == shared.StateOpen && !p.ClosesAt.IsZero() && !s.now().Before(p.ClosesAt) {
		state = shared.StateClosed // its window ended (an announced or scheduled close)
	}
	r := &origin.Results{
		Poll: id, Title: p.Title, State: string(state), Version: snap.Version,
		Counts: snap.Counts, Total: snap.Total, Voters: snap.Voters,
		GeneratedAt: time.UnixMilli(snap.GeneratedAt).UTC(),
	}
	for _, o := range p.Options {
		r.Options = append(r.Options, o.Label)
	}
	for i, n := range snap.Rejected {
		if n > 0 {
			if r.Rejected == nil {
				r.Rejected = make(map[string]uint64)
			}
			r.Rejected[shared.Reasons[i]] = n
		}
	}
	for len(r.Counts) < len(r.Options) {
		r.Counts = append(r.Counts, 0)
	}
	r.FillKind(p, snap)
	return r, nil
}

// adminBanWord serves POST /v1/admin/polls/{id}/words/ban {"word":"…"}.
func (s *Server) adminBanWord(ctx *fasthttp.RequestCtx, id string) {
	if !isJSON(ctx.Request.Header.ContentType()) {
		s.fail(ctx, shared.Errorf(shared.EUNSUPPORTED, "Content-Type must be application/json"))
		return
	}
	var req origin.BanRequest
	if err := decodeStrict(ctx.Request.Body(), &req); err != nil {
		s.fail(ctx, err)
		return
	}
	c, cancel := s.readCtx()
	defer cancel()
	w, err := s.store.BanWord(c, id, req.Word)
	if err != nil {
		s.fail(ctx, s.storeErr("ban_word", err))
		return
	}
	s.invalidate(id)
	s.log.Info("word hidden", "poll", id, "word", w)
	s.writeJSON(ctx, fasthttp.StatusOK, origin.BanResponse{Word: w, Hidden: true})
}

// adminHiddenWords serves GET /v1/admin/polls/{id}/words/hidden.
func (s *Server) adminHiddenWords(ctx *fasthttp.RequestCtx, id string) {
	c, cancel := s.readCtx()
	defer cancel()
	ws, err := s.store.HiddenWords(c, id)
	if err != nil {
		s.fail(ctx, s.storeErr("hidden_words", err))
		return
	}
	if ws == nil {
		ws = []string{}
	}
	s.writeJSON(ctx, fasthttp.StatusOK, origin.HiddenList{Hidden: ws})
}

func (s *Server) adminResults(ctx *fasthttp.RequestCtx, id string) {
	r, err := s.freshResults(id)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, r)
}

func (s *Server) adminStats(ctx *fasthttp.RequestCtx) {
	c, cancel := s.readCtx()
	defer cancel()
	st, err := s.store.Stats(c)
	if err != nil {
		s.fail(ctx, s.storeErr("stats", err))
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, st)
}

// isJSON reports whether a request Content-Type is JSON; an absent one is
// taken as JSON too.
func isJSON(ct []byte) bool {
	if len(ct) == 0 {
		return true
	}
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(ct), []byte("application/json"))
}
