// Package tinygotest finds a TinyGo toolchain for the tests that also run
// the edge built with TinyGo (the wazero guest and the Worker). CI has no
// TinyGo: those tests skip, saying so and how to get it; that is the only
// reason they may skip.
package tinygotest

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Min is the oldest TinyGo release the edge is built with.
const Min = "0.41"

// NoTinyGo is why TinyGo tests are skipped when no tinygo is on PATH.
const NoTinyGo = "TinyGo tests not run: no tinygo " + Min + " or newer on PATH. " + howTo

const howTo = "Install TinyGo " + Min + "+ (https://tinygo.org/getting-started/install/, or build it " +
	"from source against LLVM 19 or 20; see README.md, Building with TinyGo) and put tinygo on PATH " +
	"to test the TinyGo guest and Worker too"

var (
	once    sync.Once
	version string // "" when no usable tinygo
	why     string
)

// Version reports the version of the tinygo on PATH ("0.41.0") when it is
// Min or newer; otherwise "" and why not.
func Version() (string, string) {
	once.Do(func() {
		path, err := exec.LookPath("tinygo")
		if err != nil {
			why = NoTinyGo
			return
		}
		out, err := exec.Command(path, "version").Output()
		if err != nil {
			why = "TinyGo tests not run: tinygo version: " + err.Error() + ". " + howTo
			return
		}
		m := regexp.MustCompile(`tinygo version (\d+)\.(\d+)(\.\d+)?`).FindStringSubmatch(string(out))
		if m == nil {
			why = "TinyGo tests not run: cannot read a version in " + strings.TrimSpace(string(out)) + ". " + howTo
			return
		}
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major == 0 && minor < 41 {
			why = "TinyGo tests not run: " + strings.TrimSpace(string(out)) + " is older than " + Min + ". " + howTo
			return
		}
		version = m[1] + "." + m[2] + m[3]
	})
	return version, why
}

// Require skips tb, saying why and how to get TinyGo, unless a usable
// tinygo is on PATH.
func Require(tb testing.TB) {
	tb.Helper()
	if v, why := Version(); v == "" {
		tb.Skip(why)
	}
}
