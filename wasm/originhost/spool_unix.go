//go:build unix

package originhost

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

const lockName = "LOCK"

// lockDir takes an exclusive flock on dir/LOCK, so that two hosts never
// share a spool; the kernel releases it when the process dies, kill -9
// included.
func lockDir(dir string) (func(), error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %s is in use by another process (lock %s): %w", dir, name, err)
	}
	return func() { f.Close() }, nil
}
