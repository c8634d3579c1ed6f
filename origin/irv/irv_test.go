package irv_test

import (
	"strings"
	"testing"

	"github.com/edgepoll/edgepoll/origin/irv"
)

// The hand-worked examples of docs/API.md's rules. A ballot is written as
// letters in preference order ("CB": C first, then B), times a count.
func count(t *testing.T, n int, ballots map[string]int) string {
	t.Helper()
	tl := irv.NewTally(n)
	for b, k := range ballots {
		bb := make([]uint8, len(b))
		for i := range b {
			bb[i] = b[i] - 'A'
		}
		for range k {
			if err := tl.Add(bb); err != nil {
				t.Fatal(err)
			}
		}
	}
	return irv.Format(tl.Count(), []string{"A", "B", "C", "D"}[:n])
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		name    string
		n       int
		ballots map[string]int
		want    string
	}{
		{"majority in round 1", 3, map[string]int{"A": 2, "BA": 1},
			"round 1: A 2, B 1, C 0 (continuing 3, exhausted 0): A wins with 2 of 3\n"},
		{"transfers decide", 3, map[string]int{"A": 4, "B": 3, "CB": 2},
			"round 1: A 4, B 3, C 2 (continuing 9, exhausted 0): C eliminated\n" +
				"round 2: A 4, B 5 (continuing 9, exhausted 0): B wins with 5 of 9\n"},
		{"exhausted ballots leave the majority's base", 3, map[string]int{"A": 3, "B": 2, "CB": 2, "C": 2},
			"round 1: A 3, B 2, C 4 (continuing 9, exhausted 0): B eliminated\n" +
				"round 2: A 3, C 4 (continuing 7, exhausted 2): C wins with 4 of 7\n"},
		{"tie for fewest broken by the previous round", 4, map[string]int{"A": 6, "B": 4, "C": 3, "DC": 1},
			"round 1: A 6, B 4, C 3, D 1 (continuing 14, exhausted 0): D eliminated\n" +
				"round 2: A 6, B 4, C 4 (continuing 14, exhausted 0): C eliminated\n" +
				"round 3: A 6, B 4 (continuing 10, exhausted 4): A wins with 6 of 10\n"},
		{"tie in every round: highest index goes", 3, map[string]int{"A": 2, "B": 1, "C": 1},
			"round 1: A 2, B 1, C 1 (continuing 4, exhausted 0): C eliminated\n" +
				"round 2: A 2, B 1 (continuing 3, exhausted 1): A wins with 2 of 3\n"},
		{"two left and tied", 2, map[string]int{"A": 2, "B": 2},
			"round 1: A 2, B 2 (continuing 4, exhausted 0): B eliminated\n" +
				"round 2: A 2 (continuing 2, exhausted 2): A wins with 2 of 2\n"},
		{"majority beside options without votes", 4, map[string]int{"AB": 1, "BA": 1, "B": 1},
			"round 1: A 1, B 2, C 0, D 0 (continuing 3, exhausted 0): B wins with 2 of 3\n"},
		{"no ballots", 2, map[string]int{},
			"round 1: A 0, B 0 (continuing 0, exhausted 0): no ballots, no winner\n"},
	} {
		if got := count(t, c.n, c.ballots); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestAddRefusesBadBallots(t *testing.T) {
	tl := irv.NewTally(3)
	for _, b := range [][]uint8{{3}, {1, 1}} {
		if err := tl.Add(b); err == nil || !strings.Contains(err.Error(), "ballot") {
			t.Errorf("%v: %v", b, err)
		}
	}
}
