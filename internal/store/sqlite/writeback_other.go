//go:build !linux

package sqlite

import "os"

// writeBack is nil where the system cannot start a file's write-back without
// waiting for it: the database file's pages then wait for the sync of a
// complete checkpoint, or for the system's own write-back.
var writeBack func(f *os.File) error
