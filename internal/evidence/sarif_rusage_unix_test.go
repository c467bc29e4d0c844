//go:build unix

package evidence

import (
	"syscall"
	"time"
)

// sarifCPUTime returns the CPU time (user and system) the process has used,
// so a benchmark can report cost independent of other load on the machine.
func sarifCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
