package sqlstore

import "syscall"

// backgroundNice is the niceness of the checkpoint thread: the lowest
// priority, which still gets the CPU whenever the writer and the requests
// leave it idle.
const backgroundNice = 19

// backgroundThread lowers the CPU priority of the calling thread, which
// must be locked to its goroutine, and reports whether it could. On Linux
// each thread has its own niceness; raising it needs no privilege, but
// lowering it back does, so the thread stays in the background until it
// ends.
func backgroundThread() bool {
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice) == nil
}
