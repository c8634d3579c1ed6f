// Package adminclient is a net/http client of the origin's admin API
// (/v1/admin/), used by pollctl. Server errors come back as *shared.Error
// with the server's code; network failures are EUNAVAILABLE.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

// Client talks to one origin's admin API.
type Client struct {
	// BaseURL is the origin, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is the admin bearer token.
	Token string
	// HTTP is the client used; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// New returns a Client for baseURL and token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// CreateRequest is a poll to create plus storage hints.
type CreateRequest = origin.CreateRequest

// Update lists the fields of a poll to change; nil fields stay as they are.
type Update = origin.UpdateRequest

// Results is a fresh snapshot with option labels.
type Results = origin.Results

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// do sends a request and returns the response for a 2xx status; any other
// status is decoded into a *shared.Error. The caller closes the body.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, shared.Wrap(shared.EINVALID, err, "encode request")
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+"/v1/admin"+path, rd)
	if err != nil {
		return nil, shared.Wrap(shared.EINVALID, err, "bad origin URL")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, shared.Wrap(shared.EUNAVAILABLE, err, fmt.Sprintf("cannot reach origin %s", c.BaseURL))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// decodeError turns a non-2xx response into an *shared.Error.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Code    shared.Code `json:"code"`
			Message string      `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &body); err == nil && body.Error.Code != "" {
		return &shared.Error{Code: body.Error.Code, Message: body.Error.Message}
	}
	code := shared.EINTERNAL
	switch resp.StatusCode {
	case 400:
		code = shared.EINVALID
	case 401:
		code = shared.EUNAUTHORIZED
	case 403:
		code = shared.EFORBIDDEN
	case 404:
		code = shared.ENOTFOUND
	case 409:
		code = shared.ECONFLICT
	case 502, 503, 504:
		code = shared.EUNAVAILABLE
	}
	return shared.Errorf(code, "origin answered %s", resp.Status)
}

func (c *Client) doJSON(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return shared.Wrap(shared.EINTERNAL, err, "decode origin response")
	}
	return nil
}

func pollPath(id string, tail string) string { return "/polls/" + url.PathEscape(id) + tail }

// CreatePoll creates a poll. Returns ECONFLICT if the id exists, EINVALID for a bad poll.
func (c *Client) CreatePoll(ctx context.Context, r *CreateRequest) (*shared.Poll, error) {
	var p shared.Poll
	return &p, c.doJSON(ctx, http.MethodPost, "/polls", r, &p)
}

// Polls lists all polls ordered by id.
func (c *Client) Polls(ctx context.Context) ([]*shared.Poll, error) {
	var l struct {
		Polls []*shared.Poll `json:"polls"`
	}
	err := c.doJSON(ctx, http.MethodGet, "/polls", nil, &l)
	return l.Polls, err
}

// Poll returns one poll. Returns ENOTFOUND.
func (c *Client) Poll(ctx context.Context, id string) (*shared.Poll, error) {
	var p shared.Poll
	return &p, c.doJSON(ctx, http.MethodGet, pollPath(id, ""), nil, &p)
}

// UpdatePoll changes the fields set in u.
func (c *Client) UpdatePoll(ctx context.Context, id string, u *Update) (*shared.Poll, error) {
	var p shared.Poll
	return &p, c.doJSON(ctx, http.MethodPatch, pollPath(id, ""), u, &p)
}

// Open opens a poll for votes.
func (c *Client) Open(ctx context.Context, id string) (*shared.Poll, error) {
	var p shared.Poll
	return &p, c.doJSON(ctx, http.MethodPost, pollPath(id, "/open"), nil, &p)
}

// Close closes a poll. By default the origin announces the close ahead
// (closes_at = now + shared.CloseLead, see origin.AnnounceClose) so no
// acknowledged vote is refused; immediate closes at once, and votes edges
// acknowledged meanwhile are refused as poll_closed.
func (c *Client) Close(ctx context.Context, id string, immediate bool) (*shared.Poll, error) {
	var p shared.Poll
	path := pollPath(id, "/close")
	if immediate {
		path += "?now=true"
	}
	return &p, c.doJSON(ctx, http.MethodPost, path, nil, &p)
}

// Reset removes all votes of a poll.
func (c *Client) Reset(ctx context.Context, id string) (*shared.Poll, error) {
	var p shared.Poll
	return &p, c.doJSON(ctx, http.MethodPost, pollPath(id, "/reset"), nil, &p)
}

// Delete removes a poll and its votes. A poll taking votes is refused
// with ECONFLICT unless force is set.
func (c *Client) Delete(ctx context.Context, id string, force bool) error {
	path := pollPath(id, "")
	if force {
		path += "?force=true"
	}
	return c.doJSON(ctx, http.MethodDelete, path, nil, nil)
}

// Results returns a fresh snapshot of a poll, whatever its visibility.
func (c *Client) Results(ctx context.Context, id string) (*Results, error) {
	var r Results
	return &r, c.doJSON(ctx, http.MethodGet, pollPath(id, "/results"), nil, &r)
}

// BanWord hides a word of a words poll; it returns the word's normal form.
func (c *Client) BanWord(ctx context.Context, id, word string) (string, error) {
	var r origin.BanResponse
	err := c.doJSON(ctx, http.MethodPost, pollPath(id, "/words/ban"), origin.BanRequest{Word: word}, &r)
	return r.Word, err
}

// HiddenWords lists a words poll's blocklist and bans.
func (c *Client) HiddenWords(ctx context.Context, id string) ([]string, error) {
	var r origin.HiddenList
	err := c.doJSON(ctx, http.MethodGet, pollPath(id, "/words/hidden"), nil, &r)
	return r.Hidden, err
}

// Stats returns store-wide figures.
func (c *Client) Stats(ctx context.Context) (*origin.Stats, error) {
	var s origin.Stats
	return &s, c.doJSON(ctx, http.MethodGet, "/stats", nil, &s)
}

// Export streams an export of a poll to w. data is "results" or "ledger",
// format "csv" or "json". A body cut short by the server is an error.
func (c *Client) Export(ctx context.Context, id, data, format string, w io.Writer) error {
	q := url.Values{"data": {data}, "format": {format}}
	resp, err := c.do(ctx, http.MethodGet, pollPath(id, "/export?"+q.Encode()), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || n > 0 {
			return shared.Wrap(shared.EUNAVAILABLE, err, "export interrupted")
		}
		return shared.Wrap(shared.EUNAVAILABLE, err, "export failed")
	}
	return nil
}

// CreateInvites asks the origin for count new single-use codes of an
// invite poll and copies its CSV (serial,code) to w as it arrives: the
// codes are shown this once and never stored in clear. Returns the number
// of codes written, and EUNAVAILABLE when fewer than count arrived (the
// origin stores and sends them in chunks; those written are valid).
func (c *Client) CreateInvites(ctx context.Context, id string, count int, w io.Writer) (int, error) {
	resp, err := c.do(ctx, http.MethodPost, pollPath(id, "/invites?count="+strconv.Itoa(count)), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	lc := &lineCounter{w: w}
	_, err = io.Copy(lc, resp.Body)
	n := max(lc.lines-1, 0) // minus the header
	if err != nil {
		return n, shared.Wrap(shared.EUNAVAILABLE, err, fmt.Sprintf("invite creation interrupted after %d of %d codes", n, count))
	}
	if n != count {
		return n, shared.Errorf(shared.EUNAVAILABLE, "the origin created %d of %d codes (see its log); those written are valid", n, count)
	}
	return n, nil
}

// Invites copies an invite poll's codes as CSV (serial,used) to w.
func (c *Client) Invites(ctx context.Context, id string, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, pollPath(id, "/invites"), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return shared.Wrap(shared.EUNAVAILABLE, err, "invite export interrupted")
	}
	return nil
}

// InviteStats returns an invite poll's code figures.
func (c *Client) InviteStats(ctx context.Context, id string) (*origin.InviteStats, error) {
	var st origin.InviteStats
	if err := c.doJSON(ctx, http.MethodGet, pollPath(id, "/invites/stats"), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// lineCounter passes writes through and counts newlines.
type lineCounter struct {
	w     io.Writer
	lines int
}

func (l *lineCounter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.lines += bytes.Count(p[:n], []byte{'\n'})
	return n, err
}

// IdentityStats returns the identity figures edges reported for a poll,
// with its top addresses (or IPv6 prefixes) by tokens issued.
func (c *Client) IdentityStats(ctx context.Context, id string, top int) (*origin.IdentityReport, error) {
	var r origin.IdentityReport
	if err := c.doJSON(ctx, http.MethodGet, pollPath(id, "/identity-stats?top="+strconv.Itoa(top)), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
