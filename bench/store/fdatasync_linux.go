package main

import (
	"os"
	"syscall"
)

// fdatasync syncs f's data and size, as SQLite does here with
// sqlite.Fdatasync(true).
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
