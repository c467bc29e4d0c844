package router

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket,
// made without telling the Go scheduler (RawSyscall). A goroutine entering
// an ordinary syscall must wake the runtime's monitor thread when that
// sleeps, so that it can take back the processor should the call block; on
// a mostly idle router the monitor sleeps between requests, and that
// wake-up (a futex call, often an inter-processor interrupt) then came
// before every write and read of every exchange: a sixth of the router's
// CPU and a few microseconds of each request's latency. These calls never
// block (EAGAIN instead), so there is nothing for the monitor to do.
func sysRead(fd int, p []byte) (int, error) { return rawIO1(syscall.SYS_READ, fd, p) }

func sysWrite(fd int, p []byte) (int, error) { return rawIO1(syscall.SYS_WRITE, fd, p) }

// rawIO1 makes the read or write system call trap on fd with p.
func rawIO1(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
