package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

type writeReq struct {
	ctx   context.Context
	actor store.Actor
	fn    func(store.Tx) error
	done  chan error // buffered, receives exactly one result
}

// Write implements store.Store. The call is queued for the writer
// goroutine, which runs fn inside its own savepoint of a transaction it may
// share with other callers, and returns once that transaction has committed
// (or failed). If ctx is done before fn starts, fn is not run and ctx.Err()
// is returned; once fn has started, Write waits for the outcome.
func (s *Store) Write(ctx context.Context, actor store.Actor, fn func(tx store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, actor: actor, fn: fn, done: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.closing:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-s.writerDone:
		select {
		case err := <-r.done:
			return err
		default:
			return store.ErrClosed // queued after the writer stopped: never ran
		}
	}
}

// writer is the one goroutine that writes. It takes whatever calls are
// queued (up to MaxBatch) and commits them in one transaction.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*writeReq, 0, s.maxBatch)
	for {
		select {
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		case <-s.closing:
			for {
				select {
				case r := <-s.reqs:
					r.done <- store.ErrClosed
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		clear(batch)
	}
}

// runBatch runs one group commit and answers every caller in it.
func (s *Store) runBatch(batch []*writeReq) {
	results := make([]error, len(batch))
	appended, err := s.commitBatch(batch, results)
	for i, r := range batch {
		if err != nil && results[i] == nil {
			results[i] = err
		}
		r.done <- results[i]
	}
	if err == nil && appended {
		s.broadcast()
	}
}

// commitBatch runs the batch in one transaction. It fills results with each
// caller's own outcome and returns an error that fails the whole batch.
func (s *Store) commitBatch(batch []*writeReq, results []error) (appended bool, err error) {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin write transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var (
		seq  int64
		hash string
	)
	if err := s.queryRow(ctx, tx, s.q.lockHead).Scan(&seq, &hash); err != nil {
		return false, fmt.Errorf("lock audit head: %w", err)
	}
	startSeq := seq
	var entries []audit.Entry
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		t := &txn{s: s, tx: tx, actor: r.actor, now: s.now().UTC().Round(0), seq: seq, hash: hash}
		ferr := t.call(r.fn)
		t.finished = true
		if ferr == nil && t.broken != nil {
			ferr = fmt.Errorf("a statement failed inside the write, so it was rolled back: %w", t.broken)
		}
		// Unless the dialect keeps them, savepoints are released. A kept
		// one is harmless: each caller's is the newest one named w while it
		// runs, so ROLLBACK TO reaches exactly its own changes, and COMMIT
		// releases them all.
		if ferr != nil {
			results[i] = ferr
			if t.inSavepoint {
				if _, err := s.exec(ctx, tx, "ROLLBACK TO SAVEPOINT w"); err != nil {
					return false, fmt.Errorf("roll back failed write: %w", err)
				}
			}
		}
		if t.inSavepoint && !s.d.KeepSavepoints {
			if _, err := s.exec(ctx, tx, "RELEASE SAVEPOINT w"); err != nil {
				return false, fmt.Errorf("release savepoint: %w", err)
			}
		}
		if ferr != nil {
			continue
		}
		seq, hash = t.seq, t.hash
		entries = append(entries, t.entries...)
	}
	if seq == startSeq {
		return false, tx.Commit() // reads only, or every fn failed
	}
	if err := s.insertEntries(ctx, tx, entries); err != nil {
		return false, err
	}
	if _, err := s.exec(ctx, tx, s.q.updateHead, seq, hash); err != nil {
		return false, fmt.Errorf("advance audit head: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit write transaction: %w", err)
	}
	return true, nil
}

const entryCols = "seq, time, actor, action, kind, name, revision, reason, state_hash, prev_hash, hash"

// entryChunk bounds the rows of one multi-row insert (11 parameters each).
const entryChunk = 128

// insertEntriesQuery returns the insert of n audit entries (1 to
// entryChunk), built once per n.
func (s *Store) insertEntriesQuery(n int) string {
	return s.rowsQuery(&s.entryQueries, n, "INSERT INTO audit_entries ("+entryCols+") VALUES ", "(?,?,?,?,?,?,?,?,?,?,?)")
}

// insertLabelsQuery returns the insert of n label rows, built once per n.
func (s *Store) insertLabelsQuery(n int) string {
	return s.rowsQuery(&s.labelQueries, n, "INSERT INTO object_labels (kind, name, key, value) VALUES ", "(?,?,?,?)")
}

// rowsQuery returns, from cache, the multi-row statement head followed by
// n copies of row, rebound for the dialect.
func (s *Store) rowsQuery(cache *sync.Map, n int, head, row string) string {
	if q, ok := cache.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	q := s.d.rebind(b.String())
	cache.Store(n, q)
	return q
}

func (s *Store) insertEntries(ctx context.Context, tx *sql.Tx, entries []audit.Entry) error {
	args := make([]any, 0, min(len(entries), entryChunk)*11)
	for len(entries) > 0 {
		n := min(len(entries), entryChunk)
		args = args[:0]
		for _, e := range entries[:n] {
			args = append(args, e.Seq, e.Time.UnixNano(), e.Actor, e.Action, e.Kind, e.Name, e.Revision, e.Reason, e.StateHash, e.PrevHash, e.Hash)
		}
		if _, err := s.exec(ctx, tx, s.insertEntriesQuery(n), args...); err != nil {
			return fmt.Errorf("append audit entries %d to %d: %w", entries[0].Seq, entries[n-1].Seq, err)
		}
		entries = entries[n:]
	}
	return nil
}

// txn is one caller's view of a batch transaction. Its audit entries are
// kept in memory and inserted when the batch commits; its object writes go
// to the database at once, inside a savepoint taken before the first one.
type txn struct {
	s     *Store
	tx    *sql.Tx
	actor store.Actor
	now   time.Time

	seq     int64 // audit head as this caller sees it
	hash    string
	entries []audit.Entry

	inSavepoint bool
	broken      error // a statement failed; the write cannot succeed
	finished    bool
}

var _ store.Tx = (*txn)(nil)

func (t *txn) call(fn func(store.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write function panicked: %v", p)
		}
	}()
	return fn(t)
}

// Now implements store.Tx.
func (t *txn) Now() time.Time { return t.now }

func (t *txn) usable(ctx context.Context) error {
	if t.finished {
		return errors.New("store: transaction used after its write function returned")
	}
	if t.broken != nil {
		return fmt.Errorf("an earlier statement in this write failed: %w", t.broken)
	}
	return ctx.Err()
}

// dbctx detaches a caller's context from the statements it runs: one
// caller's cancellation must not break a transaction others share.
func dbctx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (t *txn) fail(err error) error {
	t.broken = err
	return err
}

// mutate opens the caller's savepoint before its first change.
func (t *txn) mutate(ctx context.Context) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	if t.inSavepoint {
		return nil
	}
	if _, err := t.s.exec(dbctx(ctx), t.tx, "SAVEPOINT w"); err != nil {
		return t.fail(fmt.Errorf("savepoint: %w", err))
	}
	t.inSavepoint = true
	return nil
}

// Get implements store.Reader inside the transaction.
func (t *txn) Get(ctx context.Context, kind, name string) (*resource.Object, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	obj, err := t.s.get(dbctx(ctx), t.tx, kind, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.fail(err)
	}
	return obj, err
}

// List implements store.Reader inside the transaction.
func (t *txn) List(ctx context.Context, kind string, sel resource.Selector) ([]*resource.Object, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	objs, err := t.s.list(dbctx(ctx), t.tx, kind, sel)
	if err != nil {
		t.fail(err)
	}
	return objs, err
}

func validate(obj *resource.Object) error {
	if obj == nil {
		return errors.New("store: nil object")
	}
	if obj.Kind == "" {
		return fmt.Errorf("object %q has no kind", obj.Metadata.Name)
	}
	if err := resource.ValidateName(obj.Metadata.Name); err != nil {
		return fmt.Errorf("%s: %w", obj.Kind, err)
	}
	if err := resource.ValidateLabels(obj.Metadata.Labels); err != nil {
		return fmt.Errorf("%s: %w", obj.Ref(), err)
	}
	return nil
}

// Create implements store.Tx.
func (t *txn) Create(ctx context.Context, obj *resource.Object) (*resource.Object, error) {
	if err := validate(obj); err != nil {
		return nil, err
	}
	o, labels, err := normalize(obj)
	if err != nil {
		return nil, err
	}
	o.Metadata.Revision = t.seq + 1
	o.Metadata.CreatedAt = t.now
	o.Metadata.UpdatedAt = t.now
	stateHash, err := audit.StateHash(o)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", o.Ref(), err)
	}
	if err := t.mutate(ctx); err != nil {
		return nil, err
	}
	ts := t.now.UnixNano()
	if t.s.q.insertObjectLabels != "" {
		// One statement writes the object and its labels.
		keys, values := labelColumns(o.Metadata.Labels)
		var n int
		if err := t.s.queryRow(dbctx(ctx), t.tx, t.s.q.insertObjectLabels, o.Kind, o.Metadata.Name, o.Metadata.Revision, ts, ts, labels, string(o.Spec), string(o.Status), keys, values).Scan(&n); err != nil {
			return nil, t.fail(fmt.Errorf("create %s: %w", o.Ref(), err))
		}
		if n == 0 {
			return nil, fmt.Errorf("%s %q already exists: %w", o.Kind, o.Metadata.Name, store.ErrConflict)
		}
	} else {
		res, err := t.s.exec(dbctx(ctx), t.tx, t.s.q.insertObject, o.Kind, o.Metadata.Name, o.Metadata.Revision, ts, ts, labels, string(o.Spec), string(o.Status))
		if err != nil {
			return nil, t.fail(fmt.Errorf("create %s: %w", o.Ref(), err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, t.fail(fmt.Errorf("create %s: %w", o.Ref(), err))
		} else if n == 0 {
			return nil, fmt.Errorf("%s %q already exists: %w", o.Kind, o.Metadata.Name, store.ErrConflict)
		}
		if err := t.insertLabels(ctx, o); err != nil {
			return nil, err
		}
	}
	t.appendEntry("create", o.Kind, o.Metadata.Name, stateHash)
	// o is this call's own copy (normalize made it) and is not kept:
	// hand it to the caller.
	return o, nil
}

// labelColumns returns the keys and values of labels as two slices, in
// the same order, for the dialect's InsertObjectLabels.
func labelColumns(labels map[string]string) (keys, values []string) {
	keys = make([]string, 0, len(labels))
	values = make([]string, 0, len(labels))
	for k, v := range labels {
		keys = append(keys, k)
		values = append(values, v)
	}
	return keys, values
}

// Update implements store.Tx.
func (t *txn) Update(ctx context.Context, obj *resource.Object) (*resource.Object, error) {
	if err := validate(obj); err != nil {
		return nil, err
	}
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	o, labels, err := normalize(obj)
	if err != nil {
		return nil, err
	}
	rev, created, storedLabels, err := t.storedMeta(ctx, o.Kind, o.Metadata.Name, obj.Metadata.Revision)
	if err != nil {
		return nil, err
	}
	_ = rev
	o.Metadata.Revision = t.seq + 1
	o.Metadata.CreatedAt = created
	o.Metadata.UpdatedAt = t.now
	stateHash, err := audit.StateHash(o)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", o.Ref(), err)
	}
	if err := t.mutate(ctx); err != nil {
		return nil, err
	}
	if _, err := t.s.exec(dbctx(ctx), t.tx, t.s.q.updateObject, o.Metadata.Revision, t.now.UnixNano(), labels, string(o.Spec), string(o.Status), o.Kind, o.Metadata.Name); err != nil {
		return nil, t.fail(fmt.Errorf("update %s: %w", o.Ref(), err))
	}
	if labels != storedLabels {
		if _, err := t.s.exec(dbctx(ctx), t.tx, t.s.q.deleteLabels, o.Kind, o.Metadata.Name); err != nil {
			return nil, t.fail(fmt.Errorf("update labels of %s: %w", o.Ref(), err))
		}
		if err := t.insertLabels(ctx, o); err != nil {
			return nil, err
		}
	}
	t.appendEntry("update", o.Kind, o.Metadata.Name, stateHash)
	return o, nil // normalize's copy, not kept
}

// Delete implements store.Tx.
func (t *txn) Delete(ctx context.Context, kind, name string, revision int64) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	if _, _, _, err := t.storedMeta(ctx, kind, name, revision); err != nil {
		return err
	}
	stateHash, err := audit.StateHash(nil)
	if err != nil {
		return err
	}
	if err := t.mutate(ctx); err != nil {
		return err
	}
	// object_labels rows go with the object (ON DELETE CASCADE).
	if _, err := t.s.exec(dbctx(ctx), t.tx, t.s.q.deleteObject, kind, name); err != nil {
		return t.fail(fmt.Errorf("delete %s %q: %w", kind, name, err))
	}
	t.appendEntry("delete", kind, name, stateHash)
	return nil
}

// Record implements store.Tx.
func (t *txn) Record(ctx context.Context, action, kind, name string, stateHash string) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	if action == "" {
		return errors.New("store: Record needs an action")
	}
	t.appendEntry(action, kind, name, stateHash)
	return nil
}

// storedMeta reads what Update and Delete need of the stored object and
// checks the caller's revision against it.
func (t *txn) storedMeta(ctx context.Context, kind, name string, sent int64) (rev int64, created time.Time, labels string, err error) {
	var createdNanos int64
	err = t.s.queryRow(dbctx(ctx), t.tx, t.s.q.storedMeta, kind, name).Scan(&rev, &createdNanos, &labels)
	if err == sql.ErrNoRows {
		return 0, time.Time{}, "", store.NotFound(kind, name)
	}
	if err != nil {
		return 0, time.Time{}, "", t.fail(fmt.Errorf("read %s %q: %w", kind, name, err))
	}
	if sent != 0 && sent != rev {
		return 0, time.Time{}, "", fmt.Errorf("%s %q was sent at revision %d but the stored revision is %d: read it again and reapply the change: %w",
			kind, name, sent, rev, store.ErrConflict)
	}
	return rev, time.Unix(0, createdNanos).UTC(), labels, nil
}

func (t *txn) insertLabels(ctx context.Context, o *resource.Object) error {
	if len(o.Metadata.Labels) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(o.Metadata.Labels))
	for k, v := range o.Metadata.Labels {
		args = append(args, o.Kind, o.Metadata.Name, k, v)
	}
	if _, err := t.s.exec(dbctx(ctx), t.tx, t.s.insertLabelsQuery(len(o.Metadata.Labels)), args...); err != nil {
		return t.fail(fmt.Errorf("index labels of %s: %w", o.Ref(), err))
	}
	return nil
}

func (t *txn) appendEntry(action, kind, name, stateHash string) {
	t.seq++
	e := audit.Entry{
		Seq:       t.seq,
		Time:      t.now,
		Actor:     t.actor.Name,
		Action:    action,
		Kind:      kind,
		Name:      name,
		Revision:  t.seq,
		Reason:    t.actor.Reason,
		StateHash: stateHash,
	}
	e.Seal(t.hash)
	t.hash = e.Hash
	t.entries = append(t.entries, e)
}
