//go:build !unix

package originhost

// lockDir does nothing where flock is missing: run one host per spool.
func lockDir(string) (func(), error) { return func() {}, nil }
