package local

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// DefaultLogMaxBytes is the size at which an instance's log file is rotated.
const DefaultLogMaxBytes int64 = 10 << 20

// openLog opens an instance log for appending. The file descriptor is handed
// to the child as its stdout or stderr, so the child keeps writing even while
// airlock restarts; O_APPEND lets rotateLog truncate it under the child.
func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// rotateLog moves the last max bytes of path to path.1 (replacing it) and
// truncates path, when path is larger than max. The child keeps writing to
// path (O_APPEND) meanwhile: the bytes are read up to the current end, and
// the file is truncated right after the last read, so only a line written
// in that instant can be lost. The check runs every Options.LogCheckInterval,
// so the file may exceed max by what the child writes in one interval.
func rotateLog(path string, max int64) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= max {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	off := fi.Size() - max
	var buf []byte
	for range 4 {
		fi, err := f.Stat()
		if err != nil {
			return false, err
		}
		if fi.Size() <= off {
			break
		}
		chunk := make([]byte, fi.Size()-off)
		n, err := f.ReadAt(chunk, off)
		if err != nil && err != io.EOF {
			return false, err
		}
		buf = append(buf, chunk[:n]...)
		off += int64(n)
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, err
	}
	if int64(len(buf)) > max {
		buf = buf[int64(len(buf))-max:]
	}
	// Start the previous file at a line boundary when one is near.
	if i := bytes.IndexByte(buf, '\n'); i >= 0 && i < len(buf)-1 {
		buf = buf[i+1:]
	}
	tmp := path + ".1.tmp"
	if err := os.WriteFile(tmp, buf, 0o600); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		return false, err
	}
	return true, nil
}

// TailLog returns the last n lines of the log at path, reading the rotated
// previous file path.1 too when the current one holds fewer lines. It reads
// at most 1 MiB of each file.
func TailLog(path string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	prev, err := readTail(path+".1", 1<<20)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	cur, err := readTail(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("tail %s: %w", path, err)
	}
	var all []byte
	if len(prev) > 0 {
		all = append(all, prev...)
		if all[len(all)-1] != '\n' {
			all = append(all, '\n')
		}
	}
	all = append(all, cur...)
	all = bytes.TrimRight(all, "\n")
	if len(all) == 0 {
		return nil, nil
	}
	lines := bytes.Split(all, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(l)
	}
	return out, nil
}

func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := fi.Size() - max
	if off < 0 {
		off = 0
	}
	buf := make([]byte, fi.Size()-off)
	n, err := f.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	buf = buf[:n]
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return buf, nil
}
