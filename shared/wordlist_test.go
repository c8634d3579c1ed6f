package shared_test

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/edgepoll/edgepoll/shared"
)

// TestDefaultHiddenWordsFromLDNOOBW regenerates the third-party part of the
// default list from the npm package the lockfile pins and compares it with
// the committed source, so the list's provenance can be checked.
func TestDefaultHiddenWordsFromLDNOOBW(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: install Node 20, then make deps (npm ci)")
	}
	cmd := exec.Command(node, "scripts/gen-wordlist.mjs")
	cmd.Dir = ".."
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/gen-wordlist.mjs: %v (run make deps: it needs naughty-words from npm)", err)
	}
	want, err := os.ReadFile("wordlist_ldnoobw.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("shared/wordlist_ldnoobw.go is not what scripts/gen-wordlist.mjs writes from naughty-words: regenerate it")
	}
	list := shared.DefaultHiddenWords()
	if len(list) < 250 || !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
		t.Fatalf("default list: %d words, sorted %v, want ≥ 250 sorted distinct words", len(list), slices.IsSorted(list))
	}
	for _, w := range []string{"fuck", "nigger", "bollocks", "asshole"} {
		if !slices.Contains(list, w) {
			t.Errorf("default list lacks %q", w)
		}
	}
	if slices.Contains(list, "amazing") {
		t.Error("default list hides an ordinary word")
	}
}
