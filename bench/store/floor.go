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

	"github.com/jackc/pgx/v5"
)

// groupLog is the floor under any durable append on this machine: the
// least a store could do for an audit entry. Records are group-committed,
// as airlock's writer does it (one goroutine takes whatever is queued, up
// to 256, and commits it with one write and one wait for the disk), each
// record hash-chained to the one before it, and nothing else: no index, no
// object, no audit head to read. `-store file` and `-store postgres-floor`
// measure it with the same open-loop load as the stores, so the tails can
// be put side by side.
type groupLog struct {
	head    [sha256.Size]byte
	reqs    chan *logReq
	done    chan struct{}
	commit  func(batch []*logReq) error
	closer  func() error // of what commit writes to
	observe func(writes int, cycle, commit time.Duration)
}

type logReq struct {
	seq  int
	rec  []byte
	hash [sha256.Size]byte // of the record before it and this record
	done chan error
}

func newGroupLog(commit func([]*logReq) error, closer func() error, observe func(int, time.Duration, time.Duration)) *groupLog {
	l := &groupLog{reqs: make(chan *logReq, 256), done: make(chan struct{}), commit: commit, closer: closer, observe: observe}
	go l.run()
	return l
}

// Append writes one record and returns once it is durable.
func (l *groupLog) Append(ctx context.Context, i int) error {
	r := &logReq{
		seq:  i,
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

func (l *groupLog) run() {
	defer close(l.done)
	batch := make([]*logReq, 0, 256)
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
		for _, r := range batch {
			h := sha256.New()
			h.Write(l.head[:])
			h.Write(r.rec)
			h.Sum(l.head[:0])
			r.hash = l.head
		}
		ct := time.Now()
		err := l.commit(batch)
		if l.observe != nil {
			l.observe(len(batch), time.Since(start), time.Since(ct))
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// Close stops the writer and closes what it wrote to.
func (l *groupLog) Close() error {
	close(l.reqs)
	<-l.done
	return l.closer()
}

// openFileLog writes the records to a plain file, one line each (the
// record, a comma, its chained hash), one pwrite and one fdatasync a
// batch. The file at path is created size bytes of zeros and synced
// before the run, and then overwritten as a ring: the best case for the
// disk (no block to allocate, no size to journal), as a WAL that starts
// over is.
func openFileLog(path string, size int64, observe func(int, time.Duration, time.Duration)) (*groupLog, error) {
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
	var (
		buf []byte
		off int64
	)
	commit := func(batch []*logReq) error {
		buf = buf[:0]
		for _, r := range batch {
			buf = append(buf, r.rec...)
			buf = append(buf, ',')
			buf = hex.AppendEncode(buf, r.hash[:])
			buf = append(buf, '\n')
		}
		if int64(len(buf)) > size {
			return errors.New("batch larger than the ring")
		}
		if off+int64(len(buf)) > size {
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			return err
		}
		off += int64(len(buf))
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		return nil
	}
	return newGroupLog(commit, f.Close, observe), nil
}

// openPostgresLog writes the records to a table of the PostgreSQL database
// at url, with no index and no constraint: one statement a batch, which
// inserts every record of the batch as its own transaction (one round trip,
// one wait for the server's WAL flush). It is the least any store on that
// server can do for a batch of entries, as the file is on this disk.
func openPostgresLog(ctx context.Context, url string, observe func(int, time.Duration, time.Duration)) (*groupLog, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE floor_log (seq bigint NOT NULL, rec text NOT NULL, hash text NOT NULL)"); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	var (
		seqs         []int64
		recs, hashes []string
	)
	commit := func(batch []*logReq) error {
		seqs, recs, hashes = seqs[:0], recs[:0], hashes[:0]
		for _, r := range batch {
			seqs = append(seqs, int64(r.seq))
			recs = append(recs, string(r.rec))
			hashes = append(hashes, hex.EncodeToString(r.hash[:]))
		}
		tag, err := conn.Exec(context.Background(), "INSERT INTO floor_log (seq, rec, hash) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])", seqs, recs, hashes)
		if err == nil && tag.RowsAffected() != int64(len(batch)) {
			err = fmt.Errorf("inserted %d records of %d", tag.RowsAffected(), len(batch))
		}
		return err
	}
	return newGroupLog(commit, func() error { return conn.Close(context.Background()) }, observe), nil
}
