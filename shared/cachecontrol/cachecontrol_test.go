package cachecontrol_test

import (
	"testing"
	"time"

	"github.com/edgepoll/edgepoll/shared/cachecontrol"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want cachecontrol.Directives
	}{
		{"", cachecontrol.Directives{}},
		{"public, max-age=5, stale-while-revalidate=30", cachecontrol.Directives{MaxAge: 5 * time.Second, SWR: 30 * time.Second, Set: true}},
		{"max-age=60, s-maxage=2", cachecontrol.Directives{MaxAge: 2 * time.Second, Set: true}},
		{"s-maxage=2, max-age=60", cachecontrol.Directives{MaxAge: 2 * time.Second, Set: true}},
		{`MAX-AGE="7"`, cachecontrol.Directives{MaxAge: 7 * time.Second, Set: true}},
		{"max-age=-3, stale-while-revalidate=x", cachecontrol.Directives{Set: true}},
		{"max-age=5, no-store, stale-while-revalidate=9", cachecontrol.Directives{NoStore: true, Set: true}},
		{"private, max-age=60", cachecontrol.Directives{NoStore: true, Set: true}},
		{"no-store", cachecontrol.Directives{NoStore: true, Set: true}},
		{"public,max-age=1,stale-while-revalidate=5", cachecontrol.Directives{MaxAge: time.Second, SWR: 5 * time.Second, Set: true}},
		{"max-age=bogus", cachecontrol.Directives{Set: true}},
		{"stale-while-revalidate=9", cachecontrol.Directives{SWR: 9 * time.Second}},
	} {
		if got := cachecontrol.Parse(tc.in); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		cachecontrol.Parse("public, max-age=1, stale-while-revalidate=5")
	}
}
