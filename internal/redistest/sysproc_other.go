//go:build unix && !linux

package redistest

import "syscall"

// sysProcAttr puts the server in its own process group so it can be stopped as a group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
