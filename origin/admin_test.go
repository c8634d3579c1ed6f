package origin_test

import (
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/origin"
	"github.com/edgepoll/edgepoll/shared"
)

func TestSetDefaultsKinds(t *testing.T) {
	r := origin.CreateRequest{Poll: shared.Poll{Kind: shared.KindRanked, Options: make([]shared.Option, 5)}}
	r.SetDefaults()
	if r.MaxChoices != 5 {
		t.Errorf("ranked max_choices default %d, want 5", r.MaxChoices)
	}
	w := origin.CreateRequest{Poll: shared.Poll{Kind: shared.KindWords}}
	w.SetDefaults()
	if w.MaxWords != 1 {
		t.Errorf("words max_words default %d, want 1", w.MaxWords)
	}
}

// TestCheckLiveChangeKinds: a live scale may only widen and max_words only
// grow; anything else could refuse a ballot an edge already acknowledged.
func TestCheckLiveChangeKinds(t *testing.T) {
	now := time.Now()
	scale := &shared.Poll{ID: "s", Kind: shared.KindScale, State: shared.StateOpen, Scale: &shared.Scale{Min: 1, Max: 5}}
	words := &shared.Poll{ID: "w", Kind: shared.KindWords, State: shared.StateOpen, MaxWords: 2}
	for name, c := range map[string]struct {
		old      *shared.Poll
		mut      func(p *shared.Poll)
		conflict bool
	}{
		"scale widens":        {scale, func(p *shared.Poll) { p.Scale = &shared.Scale{Min: 0, Max: 7} }, false},
		"scale labels":        {scale, func(p *shared.Poll) { p.Scale = &shared.Scale{Min: 1, Max: 5, MinLabel: "low"} }, false},
		"scale narrows":       {scale, func(p *shared.Poll) { p.Scale = &shared.Scale{Min: 2, Max: 5} }, true},
		"scale shrinks top":   {scale, func(p *shared.Poll) { p.Scale = &shared.Scale{Min: 1, Max: 4} }, true},
		"max_words grows":     {words, func(p *shared.Poll) { p.MaxWords = 3 }, false},
		"max_words shrinks":   {words, func(p *shared.Poll) { p.MaxWords = 1 }, true},
		"words becomes scale": {words, func(p *shared.Poll) { p.Kind = shared.KindScale }, true},
	} {
		u := *c.old
		c.mut(&u)
		err := origin.CheckLiveChange(c.old, &u, now)
		if got := shared.ErrorCode(err) == shared.ECONFLICT; got != c.conflict {
			t.Errorf("%s: %v", name, err)
		}
	}
}
