//go:build !linux

package sqlstore

// backgroundThread reports false: elsewhere than on Linux, the niceness of
// one thread cannot be set apart from its process's.
func backgroundThread() bool { return false }
