package shared

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Limits of a normalised word.
const (
	// MaxWordRunes is the most characters (code points) a word may have.
	MaxWordRunes = 24
	// MaxWordBytes bounds a normalised word's UTF-8 length.
	MaxWordBytes = MaxWordRunes * utf8.UTFMax
)

// folders pools case folders: a cases.Caser keeps state and must not be
// shared between goroutines.
var folders = sync.Pool{New: func() any { c := cases.Fold(); return &c }}

// NormalizeWord returns the normal form of a words-poll answer, the form it
// is counted and shown under, or an EINVALID error saying why s is not a
// word. The steps, in order:
//
//  1. Unicode NFKC;
//  2. full Unicode case folding (CaseFolding.txt, C+F mappings, no locale),
//     then NFKC again, since folding can leave a string unnormalised;
//  3. white space trimmed; U+2019 and U+02BC become an apostrophe, U+2010
//     a hyphen-minus;
//  4. 1-MaxWordRunes characters, each a letter (L*), a digit (Nd), a mark
//     (M*) after a letter, digit or mark, or a hyphen-minus or apostrophe
//     between two of those.
//
// Full folding (cases.Fold) rather than unicode.SimpleFold: simple folding
// maps one code point to one and leaves "Straße" and "STRASSE" apart, and
// SimpleFold only walks a case orbit, so a canonical member would have to be
// picked by hand; cases.Fold implements the Unicode caseless-matching
// definition the normal form is meant to be. ASCII input takes a fast path
// with the same result (NFKC leaves ASCII alone and folds it to lower case).
func NormalizeWord(s string) (string, error) {
	if len(s) > 4*MaxWordBytes {
		return "", Errorf(EINVALID, "a word may have at most %d characters", MaxWordRunes)
	}
	if !utf8.ValidString(s) {
		return "", Errorf(EINVALID, "a word must be valid UTF-8")
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	var w string
	if ascii {
		w = asciiFold(strings.TrimSpace(s))
	} else {
		w = norm.NFKC.String(s)
		c := folders.Get().(*cases.Caser)
		w = c.String(w)
		folders.Put(c)
		w = norm.NFKC.String(w)
		w = strings.TrimFunc(w, unicode.IsSpace)
		w = strings.Map(func(r rune) rune {
			switch r {
			case '\u2019', '\u02bc':
				return '\''
			case '\u2010':
				return '-'
			}
			return r
		}, w)
	}
	if err := checkWord(w); err != nil {
		return "", err
	}
	return w, nil
}

// asciiFold lower-cases an ASCII string, allocating only when it changes.
func asciiFold(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

var errWordChars = Errorf(EINVALID, "a word may contain only letters, digits and inner hyphens or apostrophes")

// checkWord applies step 4 of NormalizeWord to a folded, trimmed word.
func checkWord(w string) error {
	if w == "" {
		return Errorf(EINVALID, "a word must not be empty")
	}
	n := 0
	prevWord := false // previous rune is a letter, digit or mark
	joiner := false   // previous rune is '-' or '\''
	for _, r := range w {
		n++
		if n > MaxWordRunes {
			return Errorf(EINVALID, "a word may have at most %d characters", MaxWordRunes)
		}
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9'):
			prevWord, joiner = true, false
		case r == '-' || r == '\'':
			if !prevWord {
				return errWordChars
			}
			prevWord, joiner = false, true
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.Is(unicode.Nd, r)):
			prevWord, joiner = true, false
		case r >= utf8.RuneSelf && unicode.Is(unicode.M, r):
			if !prevWord {
				return errWordChars
			}
			joiner = false
		default:
			return errWordChars
		}
	}
	if joiner {
		return errWordChars
	}
	return nil
}
