package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// fileLog is the floor under any durable append on this machine: the
// least a store could do for an audit entry. Records go to one file by
// group commit, as airlock's writer does it (one goroutine takes whatever
// is queued, up to 256, writes it with one pwrite and waits for one
// fdatasync), each record hash-chained to the one before it, and nothing
// else: no database, no index, no SQL, no transaction. The file is written
// full of zeros and synced before the run and then overwritten as a ring,
// the best case for the disk (no block to allocate, no size to journal),
// as a WAL that starts over is. `-store file` measures it with the same
// open-loop load as the stores, so the two tails can be put side by side.
type fileLog struct {
	f       *os.File
	size    int64
	off     int64
	head    [sha256.Size]byte
	reqs    chan *fileReq
	done    chan struct{}
	buf     []byte
	observe func(writes int, cycle, commit time.Duration)
}

type fileReq struct {
	rec  []byte
	done chan error
}

// openFileLog creates the ring file at path, size bytes of zeros, synced.
func openFileLog(path string, size int64, observe func(int, time.Duration, time.Duration)) (*fileLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	zeros := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	l := &fileLog{f: f, size: size, reqs: make(chan *fileReq, 256), done: make(chan struct{}), observe: observe}
	go l.run()
	return l, nil
}

// Append writes one record and returns once it is on the disk.
func (l *fileLog) Append(ctx context.Context, i int) error {
	r := &fileReq{
		rec:  []byte(`{"seq":` + strconv.Itoa(i) + `,"actor":"ci","action":"create","kind":"Release","name":"shop-` + strconv.Itoa(i) + `","revision":1,"state":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`),
		done: make(chan error, 1),
	}
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

func (l *fileLog) run() {
	defer close(l.done)
	batch := make([]*fileReq, 0, 256)
	for r := range l.reqs {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		start := time.Now()
		l.buf = l.buf[:0]
		for _, r := range batch {
			h := sha256.New()
			h.Write(l.head[:])
			h.Write(r.rec)
			h.Sum(l.head[:0])
			l.buf = append(l.buf, r.rec...)
			l.buf = append(l.buf, ',')
			l.buf = hex.AppendEncode(l.buf, l.head[:])
			l.buf = append(l.buf, '\n')
		}
		ct := time.Now()
		err := l.commit()
		if l.observe != nil {
			l.observe(len(batch), time.Since(start), time.Since(ct))
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// commit writes l.buf at the ring's current offset and syncs the data.
func (l *fileLog) commit() error {
	if int64(len(l.buf)) > l.size {
		return errors.New("batch larger than the ring")
	}
	if l.off+int64(len(l.buf)) > l.size {
		l.off = 0
	}
	if _, err := l.f.WriteAt(l.buf, l.off); err != nil {
		return err
	}
	l.off += int64(len(l.buf))
	if err := fdatasync(l.f); err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	return nil
}

// Close stops the writer and closes the file.
func (l *fileLog) Close() error {
	close(l.reqs)
	<-l.done
	return l.f.Close()
}
