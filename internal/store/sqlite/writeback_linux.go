package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBack starts writing the file's dirty pages to disk and returns
// without waiting for them (sync_file_range with SYNC_FILE_RANGE_WRITE):
// no device cache flush, no wait, so it costs the caller microseconds.
var writeBack = func(f *os.File) error {
	return unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
