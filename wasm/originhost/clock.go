package originhost

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/edgepoll/edgepoll/shared"
)

// clockWatch compares this edge's clock with the origin's, read from the
// Date header of every origin response. An edge whose clock is off by more
// than shared.ClockSkew must not acknowledge votes: their receive times
// would be judged wrong against opens_at and closes_at (announced closes
// allow for ClockSkew only), and beyond the signing window the origin
// refuses the batches and then the votes. Submit answers 503 instead ("not
// recorded", safe to retry) until a response shows the clocks agree again.
type clockWatch struct {
	max    time.Duration // the bound; negative: never refuse
	skewed atomic.Int64  // the measured offset in ns when out of bounds, else 0
}

// observe records one response: the request started at start and its
// answer arrived at end (both on this edge's clock), stamped date by the
// origin (whole seconds, so the origin's time lay in [date, date+1s)).
func (w *clockWatch) observe(start, end time.Time, date string) {
	d, err := http.ParseTime(date)
	if err != nil || w.max < 0 {
		return
	}
	ahead := start.Sub(d) - time.Second // this clock is at least this far ahead
	behind := end.Sub(d)                // and at most this far ahead
	switch {
	case ahead > w.max:
		w.skewed.Store(int64(ahead))
	case behind < -w.max:
		w.skewed.Store(int64(behind))
	default:
		w.skewed.Store(0)
	}
}

// check returns EUNAVAILABLE while the last response showed the clocks
// apart by more than the bound.
func (w *clockWatch) check() error {
	if off := time.Duration(w.skewed.Load()); off != 0 {
		return shared.Errorf(shared.EUNAVAILABLE, "this edge's clock is %s off the origin's (more than %s): not taking votes until it is set right", off.Round(time.Second), w.max)
	}
	return nil
}

// clockTransport feeds every origin response's Date header to a clockWatch.
type clockTransport struct {
	base  http.RoundTripper
	now   func() time.Time
	watch *clockWatch
}

func (t *clockTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := t.now()
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		if d := resp.Header.Get("Date"); d != "" {
			t.watch.observe(start, t.now(), d)
		}
	}
	return resp, err
}
