// Command pollctl administers edgepoll polls through the origin's admin API.
// It never talks to Redis. Run `pollctl --help` for commands, examples and
// exit codes.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/origin/irv"
	"github.com/edgepoll/edgepoll/origin/rehearse"
	"github.com/edgepoll/edgepoll/shared"
)

// Exit codes scripts can rely on.
const (
	exitOK           = 0
	exitError        = 1 // server or network error
	exitUsage        = 2 // bad command line or invalid input
	exitNotFound     = 3
	exitConflict     = 4
	exitUnauthorized = 5
	exitVerify       = 6 // rehearse: the origin's count does not match the edge's answers
)

const usageText = `pollctl administers edgepoll polls through the origin's admin API.

Usage:
  pollctl [global flags] <command> [flags] [args]

Commands:
  create     create a poll (from flags or a JSON file)
  list       list polls
  show       show one poll
  open       open a poll for votes
  close      close a poll
  reset      remove all votes of a poll
  delete     delete a poll and its votes
  results    show live results (--watch redraws a bar chart; --method irv counts a ranked poll by instant runoff)
  export     export results or the per-voter ledger as CSV or JSON
  invites    create an invite poll's single-use codes (streamed CSV), or list which were used
  words      hide a word of a words poll (words ban POLL WORD), or list the hidden ones
  stats      store-wide figures, or a poll's integrity report (stats POLL)
  rehearse   simulate an audience against an edge, then verify the origin's count
  replay     re-send dead-lettered vote batches (dry run unless --send); the origin counts each voter once
  completion print a shell completion script (bash or zsh)

Global flags (also accepted after the command):
  --origin URL     origin base URL (env EDGEPOLL_ORIGIN, default http://127.0.0.1:8080)
  --token TOKEN    admin bearer token (env EDGEPOLL_ADMIN_TOKEN; prefer the env)
  -o table|json    output format (default table)

Examples:
  export EDGEPOLL_ORIGIN=http://127.0.0.1:8080 EDGEPOLL_ADMIN_TOKEN=...
  pollctl create --id show42 --title "Who wins?" --option Ann --option Bob --expected-voters 2000000 --open
  pollctl create --id vip --title "Who wins?" --option Ann --option Bob --identity signed --jwt-issuer https://app.example --jwt-audience edgepoll
  pollctl create --id mood --title "How was it?" --kind scale --min 1 --max 10 --min-label awful --max-label brilliant
  pollctl create --id best --title "Rank the acts" --kind ranked --option Ann --option Bob --option Cy
  pollctl create --id oneword --title "The show in one word" --kind words --max-words 1 --block boring
  pollctl create -f poll.json
  pollctl list -o json
  pollctl results show42 --watch --interval 1s
  pollctl results best --method irv
  pollctl words ban oneword rubbish
  pollctl close show42
  pollctl export show42 ledger --format csv -f ledger.csv
  pollctl invites create club --count 100000 -o csv > codes.csv
  pollctl invites used club -o csv
  pollctl rehearse show42 --edge http://127.0.0.1:8788 --rate 500 --duration 30s --repeat-share 0.1
  EDGEPOLL_INGEST_KEY=kid=secret pollctl replay --send spool/dead-letter.jsonl
  source <(pollctl completion bash)

Exit codes:
  0 ok   1 server or network error   2 usage error or invalid input
  3 not found   4 conflict (e.g. poll exists, or has votes)   5 unauthorized
  6 rehearse: verification failed (the origin's count does not match the edge's answers)
  replay: 5 a signature was refused, 1 a batch was not delivered, 2 a batch was refused or unreadable
`

var commands = []string{"create", "list", "show", "open", "close", "reset", "delete", "results", "export", "invites", "words", "stats", "rehearse", "replay", "completion", "help"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// globals are the flags every command takes.
type globals struct {
	origin string
	token  string
	output string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.origin, "origin", g.origin, "origin base `URL` (env EDGEPOLL_ORIGIN)")
	fs.StringVar(&g.token, "token", g.token, "admin bearer `token` (env EDGEPOLL_ADMIN_TOKEN)")
	fs.StringVar(&g.output, "o", g.output, "output format: table or json")
}

type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageErr{fmt.Sprintf(format, args...)} }

// parse parses flags interleaved with positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

type cli struct {
	g      globals
	stdout io.Writer
	stderr io.Writer
	client *adminclient.Client
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr}
	c.g.origin = getenv("EDGEPOLL_ORIGIN")
	if c.g.origin == "" {
		c.g.origin = "http://127.0.0.1:8080"
	}
	c.g.token = getenv("EDGEPOLL_ADMIN_TOKEN")
	c.g.output = "table"

	top := flag.NewFlagSet("pollctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	c.g.register(top)
	top.Usage = func() {}
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		return c.usage(err)
	}
	if top.NArg() == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmd, rest := top.Arg(0), top.Args()[1:]
	err := c.dispatch(ctx, cmd, rest)
	return c.exit(err)
}

func (c *cli) usage(err error) int {
	fmt.Fprintf(c.stderr, "pollctl: %v\nRun 'pollctl --help' for usage.\n", err)
	return exitUsage
}

func (c *cli) exit(err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue usageErr
	if errors.As(err, &ue) {
		return c.usage(err)
	}
	if errors.As(err, new(verifyErr)) {
		fmt.Fprintf(c.stderr, "pollctl: %v\n", err)
		return exitVerify
	}
	if errors.Is(err, context.Canceled) {
		return exitOK
	}
	fmt.Fprintf(c.stderr, "pollctl: %s\n", describe(err))
	switch shared.ErrorCode(err) {
	case shared.ENOTFOUND:
		return exitNotFound
	case shared.ECONFLICT:
		return exitConflict
	case shared.EUNAUTHORIZED:
		return exitUnauthorized
	case shared.EINVALID, shared.ETOOLARGE:
		return exitUsage
	}
	return exitError
}

func describe(err error) string {
	var e *shared.Error
	if errors.As(err, &e) {
		if e.Err != nil {
			return e.Message + ": " + e.Err.Error()
		}
		return e.Message
	}
	return err.Error()
}

// newFlags returns a command's flag set with the global flags registered.
func (c *cli) newFlags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	c.g.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.stdout, "Usage: pollctl %s %s\n\n%s\n\nFlags:\n", name, args, help)
		fs.SetOutput(c.stdout)
		fs.PrintDefaults()
		fs.SetOutput(c.stderr)
	}
	return fs
}

func (c *cli) connect() error {
	if c.g.output != "table" && c.g.output != "json" {
		return usagef("-o must be table or json, not %q", c.g.output)
	}
	if c.g.token == "" {
		return usagef("no admin token: set EDGEPOLL_ADMIN_TOKEN or --token")
	}
	if !strings.HasPrefix(c.g.origin, "http://") && !strings.HasPrefix(c.g.origin, "https://") {
		return usagef("--origin must be an http:// or https:// URL, not %q", c.g.origin)
	}
	c.client = adminclient.New(c.g.origin, c.g.token)
	return nil
}

// idArg parses a command that takes exactly one poll id.
func (c *cli) idArg(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("%s needs exactly one poll id", fs.Name())
	}
	if !shared.ValidPollID(pos[0]) {
		return "", usagef("poll id %q: 1-%d characters of A-Z a-z 0-9 - _", pos[0], shared.MaxPollIDLen)
	}
	return pos[0], c.connect()
}

func (c *cli) dispatch(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "help":
		fmt.Fprint(c.stdout, usageText)
		return nil
	case "create":
		return c.create(ctx, args)
	case "list":
		fs := c.newFlags("list", "", "List all polls.")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 0 {
			return usagef("list takes no arguments")
		}
		if err := c.connect(); err != nil {
			return err
		}
		ps, err := c.client.Polls(ctx)
		if err != nil {
			return err
		}
		return c.printPolls(ps)
	case "show", "open", "close", "reset", "delete":
		help := map[string]string{
			"show": "Show one poll's configuration.",
			"open": "Open a poll: votes received from now on count.",
			"close": "Close a poll. A poll taking votes stops " + shared.CloseLead.String() + " from now (the time edges need to learn of it),\n" +
				"so every edge stops at the same instant and no acknowledged vote is refused. --now stops it at once:\n" +
				"votes edges acknowledge meanwhile are then refused and shown as rejected in `pollctl results`.",
			"reset":  "Remove every vote of a poll (its configuration stays).",
			"delete": "Delete a poll and all its votes. A poll taking votes needs --force.",
		}[cmd]
		fs := c.newFlags(cmd, "<poll-id>", help)
		var immediate, force bool
		switch cmd {
		case "close":
			fs.BoolVar(&immediate, "now", false, "close at once (emergencies: acknowledged votes in flight are refused)")
		case "delete":
			fs.BoolVar(&force, "force", false, "delete even while the poll takes votes")
		}
		id, err := c.idArg(fs, args)
		if err != nil {
			return err
		}
		var p *shared.Poll
		switch cmd {
		case "show":
			p, err = c.client.Poll(ctx, id)
		case "open":
			p, err = c.client.Open(ctx, id)
		case "close":
			if p, err = c.client.Close(ctx, id, immediate); err == nil {
				return c.printClose(p)
			}
		case "reset":
			p, err = c.client.Reset(ctx, id)
		case "delete":
			if err = c.client.Delete(ctx, id, force); err == nil {
				if c.g.output == "json" {
					return c.printJSON(map[string]string{"deleted": id})
				}
				fmt.Fprintf(c.stdout, "deleted %s\n", id)
				return nil
			}
		}
		if err != nil {
			return err
		}
		return c.printPoll(p)
	case "results":
		return c.results(ctx, args)
	case "export":
		return c.export(ctx, args)
	case "invites":
		return c.invites(ctx, args)
	case "words":
		return c.words(ctx, args)
	case "stats":
		fs := c.newFlags("stats", "[<poll-id>]", "Show store-wide figures, or one poll's integrity report: tokens issued (as edges report them\n"+
			"every 10 s; for an invite poll the codes redeemed), tokens that voted, the top addresses or IPv6 /64s by tokens,\n"+
			"token requests refused by reason (JWT failures), and for an invite poll its codes' figures (refused reuses).")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if len(pos) > 1 {
			return usagef("stats takes at most one poll id")
		}
		if err := c.connect(); err != nil {
			return err
		}
		if len(pos) == 1 {
			if !shared.ValidPollID(pos[0]) {
				return usagef("poll id %q: 1-%d characters of A-Z a-z 0-9 - _", pos[0], shared.MaxPollIDLen)
			}
			return c.pollStats(ctx, pos[0])
		}
		st, err := c.client.Stats(ctx)
		if err != nil {
			return err
		}
		if c.g.output == "json" {
			return c.printJSON(st)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "polls\t%d\nvotes\t%d\nvoters\t%d\nused memory\t%d bytes\nredis nodes\t%d\nredis version\t%s\n",
			st.Polls, st.Votes, st.Voters, st.UsedMemory, st.RedisNodes, st.RedisVersion)
		return tw.Flush()
	case "rehearse":
		return c.rehearse(ctx, args)
	case "replay":
		return c.replay(ctx, args)
	case "completion":
		return c.completion(args)
	}
	return usagef("unknown command %q", cmd)
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func (c *cli) create(ctx context.Context, args []string) error {
	fs := c.newFlags("create", "[flags]", `Create a poll from flags, or from a JSON file with -f (a poll object as in
GET /v1/admin/polls/{id}, plus an optional "expected_voters").

Example:
  pollctl create --id show42 --title "Who wins?" --option Ann --option Bob --open`)
	var (
		req      adminclient.CreateRequest
		options  stringsFlag
		blocks   stringsFlag
		file     string
		open     bool
		opensAt  string
		closesAt string
		scale    shared.Scale
	)
	fs.StringVar(&file, "f", "", "read the poll from a JSON `file` (- for stdin)")
	fs.StringVar(&req.ID, "id", "", "poll id: 1-64 of A-Z a-z 0-9 - _")
	fs.StringVar(&req.Title, "title", "", "the question")
	fs.Var(&options, "option", "an option `label` (repeat, 2-64 times)")
	fs.StringVar((*string)(&req.Kind), "kind", "single", "single, multi, scale, ranked or words")
	fs.IntVar(&req.MaxChoices, "max-choices", 0, "multi and ranked polls: at most this many choices (ranked: default all options)")
	fs.IntVar(&scale.Min, "min", 1, "scale polls: the lowest value")
	fs.IntVar(&scale.Max, "max", 0, "scale polls: the highest value (2-101 steps from --min)")
	fs.StringVar(&scale.MinLabel, "min-label", "", "scale polls: a label for the lowest value")
	fs.StringVar(&scale.MaxLabel, "max-label", "", "scale polls: a label for the highest value")
	fs.IntVar(&req.MaxWords, "max-words", 0, "words polls: words per voter, 1-3 (default 1)")
	fs.Var(&blocks, "block", "words polls: a `word` never to show (repeat); added to the shipped default list")
	fs.StringVar((*string)(&req.Visibility), "visibility", "live", "live or after_close")
	fs.StringVar((*string)(&req.Identity), "identity", "open", "how voters get a token: open (one per browser, best effort), invite (single-use codes: pollctl invites create) or signed (a JWT from your app)")
	fs.StringVar(&req.JWTIssuer, "jwt-issuer", "", "signed polls: the iss the JWTs must carry")
	fs.StringVar(&req.JWTAudience, "jwt-audience", "", "signed polls: the aud the JWTs must carry")
	fs.StringVar(&opensAt, "opens-at", "", "refuse votes before this RFC 3339 `time`")
	fs.StringVar(&closesAt, "closes-at", "", "refuse votes from this RFC 3339 `time`")
	fs.IntVar(&req.ExpectedVoters, "expected-voters", 0, "audience size; sizes the dedupe buckets (default 1,000,000)")
	fs.BoolVar(&open, "open", false, "open the poll right away")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("create takes flags only, not %q", pos[0])
	}
	if file != "" {
		var data []byte
		if file == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			return usagef("read %s: %v", file, err)
		}
		req = adminclient.CreateRequest{}
		d := json.NewDecoder(strings.NewReader(string(data)))
		d.DisallowUnknownFields()
		if err := d.Decode(&req); err != nil {
			return usagef("%s: bad poll JSON: %v", file, err)
		}
	} else {
		for _, o := range options {
			req.Options = append(req.Options, shared.Option{Label: o})
		}
		if req.Kind == shared.KindScale {
			sc := scale
			req.Scale = &sc
		}
		req.Blocklist = blocks
		for _, t := range []struct {
			s   string
			dst *time.Time
		}{{opensAt, &req.OpensAt}, {closesAt, &req.ClosesAt}} {
			if t.s == "" {
				continue
			}
			v, err := time.Parse(time.RFC3339, t.s)
			if err != nil {
				return usagef("bad time %q: want RFC 3339, e.g. 2026-05-01T20:00:00Z", t.s)
			}
			*t.dst = v
		}
	}
	req.SetDefaults()
	if err := req.Poll.Validate(); err != nil {
		return usagef("%s", shared.ErrorMessage(err))
	}
	if err := c.connect(); err != nil {
		return err
	}
	p, err := c.client.CreatePoll(ctx, &req)
	if err != nil {
		return err
	}
	if open {
		if p, err = c.client.Open(ctx, p.ID); err != nil {
			return err
		}
	}
	return c.printPoll(p)
}

func (c *cli) results(ctx context.Context, args []string) error {
	fs := c.newFlags("results", "<poll-id> [--watch]", `Show a poll's results, fresh from the origin. With --watch, redraw a bar
chart every --interval until interrupted (or --count redraws).`)
	watch := fs.Bool("watch", false, "redraw live counts as a bar chart")
	method := fs.String("method", "", "ranked polls: plurality (first preferences, the default), borda, or irv (instant runoff from the ledger, every round printed)")
	interval := fs.Duration("interval", time.Second, "redraw interval with --watch")
	count := fs.Int("count", 0, "with --watch: stop after this many redraws (0 = until Ctrl-C)")
	id, err := c.idArg(fs, args)
	if err != nil {
		return err
	}
	if *interval < 50*time.Millisecond {
		return usagef("--interval must be at least 50ms")
	}
	switch *method {
	case "", "plurality", "borda":
	case "irv":
		if *watch {
			return usagef("--method irv does not --watch")
		}
		return c.irv(ctx, id)
	default:
		return usagef("--method must be plurality, borda or irv")
	}
	if !*watch {
		r, err := c.client.Results(ctx, id)
		if err != nil {
			return err
		}
		if *method == "borda" {
			if r.Kind != shared.KindRanked {
				return usagef("--method borda is for ranked polls; %s is %s", id, orSingle(r.Kind))
			}
			if c.g.output == "json" {
				return c.printJSON(r)
			}
			return c.printBorda(r)
		}
		if c.g.output == "json" {
			return c.printJSON(r)
		}
		return c.printResults(r, false)
	}
	t := time.NewTicker(*interval)
	defer t.Stop()
	for i := 0; *count == 0 || i < *count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		r, err := c.client.Results(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if c.g.output == "json" {
			if err := c.printJSON(r); err != nil {
				return err
			}
			continue
		}
		fmt.Fprint(c.stdout, "\x1b[H\x1b[2J") // home, clear screen
		if err := c.printResults(r, true); err != nil {
			return err
		}
	}
	return nil
}

// withLabels returns a copy of r whose options are label(i) for each count.
func withLabels(r *adminclient.Results, label func(int) string) *adminclient.Results {
	cp := *r
	cp.Options = make([]string, len(r.Counts))
	for i := range cp.Options {
		cp.Options[i] = label(i)
	}
	return &cp
}

func orSingle(k shared.Kind) string {
	if k == "" {
		return "single or multi"
	}
	return string(k)
}

// printBorda prints a ranked poll's options by Borda points.
func (c *cli) printBorda(r *adminclient.Results) error {
	fmt.Fprintf(c.stdout, "%s — %s [%s]  ballots %d  version %d\nBorda points (rank r of %d options gets %d - r):\n",
		r.Poll, r.Title, r.State, r.Voters, r.Version, len(r.Options), len(r.Options))
	order := make([]int, len(r.Options))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(r.Borda[b], r.Borda[a]) })
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, i := range order {
		fmt.Fprintf(tw, "%d\t%s\t%d\n", i, r.Options[i], r.Borda[i])
	}
	return tw.Flush()
}

// irv streams a ranked poll's ledger and prints its instant-runoff count.
func (c *cli) irv(ctx context.Context, id string) error {
	p, err := c.client.Poll(ctx, id)
	if err != nil {
		return err
	}
	if p.Kind != shared.KindRanked {
		return usagef("--method irv is for ranked polls; %s is %s", id, p.Kind)
	}
	tally := irv.NewTally(len(p.Options))
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := c.client.Export(ctx, id, "ledger", "json", pw)
		pw.CloseWithError(err)
		done <- err
	}()
	derr := readBallots(pr, tally.Add)
	pr.CloseWithError(derr)
	if err := <-done; err != nil && derr == nil {
		return err
	}
	if derr != nil {
		return shared.Wrap(shared.EUNAVAILABLE, derr, "read the ledger export")
	}
	rounds := tally.Count()
	if c.g.output == "json" {
		return c.printJSON(rounds)
	}
	labels := make([]string, len(p.Options))
	for i, o := range p.Options {
		labels[i] = o.Label
	}
	fmt.Fprintf(c.stdout, "%s — %s: instant runoff\n", p.ID, p.Title)
	_, err = io.WriteString(c.stdout, irv.Format(rounds, labels))
	return err
}

// readBallots decodes a ledger JSON export ({"poll",…,"ballots":[…]}) as
// it streams, handing each ballot's choices to add.
func readBallots(r io.Reader, add func([]uint8) error) error {
	d := json.NewDecoder(r)
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("ledger export is not a JSON object: %v", err)
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return err
		}
		if t != "ballots" {
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if t, err := d.Token(); err != nil || t != json.Delim('[') {
			return fmt.Errorf("ledger ballots are not an array: %v", err)
		}
		for d.More() {
			var b struct {
				Choices []uint8 `json:"choices"`
			}
			if err := d.Decode(&b); err != nil {
				return err
			}
			if err := add(b.Choices); err != nil {
				return err
			}
		}
		if _, err := d.Token(); err != nil {
			return err
		}
	}
	_, err := d.Token()
	return err
}

// words runs pollctl words ban|hidden.
func (c *cli) words(ctx context.Context, args []string) error {
	fs := c.newFlags("words", "ban <poll-id> <word> | hidden <poll-id>", `Moderate a words poll. "ban" hides a word (its normal form) from the
results from the next snapshot on; its ballots stay in the ledger, marked
hidden. "hidden" lists the poll's blocklist and bans.`)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 3 && pos[0] == "ban":
	case len(pos) == 2 && pos[0] == "hidden":
	default:
		return usagef("words ban <poll-id> <word>, or words hidden <poll-id>")
	}
	if !shared.ValidPollID(pos[1]) {
		return usagef("poll id %q: 1-%d characters of A-Z a-z 0-9 - _", pos[1], shared.MaxPollIDLen)
	}
	if err := c.connect(); err != nil {
		return err
	}
	if pos[0] == "ban" {
		w, err := c.client.BanWord(ctx, pos[1], pos[2])
		if err != nil {
			return err
		}
		if c.g.output == "json" {
			return c.printJSON(origin.BanResponse{Word: w, Hidden: true})
		}
		fmt.Fprintf(c.stdout, "%q is hidden in poll %s from the next snapshot on (its ballots stay in the ledger)\n", w, pos[1])
		return nil
	}
	ws, err := c.client.HiddenWords(ctx, pos[1])
	if err != nil {
		return err
	}
	if c.g.output == "json" {
		return c.printJSON(origin.HiddenList{Hidden: ws})
	}
	for _, w := range ws {
		fmt.Fprintln(c.stdout, w)
	}
	return nil
}

// barWidth is the width of the longest bar in the results chart.
const barWidth = 40

func (c *cli) printResults(r *adminclient.Results, chart bool) error {
	fmt.Fprintf(c.stdout, "%s — %s [%s]  voters %d  votes %d  version %d\n", r.Poll, r.Title, r.State, r.Voters, r.Total, r.Version)
	switch r.Kind {
	case shared.KindScale:
		fmt.Fprintf(c.stdout, "mean %s  median %s\n", r.Mean, r.Median)
		r = withLabels(r, func(i int) string { return strconv.FormatInt(*r.Min+int64(i), 10) })
	case shared.KindRanked:
		fmt.Fprintln(c.stdout, "first preferences (--method borda or irv for the other counts):")
	case shared.KindWords:
		exact := "exact"
		if r.DistinctExact != nil && !*r.DistinctExact {
			exact = fmt.Sprintf("estimated; counts may be up to %d high", *r.CountError)
		}
		fmt.Fprintf(c.stdout, "distinct words %d (%s)\n", *r.Distinct, exact)
		counts := make([]uint64, len(r.Words))
		for i, w := range r.Words {
			counts[i] = w.Count
		}
		cp := *r
		cp.Counts = counts
		r = withLabels(&cp, func(i int) string { return r.Words[i].Word })
	}
	var maxCount uint64
	for _, n := range r.Counts {
		maxCount = max(maxCount, n)
	}
	denom := r.Total // share of choices; of ballots where a ballot has several entries of one kind
	if r.Kind == shared.KindRanked || r.Kind == shared.KindWords {
		denom = r.Voters
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for i, label := range r.Options {
		var n uint64
		if i < len(r.Counts) {
			n = r.Counts[i]
		}
		pct := 0.0
		if denom > 0 {
			pct = 100 * float64(n) / float64(denom)
		}
		w := 0
		if maxCount > 0 {
			w = int(n * barWidth / maxCount)
		}
		bar := strings.Repeat("█", w)
		fmt.Fprintf(tw, "%d\t%s\t%d\t%5.1f%%\t%s\n", i, label, n, pct, bar)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, reason := range shared.Reasons {
		if n := r.Rejected[reason]; n > 0 {
			fmt.Fprintf(c.stdout, "rejected %s: %d\n", reason, n)
		}
	}
	if chart {
		fmt.Fprintf(c.stdout, "updated %s (Ctrl-C to stop)\n", r.GeneratedAt.Local().Format(time.TimeOnly))
	}
	return nil
}

func (c *cli) export(ctx context.Context, args []string) error {
	fs := c.newFlags("export", "<poll-id> results|ledger [--format csv|json] [-f file]",
		"Export a poll's results or its per-voter ledger, streamed to stdout or a file.")
	format := fs.String("format", "csv", "csv or json")
	file := fs.String("f", "", "write to this `file` instead of stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("export needs a poll id and results or ledger")
	}
	id, data := pos[0], pos[1]
	if !shared.ValidPollID(id) {
		return usagef("poll id %q: 1-%d characters of A-Z a-z 0-9 - _", id, shared.MaxPollIDLen)
	}
	if data != "results" && data != "ledger" {
		return usagef("export what? results or ledger, not %q", data)
	}
	if *format != "csv" && *format != "json" {
		return usagef("--format must be csv or json")
	}
	if err := c.connect(); err != nil {
		return err
	}
	var w io.Writer = c.stdout
	if *file != "" {
		tmp := *file + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return usagef("create %s: %v", *file, err)
		}
		if err := c.client.Export(ctx, id, data, *format, f); err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
		if err := f.Close(); err != nil {
			os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, *file)
	}
	return c.client.Export(ctx, id, data, *format, w)
}

// integrity is pollctl stats POLL's report.
type integrity struct {
	Poll        string              `json:"poll"`
	Identity    shared.Identity     `json:"identity"`
	Guarantee   string              `json:"guarantee"`
	TokensVoted uint64              `json:"tokens_voted"`
	Rejected    map[string]uint64   `json:"rejected_votes,omitempty"`
	Invites     *origin.InviteStats `json:"invites,omitempty"`
	// TokensIssued is what edges reported; for an invite poll the codes
	// redeemed, which the origin counts itself.
	TokensIssued uint64 `json:"tokens_issued"`
	// Edges is what edges reported: tokens issued, the top addresses (IPv6
	// by prefix) by tokens, refused token requests by reason (JWT failures).
	Edges *origin.IdentityReport `json:"edges"`
}

// pollStats prints a poll's integrity report from the origin's figures.
func (c *cli) pollStats(ctx context.Context, id string) error {
	p, err := c.client.Poll(ctx, id)
	if err != nil {
		return err
	}
	res, err := c.client.Results(ctx, id)
	if err != nil {
		return err
	}
	r := integrity{Poll: id, Identity: p.IdentityMode(), Guarantee: shared.IdentityNote(p.IdentityMode()), TokensVoted: res.Voters, Rejected: res.Rejected}
	if r.Edges, err = c.client.IdentityStats(ctx, id, 10); err != nil {
		return err
	}
	r.TokensIssued = r.Edges.TokensIssued
	if r.Identity == shared.IdentityInvite {
		if r.Invites, err = c.client.InviteStats(ctx, id); err != nil {
			return err
		}
		r.TokensIssued = r.Invites.Redeemed
	}
	if c.g.output == "json" {
		return c.printJSON(r)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "poll\t%s\nidentity\t%s (%s)\ntokens that voted\t%d\n", r.Poll, r.Identity, r.Guarantee, r.TokensVoted)
	if inv := r.Invites; inv != nil {
		fmt.Fprintf(tw, "tokens issued\t%d (codes redeemed)\ncodes created\t%d\ncodes unused\t%d\nrefused code reuses\t%d\nunknown codes tried\t%d\n",
			inv.Redeemed, inv.Created, inv.Created-min(inv.Created, inv.Redeemed), inv.Reused, inv.Unknown)
	} else {
		fmt.Fprintf(tw, "tokens issued\t%d (as edges reported)\n", r.TokensIssued)
	}
	for _, reason := range slices.Sorted(maps.Keys(r.Rejected)) {
		fmt.Fprintf(tw, "votes refused: %s\t%d\n", reason, r.Rejected[reason])
	}
	for _, reason := range slices.Sorted(maps.Keys(r.Edges.Refused)) {
		fmt.Fprintf(tw, "token requests refused: %s\t%d\n", reason, r.Edges.Refused[reason])
	}
	if len(r.Edges.TopAddresses) > 0 {
		fmt.Fprintf(tw, "top addresses by tokens\t\n")
		for _, a := range r.Edges.TopAddresses {
			fmt.Fprintf(tw, "  %s\t%d\n", a.Addr, a.Tokens)
		}
	}
	return tw.Flush()
}

// invites runs "invites create POLL --count N" and "invites used POLL".
// Their output is CSV whatever -o says (-o csv is accepted for clarity).
func (c *cli) invites(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "used") {
		return usagef("invites needs create or used: pollctl invites create POLL --count N -o csv, pollctl invites used POLL")
	}
	sub := args[0]
	help := map[string]string{
		"create": "Create N single-use invite codes for an invite poll and stream them as CSV (serial,code).\n" +
			"The codes are shown this once: the origin keeps only their keyed hashes. Give each voter one code.",
		"used": "List an invite poll's codes as CSV (serial,used): which were traded for a voter token.\n" +
			"Nothing says which code voted for what.",
	}[sub]
	fs := c.newFlags("invites "+sub, "<poll-id>", help)
	count := fs.Int("count", 0, "create: how many codes (1-10000000)")
	file := fs.String("f", "", "write to this `file` instead of stdout")
	id, err := c.csvIDArg(fs, args[1:])
	if err != nil {
		return err
	}
	if sub == "create" && (*count < 1 || *count > 10_000_000) {
		return usagef("--count must be 1-10000000")
	}
	var w io.Writer = c.stdout
	var f *os.File
	if *file != "" {
		if f, err = os.Create(*file); err != nil {
			return usagef("create %s: %v", *file, err)
		}
		w = f
	}
	if sub == "create" {
		var n int
		n, err = c.client.CreateInvites(ctx, id, *count, w)
		if err == nil && *file != "" {
			fmt.Fprintf(c.stderr, "%d codes written to %s\n", n, *file)
		}
	} else {
		err = c.client.Invites(ctx, id, w)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// csvIDArg is idArg for commands whose output is CSV: -o csv is allowed.
func (c *cli) csvIDArg(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if c.g.output == "csv" {
		c.g.output = "table"
	}
	if len(pos) != 1 {
		return "", usagef("%s needs exactly one poll id", fs.Name())
	}
	if !shared.ValidPollID(pos[0]) {
		return "", usagef("poll id %q: 1-%d characters of A-Z a-z 0-9 - _", pos[0], shared.MaxPollIDLen)
	}
	return pos[0], c.connect()
}

// verifyErr reports a rehearsal whose verification failed.
type verifyErr struct{}

func (verifyErr) Error() string { return "rehearsal verification failed" }

func (c *cli) rehearse(ctx context.Context, args []string) error {
	fs := c.newFlags("rehearse", "<poll-id> --edge URL (--rate N | --concurrency N) [flags]",
		`Rehearse a show: simulated voters get a token from the edge and vote (single or
multi, as the poll is), at a planned arrival rate (--rate, open model: late
starts are counted) or with a fixed number in flight (--concurrency, closed
model), for --duration or --voters. Against a loopback edge (127.x.x.x) the
voters come from 254 client addresses, 127.0.0.2-127.0.0.255, so per-address
rate limits act as for a real audience. Progress is drawn on stderr (a bar on
a terminal, else one line per second).

Afterwards the origin's count is checked through the admin API (--origin,
--token or --admin-token, or EDGEPOLL_ORIGIN/EDGEPOLL_ADMIN_TOKEN), once its
counts stop changing (at most --settle): the voters counted during the run
equal the voters acknowledged (202; a repeat acknowledged twice counts once),
no voter key is in the ledger twice, every receipt is in the ledger, and no
bad input is counted. Exit 6 when a check fails. Rehearse on a poll no real
audience votes in: the count is compared with the one before the run.

Example:
  pollctl rehearse demo --edge http://127.0.0.1:8788 --rate 1000 --duration 20s \
    --weights 5,3,2 --repeat-share 0.1 --bad-share 0.01`)
	var cfg rehearse.Config
	var weights string
	var noVerify, quiet bool
	fs.StringVar(&cfg.Edge, "edge", "", "the edge's base `URL` (required)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "voter arrivals per second (open model)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "voters in flight (closed model)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop starting voters after this long (default 10s without --voters)")
	fs.Int64Var(&cfg.Voters, "voters", 0, "stop after this many voters")
	fs.StringVar(&weights, "weights", "", "relative weight per option (scale: per value; words: per rehearsal word), e.g. 5,3,2 (default uniform)")
	fs.Float64Var(&cfg.RepeatShare, "repeat-share", 0, "share of voters who vote a second time (expect 409, or 202 at another isolate)")
	fs.Float64Var(&cfg.BadShare, "bad-share", 0, "share of voters who send bad input (expect 4xx, never counted)")
	fs.DurationVar(&cfg.Settle, "settle", 30*time.Second, "how long to wait for the origin's counts to stop changing")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&c.g.token, "admin-token", c.g.token, "admin bearer `token` (same as --token)")
	fs.BoolVar(&noVerify, "no-verify", false, "skip the verification against the origin")
	fs.BoolVar(&quiet, "q", false, "no live progress")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !shared.ValidPollID(pos[0]) {
		return usagef("rehearse needs exactly one poll id (1-%d characters of A-Z a-z 0-9 - _)", shared.MaxPollIDLen)
	}
	cfg.Poll = pos[0]
	if c.g.output != "table" && c.g.output != "json" {
		return usagef("-o must be table or json, not %q", c.g.output)
	}
	if !noVerify {
		if err := c.connect(); err != nil {
			return err
		}
		cfg.Admin = c.client
	}
	if cfg.Edge == "" {
		return usagef("rehearse needs --edge URL")
	}
	if (cfg.Rate > 0) == (cfg.Concurrency > 0) {
		return usagef("rehearse needs one of --rate and --concurrency")
	}
	if cfg.Duration == 0 && cfg.Voters == 0 {
		cfg.Duration = 10 * time.Second
	}
	for w := range strings.SplitSeq(weights, ",") {
		if w = strings.TrimSpace(w); w == "" && weights == "" {
			break
		}
		f, err := strconv.ParseFloat(w, 64)
		if err != nil || f < 0 {
			return usagef("--weights: %q is not a weight", w)
		}
		cfg.Weights = append(cfg.Weights, f)
	}
	if !quiet {
		cfg.Progress = c.stderr
		cfg.Terminal = isTerminal(c.stdout) && isTerminal(c.stderr)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := rehearse.Run(ctx, cfg)
	if err != nil && rep == nil {
		if shared.ErrorCode(err) == shared.EINVALID {
			return usagef("%s", shared.ErrorMessage(err))
		}
		return err
	}
	if c.g.output == "json" {
		if perr := c.printJSON(rep); perr != nil {
			return perr
		}
	} else if perr := rep.Table(c.stdout); perr != nil {
		return perr
	}
	switch {
	case err != nil:
		return fmt.Errorf("verification: %w", err)
	case rep.Interrupted:
		return errors.New("interrupted: the run was not verified")
	case rep.Verification != nil && !rep.Verification.Passed:
		return verifyErr{}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) printPoll(p *shared.Poll) error {
	if c.g.output == "json" {
		return c.printJSON(p)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\ntitle\t%s\nstate\t%s\nkind\t%s\n", p.ID, p.Title, p.State, p.Kind)
	if p.Kind == shared.KindMulti || p.Kind == shared.KindRanked {
		fmt.Fprintf(tw, "max choices\t%d\n", p.MaxChoices)
	}
	if sc := p.Scale; sc != nil {
		fmt.Fprintf(tw, "scale\t%d (%s) to %d (%s)\n", sc.Min, sc.MinLabel, sc.Max, sc.MaxLabel)
	}
	if p.Kind == shared.KindWords {
		fmt.Fprintf(tw, "max words\t%d\n", p.MaxWords)
	}
	fmt.Fprintf(tw, "visibility\t%s\nidentity\t%s (%s)\n", p.Visibility, p.IdentityMode(), shared.IdentityNote(p.IdentityMode()))
	if p.IdentityMode() == shared.IdentitySigned {
		fmt.Fprintf(tw, "jwt issuer\t%s\njwt audience\t%s\n", p.JWTIssuer, p.JWTAudience)
	}
	fmt.Fprintf(tw, "opens at\t%s\ncloses at\t%s\nversion\t%d\n",
		fmtTime(p.OpensAt), fmtTime(p.ClosesAt), p.Version)
	if p.Kind.HasOptions() {
		fmt.Fprintf(tw, "options\t\n")
	}
	for i, o := range p.Options {
		fmt.Fprintf(tw, "  %d\t%s\n", i, o.Label)
	}
	return tw.Flush()
}

// printClose reports when a closed poll really stops taking votes.
func (c *cli) printClose(p *shared.Poll) error {
	now := time.Now()
	stops := origin.StopsAt(p, now)
	if c.g.output == "json" {
		return c.printJSON(struct {
			Poll    *shared.Poll `json:"poll"`
			StopsAt time.Time    `json:"stops_at"`
		}{p, stops.UTC()})
	}
	if stops.After(now) {
		fmt.Fprintf(c.stdout, "poll %s stops taking votes at %s (in %s)\n", p.ID, stops.UTC().Format("2006-01-02T15:04:05.000Z07:00"), stops.Sub(now).Round(100*time.Millisecond))
		return nil
	}
	fmt.Fprintf(c.stdout, "poll %s is closed\n", p.ID)
	return nil
}

func (c *cli) printPolls(ps []*shared.Poll) error {
	if c.g.output == "json" {
		if ps == nil {
			ps = []*shared.Poll{}
		}
		return c.printJSON(ps)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tKIND\tOPTIONS\tVERSION\tTITLE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", p.ID, p.State, p.Kind, len(p.Options), p.Version, p.Title)
	}
	return tw.Flush()
}

func (c *cli) completion(args []string) error {
	if len(args) != 1 {
		return usagef("completion needs a shell: bash or zsh")
	}
	cmds := strings.Join(commands, " ")
	switch args[0] {
	case "bash":
		fmt.Fprintf(c.stdout, `# bash completion for pollctl; load with: source <(pollctl completion bash)
_pollctl() {
  local cur prev cmd
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  cmd="${COMP_WORDS[1]}"
  case "$prev" in
    -o) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "csv json" -- "$cur")); return ;;
    --kind) COMPREPLY=($(compgen -W "single multi scale ranked words" -- "$cur")); return ;;
    --method) COMPREPLY=($(compgen -W "plurality borda irv" -- "$cur")); return ;;
    --visibility) COMPREPLY=($(compgen -W "live after_close" -- "$cur")); return ;;
    --identity) COMPREPLY=($(compgen -W "open invite signed" -- "$cur")); return ;;
    -f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "%s" -- "$cur")); return
  fi
  case "$cmd" in
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
    export) if [[ $COMP_CWORD -eq 3 ]]; then COMPREPLY=($(compgen -W "results ledger" -- "$cur")); else COMPREPLY=($(compgen -W "--format -f" -- "$cur")); fi ;;
    invites) if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=($(compgen -W "create used" -- "$cur")); else COMPREPLY=($(compgen -W "--count -f -o" -- "$cur")); fi ;;
    results) COMPREPLY=($(compgen -W "--watch --interval --count --method -o" -- "$cur")) ;;
    words) if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=($(compgen -W "ban hidden" -- "$cur")); fi ;;
    rehearse) COMPREPLY=($(compgen -W "--edge --rate --concurrency --duration --voters --weights --repeat-share --bad-share --settle --timeout --no-verify --admin-token -q -o" -- "$cur")) ;;
    create) COMPREPLY=($(compgen -W "--id --title --option --kind --max-choices --visibility --identity --jwt-issuer --jwt-audience --opens-at --closes-at --expected-voters --open --min --max --min-label --max-label --max-words --block -f" -- "$cur")) ;;
  esac
}
complete -F _pollctl pollctl
`, cmds)
	case "zsh":
		fmt.Fprintf(c.stdout, `#compdef pollctl
# zsh completion for pollctl; load with: source <(pollctl completion zsh)
_pollctl() {
  local -a cmds
  cmds=(%s)
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    return
  fi
  case "$words[2]" in
    completion) _values 'shell' bash zsh ;;
    export) if (( CURRENT == 4 )); then _values 'data' results ledger; else _arguments '--format[format]:format:(csv json)' '-f[file]:file:_files'; fi ;;
    results) _arguments '--watch[redraw a bar chart]' '--interval[redraw interval]:duration:' '--count[redraws]:n:' '--method[ranked count]:method:(plurality borda irv)' '-o[output]:format:(table json)' ;;
    words) if (( CURRENT == 3 )); then _values 'action' ban hidden; fi ;;
    rehearse) _arguments '--edge[edge URL]:url:' '--rate[voters per second]:n:' '--concurrency[voters in flight]:n:' '--duration[run time]:duration:' '--voters[voters]:n:' '--weights[option weights]:w:' '--repeat-share[share voting twice]:s:' '--bad-share[share sending bad input]:s:' '--settle[wait for counts]:duration:' '--timeout[per request]:duration:' '--no-verify[skip verification]' '--admin-token[admin token]:token:' '-q[no progress]' '-o[output]:format:(table json)' ;;
    *) _arguments '-o[output]:format:(table json)' '--origin[origin URL]:url:' '--token[admin token]:token:' ;;
  esac
}
compdef _pollctl pollctl
`, cmds)
	default:
		return usagef("completion: unknown shell %q (bash or zsh)", args[0])
	}
	return nil
}
