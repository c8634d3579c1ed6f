package shared

import (
	"slices"
	"sync"
)

// DefaultHiddenWords returns the shipped default list of words a words poll
// never shows (each poll adds its own blocklist, and operators ban words
// during a show), in normal form (NormalizeWord), sorted, without repeats.
// The slice is shared: callers must not change it. It is built on first
// use, so the edge, which never needs it, pays nothing at start-up.
//
// It is the union of the single-word entries of the English LDNOOBW list
// (ldnoobwEnglish, CC BY 4.0; see wordlist_ldnoobw.go for the attribution)
// and edgepoll's own additions (ownHiddenWords). It is a floor, not a
// moderation policy.
func DefaultHiddenWords() []string {
	defaultHiddenOnce.Do(func() {
		seen := map[string]bool{}
		for _, list := range [][]string{ldnoobwEnglish, ownHiddenWords} {
			for _, w := range list {
				// Entries that cannot be one word of a words poll (an
				// emoji, "s&m") could never be shown anyway.
				if n, err := NormalizeWord(w); err == nil && !seen[n] {
					seen[n] = true
					defaultHidden = append(defaultHidden, n)
				}
			}
		}
		slices.Sort(defaultHidden)
	})
	return defaultHidden
}

var (
	defaultHiddenOnce sync.Once
	defaultHidden     []string
)

// ownHiddenWords are edgepoll's additions to the LDNOOBW list: slurs and
// obscenities common in live audiences' English that it lacks.
var ownHiddenWords = []string{
	"asshole", "bastard", "bitch", "bollocks", "bullshit", "chink", "cock",
	"cunt", "dick", "dyke", "fag", "faggot", "fuck", "fucker", "fucking",
	"gook", "kike", "motherfucker", "nigga", "nigger", "paki", "prick",
	"pussy", "retard", "shit", "slut", "spic", "tranny", "twat", "wank",
	"wanker", "wetback", "whore",
}
