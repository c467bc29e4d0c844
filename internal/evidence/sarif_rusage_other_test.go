//go:build !unix

package evidence

import "time"

// sarifCPUTime is not measured on this platform.
func sarifCPUTime() time.Duration { return 0 }
