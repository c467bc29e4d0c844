//go:build !linux

package router

import "syscall"

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket
// (see rawio_linux.go for why Linux makes them differently).
func sysRead(fd int, p []byte) (int, error) { return syscall.Read(fd, p) }

func sysWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
