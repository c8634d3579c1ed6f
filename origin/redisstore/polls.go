package redisstore

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/redis/go-redis/v9"
)

// pollMeta is a poll as stored: its config plus the fields only the store keeps.
type pollMeta struct {
	shared.Poll
	Buckets  int
	OpenedAt int64 // ms; 0 until first opened
	ClosedAt int64 // ms; 0 unless closed
}

// fields returns the hash fields and values of m, as HSET arguments.
func (m *pollMeta) fields() ([]any, error) {
	labels := make([]string, len(m.Options))
	for i, o := range m.Options {
		labels[i] = o.Label
	}
	opts, err := json.Marshal(labels)
	if err != nil {
		return nil, shared.Wrap(shared.EINTERNAL, err, "encode options")
	}
	limit := m.Limit() // what the apply script checks: choice bytes, or words
	if m.Kind == shared.KindWords {
		limit = m.MaxWords
	}
	var sc shared.Scale
	if m.Scale != nil {
		sc = *m.Scale
	}
	return []any{
		"id", m.ID,
		"title", m.Title,
		"options", opts,
		"n", m.NumCounts(),
		"kind", string(m.Kind),
		"max", limit,
		"max_choices", m.MaxChoices, // as configured
		"scale_min", sc.Min,
		"scale_max", sc.Max,
		"scale_min_label", sc.MinLabel,
		"scale_max_label", sc.MaxLabel,
		"max_words", m.MaxWords,
		"state", string(m.State),
		"visibility", string(m.Visibility),
		"identity", string(m.IdentityMode()),
		"jwt_issuer", m.JWTIssuer,
		"jwt_audience", m.JWTAudience,
		"opens_at", shared.UnixMilli(m.OpensAt),
		"closes_at", shared.UnixMilli(m.ClosesAt),
		"version", m.Version,
		"buckets", m.Buckets,
		"opened_at", m.OpenedAt,
		"closed_at", m.ClosedAt,
	}, nil
}

// decodePoll rebuilds a pollMeta from HGETALL. ok is false if h is empty.
func decodePoll(h map[string]string) (m *pollMeta, ok bool, err error) {
	if len(h) == 0 {
		return nil, false, nil
	}
	m = &pollMeta{}
	m.ID = h["id"]
	m.Title = h["title"]
	var labels []string
	if err := json.Unmarshal([]byte(h["options"]), &labels); err != nil {
		return nil, true, shared.Wrap(shared.EINTERNAL, err, "stored poll "+m.ID+": bad options")
	}
	if len(labels) > 0 {
		m.Options = make([]shared.Option, len(labels))
		for i, l := range labels {
			m.Options[i].Label = l
		}
	}
	m.Kind = shared.Kind(h["kind"])
	m.MaxChoices, _ = strconv.Atoi(h["max_choices"])
	if m.Kind == shared.KindScale {
		sc := &shared.Scale{MinLabel: h["scale_min_label"], MaxLabel: h["scale_max_label"]}
		sc.Min, _ = strconv.Atoi(h["scale_min"])
		sc.Max, _ = strconv.Atoi(h["scale_max"])
		m.Scale = sc
	}
	m.MaxWords, _ = strconv.Atoi(h["max_words"]) // absent before words polls: 0
	m.State = shared.State(h["state"])
	m.Visibility = shared.Visibility(h["visibility"])
	m.Identity = shared.Identity(h["identity"]) // absent in polls stored before identity modes: open
	m.JWTIssuer, m.JWTAudience = h["jwt_issuer"], h["jwt_audience"]
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	m.OpensAt = shared.FromUnixMilli(num("opens_at"))
	m.ClosesAt = shared.FromUnixMilli(num("closes_at"))
	m.Version = uint64(num("version"))
	m.Buckets = int(num("buckets"))
	m.OpenedAt = num("opened_at")
	m.ClosedAt = num("closed_at")
	return m, true, nil
}

// CreatePoll stores p at version 1 with dedupe buckets sized for
// opts.ExpectedVoters; a words poll's hidden words are opts.Blocklist and
// shared.DefaultHiddenWords(). Returns EINVALID if p is invalid, ECONFLICT if
// the id exists.
func (s *Store) CreatePoll(ctx context.Context, p *shared.Poll, opts origin.CreateOptions) (*shared.Poll, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	hidden, err := hiddenWords(p, opts.Blocklist)
	if err != nil {
		return nil, err
	}
	if opts.ExpectedVoters < 0 {
		return nil, shared.Errorf(shared.EINVALID, "expected_voters must not be negative")
	}
	m := &pollMeta{Poll: *p, Buckets: bucketCount(opts.ExpectedVoters)}
	m.Options = slices.Clone(p.Options)
	m.Version = 1
	now := s.Now().UnixMilli()
	switch m.State {
	case shared.StateOpen:
		m.OpenedAt = now
	case shared.StateClosed:
		m.ClosedAt = now
	}
	fields, err := m.fields()
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, 2+len(hidden)+len(fields))
	args = append(args, m.NumCounts(), len(hidden))
	for _, w := range hidden {
		args = append(args, w)
	}
	created, err := createScript.Run(ctx, s.rdb, []string{pollKey(p.ID), countsKey(p.ID), hiddenKey(p.ID)},
		append(args, fields...)...).Int()
	if err != nil {
		return nil, redisErr(err, "create poll %s", p.ID)
	}
	// Index the id even on conflict: SADD is idempotent and repairs an
	// index entry lost when an earlier create failed half-way.
	if err := s.rdb.SAdd(ctx, pollsKey, p.ID).Err(); err != nil {
		return nil, redisErr(err, "index poll %s", p.ID)
	}
	if created == 0 {
		return nil, shared.Errorf(shared.ECONFLICT, "poll %s already exists", p.ID)
	}
	s.setCachedPoll(p.ID, m.Buckets, familyOf(m.Kind))
	out := m.Poll
	return &out, nil
}

// hiddenWords returns the words a new poll starts hiding: its blocklist in
// normal form plus the default list (words polls only). Returns EINVALID
// for a blocklist on another kind, too long a list or a word that fails
// normalisation.
func hiddenWords(p *shared.Poll, blocklist []string) ([]string, error) {
	if p.Kind != shared.KindWords {
		if len(blocklist) > 0 {
			return nil, shared.Errorf(shared.EINVALID, "blocklist is only for a %q poll", shared.KindWords)
		}
		return nil, nil
	}
	if len(blocklist) > shared.MaxBlocklist {
		return nil, shared.Errorf(shared.EINVALID, "a blocklist has at most %d words", shared.MaxBlocklist)
	}
	out := slices.Clone(shared.DefaultHiddenWords())
	for i, w := range blocklist {
		n, err := shared.NormalizeWord(w)
		if err != nil {
			return nil, shared.Errorf(shared.EINVALID, "blocklist word %d: %s", i+1, shared.ErrorMessage(err))
		}
		out = append(out, n)
	}
	return out, nil
}

// meta reads a poll as stored. Returns ENOTFOUND.
func (s *Store) meta(ctx context.Context, id string) (*pollMeta, error) {
	if !shared.ValidPollID(id) {
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	}
	h, err := s.rdb.HGetAll(ctx, pollKey(id)).Result()
	if err != nil {
		return nil, redisErr(err, "read poll %s", id)
	}
	m, ok, err := decodePoll(h)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
	}
	return m, nil
}

// Poll returns a poll. Returns ENOTFOUND if it does not exist.
func (s *Store) Poll(ctx context.Context, id string) (*shared.Poll, error) {
	m, err := s.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	return &m.Poll, nil
}

// Polls lists all polls ordered by id.
func (s *Store) Polls(ctx context.Context) ([]*shared.Poll, error) {
	ids, err := s.rdb.SMembers(ctx, pollsKey).Result()
	if err != nil {
		return nil, redisErr(err, "list polls")
	}
	slices.Sort(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool { return !shared.ValidPollID(id) })
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, pollKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, redisErr(err, "list polls")
	}
	polls := make([]*shared.Poll, 0, len(ids))
	for _, c := range cmds {
		m, ok, err := decodePoll(c.Val())
		if err != nil {
			return nil, err
		}
		if ok { // an id whose poll was deleted half-way is skipped
			polls = append(polls, &m.Poll)
		}
	}
	return polls, nil
}

// UpdatePoll applies fn to the poll and stores it with its version bumped.
// fn may not change the id. State changes made by fn take effect as of now,
// as with SetState. Returns ENOTFOUND, EINVALID, fn's error, or ECONFLICT
// when options, kind or max choices change while the poll has votes.
func (s *Store) UpdatePoll(ctx context.Context, id string, fn func(*shared.Poll) error) (*shared.Poll, error) {
	return s.update(ctx, id, func(m *pollMeta) (bool, error) {
		p := m.Poll
		p.Options = slices.Clone(m.Options)
		if err := fn(&p); err != nil {
			return false, err
		}
		if p.ID != id {
			return false, shared.Errorf(shared.EINVALID, "a poll's id cannot change")
		}
		if err := p.Validate(); err != nil {
			return false, err
		}
		old := m.Poll
		m.Poll = p
		m.Version = old.Version
		setState(m, old.State, p.State, s.Now())
		return true, nil
	})
}

// SetState opens, closes or drafts a poll as of at. Opening sets the poll's
// opened time unless it was opened before and clears its closed time;
// closing sets its closed time to at, so votes received at the edge before
// at still count when their batch arrives later. Setting the state a poll
// already has changes nothing. Returns ENOTFOUND or EINVALID.
func (s *Store) SetState(ctx context.Context, id string, state shared.State, at time.Time) (*shared.Poll, error) {
	switch state {
	case shared.StateDraft, shared.StateOpen, shared.StateClosed:
	default:
		return nil, shared.Errorf(shared.EINVALID, "state must be %q, %q or %q", shared.StateDraft, shared.StateOpen, shared.StateClosed)
	}
	if at.IsZero() {
		at = s.Now()
	}
	return s.update(ctx, id, func(m *pollMeta) (bool, error) {
		if m.State == state {
			return false, nil
		}
		old := m.State
		m.State = state
		setState(m, old, state, at)
		return true, nil
	})
}

// setState records the times of a state change from old to m.State.
func setState(m *pollMeta, old, state shared.State, at time.Time) {
	if old == state {
		return
	}
	switch state {
	case shared.StateOpen:
		if m.OpenedAt == 0 {
			m.OpenedAt = at.UnixMilli()
		}
		m.ClosedAt = 0
	case shared.StateClosed:
		m.ClosedAt = at.UnixMilli()
	}
}

// update runs a read-modify-write of a poll's config with optimistic
// concurrency: fn changes m and says whether to store it; the write only
// succeeds if nobody changed the poll since it was read.
func (s *Store) update(ctx context.Context, id string, fn func(m *pollMeta) (bool, error)) (*shared.Poll, error) {
	for attempt := 0; attempt < 20; attempt++ {
		m, err := s.meta(ctx, id)
		if err != nil {
			return nil, err
		}
		before := m.Poll
		before.Options = slices.Clone(m.Options)
		changed, err := fn(m)
		if err != nil {
			return nil, err
		}
		if !changed {
			return &m.Poll, nil
		}
		structural := before.Kind != m.Kind || before.Limit() != m.Limit() || !slices.Equal(before.Options, m.Options) ||
			!equalScale(before.Scale, m.Scale) || before.MaxWords != m.MaxWords
		m.Version = before.Version + 1
		fields, err := m.fields()
		if err != nil {
			return nil, err
		}
		flag := "0"
		if structural {
			flag = "1"
		}
		args := append([]any{before.Version, flag, m.NumCounts()}, fields...)
		res, err := updateScript.Run(ctx, s.rdb, []string{pollKey(id), countsKey(id)}, args...).Text()
		if err != nil {
			return nil, redisErr(err, "update poll %s", id)
		}
		switch res {
		case "ok":
			return &m.Poll, nil
		case "notfound":
			return nil, shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
		case "conflict":
			return nil, shared.Errorf(shared.ECONFLICT, "poll %s has votes: reset it before changing its options, kind, scale or max_words", id)
		case "stale":
			continue // changed under us: read again
		default:
			return nil, shared.Errorf(shared.EINTERNAL, "update poll %s: unexpected script reply %q", id, res)
		}
	}
	return nil, shared.Errorf(shared.ECONFLICT, "poll %s is being changed concurrently, try again", id)
}

// DeletePoll removes a poll, its counts, dedupe buckets and ledger (UNLINK,
// in one script on the poll's node), then its invite codes and identity figures. Replay receipts of its batches expire
// on their own. Returns ENOTFOUND.
func (s *Store) DeletePoll(ctx context.Context, id string) error {
	if err := s.drop(ctx, id, "delete"); err != nil {
		return err
	}
	if err := s.rdb.Unlink(ctx, invitesKey(id), identityKey(id), identityAddrsKey(id)).Err(); err != nil {
		return redisErr(err, "delete the invite codes and identity figures of poll %s", id)
	}
	s.setCachedPoll(id, 0, 0)
	if err := s.rdb.SRem(ctx, pollsKey, id).Err(); err != nil {
		return redisErr(err, "unindex poll %s", id)
	}
	return nil
}

// ResetPoll removes all votes of a poll, bumps its version and its results
// version (so cached snapshots change). Returns ENOTFOUND.
func (s *Store) ResetPoll(ctx context.Context, id string) (*shared.Poll, error) {
	if err := s.drop(ctx, id, "reset"); err != nil {
		return nil, err
	}
	return s.Poll(ctx, id)
}

func (s *Store) drop(ctx context.Context, id, mode string) error {
	if !shared.ValidPollID(id) {
		return shared.Errorf(shared.ENOTFOUND, "poll %q not found", id)
	}
	n, err := dropScript.Run(ctx, s.rdb, []string{pollKey(id), countsKey(id), hiddenKey(id), wordsKey(id), wordsHLLKey(id)},
		bucketPrefix(id), mode, ledgerPrefix(id)).Int()
	if err != nil {
		return redisErr(err, "%s poll %s", mode, id)
	}
	if n == 0 {
		return shared.Errorf(shared.ENOTFOUND, "poll %s not found", id)
	}
	return nil
}

func equalScale(a, b *shared.Scale) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
