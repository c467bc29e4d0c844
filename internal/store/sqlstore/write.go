package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
// goroutine, which runs fn against a transaction it may share with other
// callers (keeping fn's changes apart until fn has succeeded), and returns once that transaction has committed
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
	defer func() {
		if s.wconn != nil {
			s.wconn.Close()
		}
	}()
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
		s.keepWALBounded()
	}
}

// keepWALBounded runs, between two batches, the checkpoint that makes the
// WAL start over at the next write (see Dialect.CheckpointRestart): when
// the checkpointer asked for it, or when the WAL file grew past
// CheckpointRestart frames and an eighth since the writer last looked. (A
// WAL that started over overwrites the file from its beginning, so the
// file grows again only once the log is longer than the file.) The eighth
// gives the checkpointer the time to ask first: its request comes just
// after it copied the WAL, which leaves the writer little to copy.
//
// Only one checkpoint runs at a time. Should the checkpointer's hold the
// lock (on a saturated machine its low priority can stretch one over
// seconds while the WAL grows), the writer interrupts it and tries again
// after the next batch; the checkpointer leaves the WAL alone until then.
//
// A checkpoint that cannot copy every frame (a read still uses them) does
// not let the WAL start over, and the file goes on growing; the writer
// then waits for another eighth of CheckpointRestart before it tries
// again, rather than paying for a checkpoint after every batch while the
// read lasts.
func (s *Store) keepWALBounded() {
	asked := s.restartWAL.Swap(false)
	grew := false
	if s.d.WALFrames != nil && s.d.CheckpointRestart > 0 {
		n := s.d.WALFrames()
		grew = n >= s.d.CheckpointRestart+s.d.CheckpointRestart/8 && n > s.walSeen && n >= s.walWait
		s.walSeen = n
	}
	if !asked && !grew {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch w := s.checkpoint(ctx, s.d.Checkpoint); {
	case w.busy:
		s.restartWAL.Store(true)
		if stop := s.bgCheckpoint.Load(); stop != nil {
			(*stop)()
		}
	case w.behind() == 0:
		s.walWait = 0
	case grew:
		s.walWait = s.walSeen + s.d.CheckpointRestart/8
	}
}

// runBatch runs one group commit and answers every caller in it.
func (s *Store) runBatch(batch []*writeReq) {
	results := make([]error, len(batch))
	start := time.Now()
	appended, commit, err := s.commitBatch(batch, results)
	if s.observe != nil {
		s.observe(len(batch), time.Since(start), commit)
	}
	for i, r := range batch {
		if err != nil && results[i] == nil {
			results[i] = err
		}
		r.done <- results[i]
	}
	if err == nil && appended {
		s.broadcast()
		if s.notifyKick != nil {
			select {
			case s.notifyKick <- struct{}{}:
			default: // one is pending already and will cover this commit
			}
		}
	}
}

// commitBatch runs the batch in one transaction. It fills results with each
// caller's own outcome and returns an error that fails the whole batch.
//
// Callers' functions run one after another against the transaction, which
// holds the audit head (and so every other writer) until it ends. Their
// reads go to the database; their changes are kept in memory, layered over
// the database (each caller's over those of the callers before it), and
// written together once every function has run: a function that fails just
// drops its layer, so no savepoint is needed, and a batch costs a handful of
// statements beyond its callers' reads.
func (s *Store) commitBatch(batch []*writeReq, results []error) (appended bool, commit time.Duration, err error) {
	ctx := context.Background()
	wtx, seq, hash, err := s.begin(ctx)
	if err != nil {
		return false, 0, err
	}
	defer func() {
		if err != nil {
			wtx.rollback() // after a failed commit, a no-op (or it drops a dead connection)
		}
	}()
	tx := wtx.q()
	startSeq := seq
	if err := s.names.sync(ctx, s, tx, seq); err != nil {
		return false, 0, err // no function has run; the next batch rebuilds the filter
	}
	var entries []audit.Entry
	b := &batchState{}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		t := &txn{s: s, tx: tx, b: b, actor: r.actor, now: s.now().UTC().Round(0), seq: seq, hash: hash}
		ferr := t.call(r.fn)
		t.finished = true
		if ferr == nil && t.broken != nil {
			ferr = fmt.Errorf("a statement failed inside the write, so it was rolled back: %w", t.broken)
		}
		if ferr != nil {
			results[i] = ferr
			continue
		}
		b.merge(t)
		seq, hash = t.seq, t.hash
		entries = append(entries, t.entries...)
	}
	if seq == startSeq && len(b.objs) == 0 && len(b.blobs) == 0 {
		return false, 0, wtx.commit(ctx, nil) // reads only, or every fn failed
	}
	w := s.batchRows(b, entries)
	// Deletes first (object_labels rows of a deleted object go with it, ON
	// DELETE CASCADE), so that a replaced object's new row fits; blobs
	// reference nothing.
	if err := s.execRows(ctx, tx, &s.deleteQueries, deleteObjectsHead, "(?,?)", ")", w.dels, 2); err != nil {
		return false, 0, fmt.Errorf("delete objects: %w", err)
	}
	if err := s.putBlobs(ctx, tx, b); err != nil {
		return false, 0, err
	}
	write := s.writeApart
	if s.d.CombineWrites {
		write = s.writeCombined
	}
	last, err := write(ctx, tx, w, seq != startSeq, seq, hash)
	if err != nil {
		return false, 0, err
	}
	ct := time.Now()
	if err := wtx.commit(ctx, last); err != nil {
		return false, 0, err
	}
	commit = time.Since(ct)
	s.commits.Add(1)
	// The filter already holds the names this batch created.
	if s.names.seq == startSeq {
		s.names.seq = seq
	}
	return seq != startSeq, commit, nil
}

// objKey names an object.
type objKey struct{ kind, name string }

// row is an object as its objects row holds it.
type row struct {
	kind, name           string
	revision             int64
	created, updated     int64 // unix nanoseconds
	labels, spec, status string
	labelMap             map[string]string // parsed labels, owned by the row
}

// change is what the writes of a batch did to one object, before it is
// flushed: the object's row as it now is, or none when it was deleted.
type change struct {
	row  *row // nil: deleted
	inDB bool // the database held a row for the object when the batch began
}

// batchState holds the changes of the callers of a batch that succeeded.
type batchState struct {
	objs  map[objKey]change
	blobs map[string][]byte
}

// merge adds a successful caller's changes.
func (b *batchState) merge(t *txn) {
	if len(t.objs) > 0 && b.objs == nil {
		b.objs = make(map[objKey]change, len(t.objs))
	}
	for k, c := range t.objs {
		b.objs[k] = c
	}
	if len(t.blobs) > 0 && b.blobs == nil {
		b.blobs = make(map[string][]byte, len(t.blobs))
	}
	for d, data := range t.blobs {
		b.blobs[d] = data
	}
}

// objChunk bounds the rows of one multi-row insert of objects (8
// parameters each), labels (4 each) or audit entries (11 each) where each
// table has its own (writeApart), and of one delete (2 each).
const objChunk = 128

// batchWrites is what a batch writes, as statement arguments: the objects
// to delete (2 per object), the objects to insert (8 each), their labels
// (4 each) and the audit entries (11 each).
type batchWrites struct {
	dels, objs, labels, entries []any
}

// batchRows lays out a batch's changes as statement arguments. Every object
// the database held that was deleted or replaced is deleted, then every
// object is inserted as it now is, with its labels.
func (s *Store) batchRows(b *batchState, entries []audit.Entry) batchWrites {
	var w batchWrites
	for k, c := range b.objs {
		if c.inDB {
			w.dels = append(w.dels, k.kind, k.name)
		}
		if c.row == nil {
			continue
		}
		r := c.row
		w.objs = append(w.objs, r.kind, r.name, r.revision, r.created, r.updated, r.labels, r.spec, r.status)
		for lk, lv := range r.labelMap {
			w.labels = append(w.labels, r.kind, r.name, lk, lv)
		}
	}
	if len(entries) > 0 {
		w.entries = make([]any, 0, len(entries)*11)
		for _, e := range entries {
			w.entries = append(w.entries, e.Seq, e.Time.UnixNano(), e.Actor, e.Action, e.Kind, e.Name, e.Revision, e.Reason, e.StateHash, e.PrevHash, e.Hash)
		}
	}
	return w
}

const (
	deleteObjectsHead = "DELETE FROM objects WHERE (kind, name) IN (VALUES "
	insertObjectsHead = "INSERT INTO objects (kind, name, revision, created_at, updated_at, labels, spec, status) VALUES "
	insertLabelsHead  = "INSERT INTO object_labels (kind, name, key, value) VALUES "
	insertEntriesHead = "INSERT INTO audit_entries (" + entryCols + ") VALUES "
	objectRow         = "(?,?,?,?,?,?,?,?)"
	labelRow          = "(?,?,?,?)"
	entryRow          = "(?,?,?,?,?,?,?,?,?,?,?)"
)

// writeTx is a batch's transaction on the writer's own connection: a
// database/sql one, or, with a Dialect.Pipeline, one begun by hand.
type writeTx struct {
	s    *Store
	tx   *sql.Tx
	conn *sql.Conn
}

// q returns what the batch's statements run on.
func (w *writeTx) q() dbtx {
	if w.tx != nil {
		return w.tx
	}
	return w.conn
}

// begin starts a batch's transaction and reads the audit head, locked
// until it ends.
func (s *Store) begin(ctx context.Context) (w *writeTx, seq int64, hash string, err error) {
	if s.d.Pipeline == nil {
		// Every batch begins on the writer's own connection too. From the
		// pool it would get whichever connection is free, with reads beside
		// it often not the one it used last, whose page cache the last
		// commit (made on another connection) invalidated: the batch would
		// read again from the file the pages it changes. A failed begin
		// drops the connection; the next batch takes a new one.
		if err := s.connectWriter(ctx); err != nil {
			return nil, 0, "", err
		}
		tx, err := s.wconn.BeginTx(ctx, nil)
		if err != nil {
			s.dropWriterConn()
			return nil, 0, "", fmt.Errorf("begin write transaction: %w", err)
		}
		if err := s.queryRow(ctx, tx, s.q.lockHead).Scan(&seq, &hash); err != nil {
			tx.Rollback()
			return nil, 0, "", fmt.Errorf("lock audit head: %w", err)
		}
		return &writeTx{s: s, tx: tx}, seq, hash, nil
	}
	// The writer's connection may have died since the last batch (a
	// server restart, an idle timeout): beginning changes nothing, so a
	// failed begin is tried once more on a new connection, as database/sql
	// does for a transaction.
	for attempt := 0; ; attempt++ {
		if err := s.connectWriter(ctx); err != nil {
			return nil, 0, "", err
		}
		w = &writeTx{s: s, conn: s.wconn}
		_, err = s.d.Pipeline(ctx, w.conn, []Piped{{SQL: "BEGIN"}, {SQL: s.q.lockHead, Scan: []any{&seq, &hash}}})
		if err == nil {
			return w, seq, hash, nil
		}
		if attempt == 1 {
			w.rollback()
			return nil, 0, "", fmt.Errorf("begin write transaction and lock audit head: %w", err)
		}
		s.dropWriterConn()
	}
}

// connectWriter takes the writer's own connection from the pool, unless
// it holds one.
func (s *Store) connectWriter(ctx context.Context) error {
	if s.wconn != nil {
		return nil
	}
	var err error
	if s.wconn, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("connect the writer: %w", err)
	}
	return nil
}

// commit runs last, when there is one, and commits: with a Pipeline, both
// in one round trip. On error the caller rolls back.
func (w *writeTx) commit(ctx context.Context, last *Piped) error {
	const lastWhat = "store objects, labels and audit entries"
	if w.tx != nil {
		if last != nil {
			if _, err := w.s.exec(ctx, w.tx, last.SQL, last.Args...); err != nil {
				return fmt.Errorf("%s: %w", lastWhat, err)
			}
		}
		if err := w.tx.Commit(); err != nil {
			return fmt.Errorf("commit write transaction: %w", err)
		}
		return nil
	}
	var tag string
	stmts := []Piped{{SQL: "COMMIT", Tag: &tag}}
	if last != nil {
		stmts = []Piped{*last, stmts[0]}
	}
	if failed, err := w.s.d.Pipeline(ctx, w.conn, stmts); err != nil {
		if last != nil && failed == 0 {
			return fmt.Errorf("%s: %w", lastWhat, err)
		}
		return fmt.Errorf("commit write transaction: %w", err)
	}
	if tag != "COMMIT" {
		return fmt.Errorf("commit write transaction: the server answered %q", tag)
	}
	return nil
}

// rollback ends the transaction without its changes. A writer connection
// that cannot roll back is discarded; the next batch takes another.
func (w *writeTx) rollback() {
	if w.tx != nil {
		w.tx.Rollback()
		return
	}
	if _, err := w.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		w.s.dropWriterConn()
	}
}

// dropWriterConn closes the writer's connection for good: its driver
// connection is closed rather than returned to the pool, whatever state
// it was left in. Answering driver.ErrBadConn from Raw is what makes
// database/sql close it; closing it here as well would close it twice,
// which the SQLite driver does not survive.
func (s *Store) dropWriterConn() {
	if s.wconn == nil {
		return
	}
	_ = s.wconn.Raw(func(any) error { return driver.ErrBadConn })
	s.wconn.Close()
	s.wconn = nil
}

// writeApart writes a batch's rows (its deletes and blobs are in) one
// statement per table and chunk, then moves the audit head:
// SQLite, where a statement costs no round trip.
func (s *Store) writeApart(ctx context.Context, tx dbtx, w batchWrites, head bool, seq int64, hash string) (*Piped, error) {
	if err := s.execRows(ctx, tx, &s.objectQueries, insertObjectsHead, objectRow, "", w.objs, 8); err != nil {
		return nil, fmt.Errorf("store objects: %w", err)
	}
	if err := s.execRows(ctx, tx, &s.labelQueries, insertLabelsHead, labelRow, "", w.labels, 4); err != nil {
		return nil, fmt.Errorf("index labels: %w", err)
	}
	if head {
		if err := s.execRows(ctx, tx, &s.entryQueries, insertEntriesHead, entryRow, "", w.entries, 11); err != nil {
			return nil, fmt.Errorf("append audit entries: %w", err)
		}
		if _, err := s.exec(ctx, tx, s.q.updateHead, seq, hash); err != nil {
			return nil, fmt.Errorf("advance audit head: %w", err)
		}
	}
	return nil, nil
}

// writeCombined writes a batch's rows (its deletes and blobs are in) and
// moves the audit head in one statement, whatever the batch's size
// (PostgreSQL): each table's rows go as arrays, a column each, to unnest,
// in data-modifying WITH parts. The statement depends only on which tables
// have rows, so the server plans each of its few shapes once, and a batch
// that a stall made large costs no more statements, or parameters, than a
// small one. (A part for a table without rows would still cost the server
// opening the table and its indexes.) The parts of one statement cannot
// see each other's rows, which is why the deletes went before it; the
// label rows' foreign key is checked at the end of the statement, after
// its objects are in. The statement is returned, not run, to go with the
// commit.
func (s *Store) writeCombined(_ context.Context, _ dbtx, w batchWrites, head bool, seq int64, hash string) (*Piped, error) {
	var shape int
	args := make([]any, 0, 8+4+11+2)
	for i, rows := range [...][]any{w.objs, w.labels, w.entries} {
		if len(rows) > 0 {
			shape |= 1 << i
			args = append(args, columns(rows, combinedParts[i].types)...)
		}
	}
	if head {
		shape |= headPart
		args = append(args, seq, hash)
	}
	return &Piped{SQL: combinedQueries[shape], Args: args}, nil
}

// The types of the values in a row of batchWrites' objects, labels and
// entries, 'i' for int64 and 's' for string, in the order of their
// columns (objectRow, labelRow, entryCols).
const (
	objectTypes = "ssiiisss"
	labelTypes  = "ssss"
	entryTypes  = "iissssissss"
)

// combinedParts are the tables of the combined statement, in order: its
// shape has bit i set when it inserts into combinedParts[i], and headPart
// when it moves the audit head.
var combinedParts = [...]struct{ insert, types string }{
	{strings.TrimSuffix(insertObjectsHead, " VALUES "), objectTypes},
	{strings.TrimSuffix(insertLabelsHead, " VALUES "), labelTypes},
	{strings.TrimSuffix(insertEntriesHead, " VALUES "), entryTypes},
}

const headPart = 1 << len(combinedParts)

// combinedQueries holds the combined statement of every shape. Its
// parameters are the columns of each part's table, as arrays, in
// combinedParts' order, then the head's seq and hash.
var combinedQueries = func() (qs [2 * headPart]string) {
	for shape := range qs {
		var parts []string
		n := 0
		param := func(typ string) string {
			n++
			return "$" + strconv.Itoa(n) + "::" + typ
		}
		for i, p := range combinedParts {
			if shape&(1<<i) == 0 {
				continue
			}
			cols := make([]string, len(p.types))
			for j, t := range []byte(p.types) {
				typ := "text[]"
				if t == 'i' {
					typ = "bigint[]"
				}
				cols[j] = param(typ)
			}
			parts = append(parts, fmt.Sprintf("p%d AS (%s SELECT * FROM unnest(%s))", i, p.insert, strings.Join(cols, ", ")))
		}
		if shape&headPart != 0 {
			parts = append(parts, "h AS (UPDATE audit_head SET seq = "+param("bigint")+", hash = "+param("text")+" WHERE id = 1)")
		}
		qs[shape] = "SELECT 1"
		if len(parts) > 0 {
			qs[shape] = "WITH " + strings.Join(parts, ", ") + " SELECT 1"
		}
	}
	return qs
}()

// columns turns rows of len(types) values each into as many arrays, a
// column each: an []int64 where types has 'i', a []string where it has 's'.
func columns(rows []any, types string) []any {
	n := len(rows) / len(types)
	cols := make([]any, len(types))
	for j, t := range []byte(types) {
		if t == 'i' {
			c := make([]int64, n)
			for i := range c {
				c[i] = rows[i*len(types)+j].(int64)
			}
			cols[j] = c
			continue
		}
		c := make([]string, n)
		for i := range c {
			c[i] = rows[i*len(types)+j].(string)
		}
		cols[j] = c
	}
	return cols
}

// putBlobs stores the batch's new blobs, one statement each.
func (s *Store) putBlobs(ctx context.Context, tx dbtx, b *batchState) error {
	for digest, data := range b.blobs {
		if _, err := s.exec(ctx, tx, s.q.putBlob, digest, int64(len(data)), s.now().UnixNano(), data); err != nil {
			return fmt.Errorf("store blob %s: %w", digest, err)
		}
	}
	return nil
}

// execRows runs head, then rows of width parameters each taken from args,
// then tail, in chunks of at most objChunk rows.
func (s *Store) execRows(ctx context.Context, tx dbtx, cache *sync.Map, head, rowSQL, tail string, args []any, width int) error {
	for len(args) > 0 {
		n := chunkRows(len(args)/width, objChunk)
		if _, err := s.exec(ctx, tx, s.rowsQuery(cache, n, head, rowSQL, tail), args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}

// chunkRows returns how many of n rows (at most most) the next multi-row
// statement takes. It takes up to 16 rows exactly and more in powers of two,
// so that a statement family has at most 16 + log2(most/16) sizes: every
// size stays in the prepared statement cache, which would otherwise fill up
// with one statement per batch size and leave later sizes to be parsed
// again on each use.
func chunkRows(n, most int) int {
	if n <= 16 {
		return n
	}
	c := 16
	for c*2 <= min(n, most) {
		c *= 2
	}
	return c
}

const entryCols = "seq, time, actor, action, kind, name, revision, reason, state_hash, prev_hash, hash"

// rowsQuery returns, from cache, the multi-row statement head followed by
// n copies of row and then tail, rebound for the dialect.
func (s *Store) rowsQuery(cache *sync.Map, n int, head, row, tail string) string {
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
	b.WriteString(tail)
	q := s.d.rebind(b.String())
	cache.Store(n, q)
	return q
}

// txn is one caller's view of a batch transaction. Its changes are kept in
// memory (objs, blobs, entries) until its function has returned, and then
// either dropped or handed to the batch.
type txn struct {
	s     *Store
	tx    dbtx
	b     *batchState // earlier callers' changes
	actor store.Actor
	now   time.Time

	seq     int64 // audit head as this caller sees it
	hash    string
	entries []audit.Entry
	objs    map[objKey]change
	blobs   map[string][]byte

	broken   error // a statement failed; the write cannot succeed
	finished bool
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

// changed returns the batch's pending change of an object as this caller
// sees it: its own, or else an earlier caller's.
func (t *txn) changed(k objKey) (change, bool) {
	if c, ok := t.objs[k]; ok {
		return c, true
	}
	c, ok := t.b.objs[k]
	return c, ok
}

func (t *txn) set(k objKey, c change) {
	if t.objs == nil {
		t.objs = make(map[objKey]change, 1)
	}
	t.objs[k] = c
}

// Get implements store.Reader inside the transaction.
func (t *txn) Get(ctx context.Context, kind, name string) (*resource.Object, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	if c, ok := t.changed(objKey{kind, name}); ok {
		if c.row == nil {
			return nil, store.NotFound(kind, name)
		}
		return c.row.object(), nil
	}
	obj, err := t.s.get(dbctx(ctx), t.tx, kind, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.fail(err)
	}
	return obj, err
}

// List implements store.Reader inside the transaction: the database's
// objects with the batch's pending changes applied.
func (t *txn) List(ctx context.Context, kind string, sel resource.Selector) ([]*resource.Object, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	objs, err := t.s.list(dbctx(ctx), t.tx, kind, sel)
	if err != nil {
		return nil, t.fail(err)
	}
	if len(t.objs) == 0 && len(t.b.objs) == 0 {
		return objs, nil
	}
	pending := map[string]*row{}
	for _, layer := range []map[objKey]change{t.b.objs, t.objs} {
		for k, c := range layer {
			if k.kind == kind {
				pending[k.name] = c.row
			}
		}
	}
	if len(pending) == 0 {
		return objs, nil
	}
	out := objs[:0]
	for _, o := range objs {
		if _, ok := pending[o.Metadata.Name]; !ok {
			out = append(out, o)
		}
	}
	for _, r := range pending {
		if r != nil && sel.Matches(r.labelMap) {
			out = append(out, r.object())
		}
	}
	slices.SortFunc(out, func(a, b *resource.Object) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out, nil
}

// object returns a new object from r.
func (r *row) object() *resource.Object {
	o := &resource.Object{APIVersion: resource.APIVersion, Kind: r.kind}
	o.Metadata.Name = r.name
	o.Metadata.Revision = r.revision
	o.Metadata.CreatedAt = time.Unix(0, r.created).UTC()
	o.Metadata.UpdatedAt = time.Unix(0, r.updated).UTC()
	if len(r.labelMap) > 0 {
		o.Metadata.Labels = maps.Clone(r.labelMap)
	}
	if r.spec != "" {
		o.Spec = json.RawMessage(r.spec)
	}
	if r.status != "" {
		o.Status = json.RawMessage(r.status)
	}
	return o
}

// newRow returns the row that stores o, copying what o shares with its
// caller.
func newRow(o *resource.Object, labels string) *row {
	return &row{
		kind:     o.Kind,
		name:     o.Metadata.Name,
		revision: o.Metadata.Revision,
		created:  o.Metadata.CreatedAt.UnixNano(),
		updated:  o.Metadata.UpdatedAt.UnixNano(),
		labels:   labels,
		spec:     string(o.Spec),
		status:   string(o.Status),
		labelMap: maps.Clone(o.Metadata.Labels),
	}
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
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	o, labels, err := normalize(obj)
	if err != nil {
		return nil, err
	}
	k := objKey{o.Kind, o.Metadata.Name}
	c, ok := t.changed(k)
	if !ok && t.s.names.absent(k) {
		c, ok = change{}, true
	}
	if !ok {
		var found bool
		if found, _, _, err = t.stored(ctx, o.Kind, o.Metadata.Name); err != nil {
			return nil, err
		}
		c = change{inDB: found}
		if found {
			c.row = &row{} // exists, unchanged
		}
	}
	if c.row != nil {
		return nil, fmt.Errorf("%s %q already exists: %w", o.Kind, o.Metadata.Name, store.ErrConflict)
	}
	o.Metadata.Revision = t.seq + 1
	o.Metadata.CreatedAt = t.now
	o.Metadata.UpdatedAt = t.now
	stateHash, err := audit.StateHash(o)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", o.Ref(), err)
	}
	t.set(k, change{row: newRow(o, labels), inDB: c.inDB})
	t.s.names.add(k)
	t.appendEntry(ctx, "create", o.Kind, o.Metadata.Name, stateHash)
	// o is this call's own copy (normalize made it): hand it to the caller.
	return o, nil
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
	k := objKey{o.Kind, o.Metadata.Name}
	inDB, created, err := t.current(ctx, k, obj.Metadata.Revision)
	if err != nil {
		return nil, err
	}
	o.Metadata.Revision = t.seq + 1
	o.Metadata.CreatedAt = created
	o.Metadata.UpdatedAt = t.now
	stateHash, err := audit.StateHash(o)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", o.Ref(), err)
	}
	t.set(k, change{row: newRow(o, labels), inDB: inDB})
	t.appendEntry(ctx, "update", o.Kind, o.Metadata.Name, stateHash)
	return o, nil // normalize's copy, not kept
}

// Delete implements store.Tx.
func (t *txn) Delete(ctx context.Context, kind, name string, revision int64) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	k := objKey{kind, name}
	inDB, _, err := t.current(ctx, k, revision)
	if err != nil {
		return err
	}
	stateHash, err := audit.StateHash(nil)
	if err != nil {
		return err
	}
	t.set(k, change{inDB: inDB})
	t.appendEntry(ctx, "delete", kind, name, stateHash)
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
	t.appendEntry(ctx, action, kind, name, stateHash)
	return nil
}

// current finds the object Update and Delete change, as this caller sees it,
// and checks the caller's revision against it. It reports whether the
// database holds a row for the object and when the object was created.
func (t *txn) current(ctx context.Context, k objKey, sent int64) (inDB bool, created time.Time, err error) {
	var rev int64
	if c, ok := t.changed(k); ok {
		if c.row == nil {
			return false, time.Time{}, store.NotFound(k.kind, k.name)
		}
		inDB, rev, created = c.inDB, c.row.revision, time.Unix(0, c.row.created).UTC()
	} else {
		var found bool
		if found, rev, created, err = t.stored(ctx, k.kind, k.name); err != nil {
			return false, time.Time{}, err
		}
		if !found {
			return false, time.Time{}, store.NotFound(k.kind, k.name)
		}
		inDB = true
	}
	if sent != 0 && sent != rev {
		return false, time.Time{}, fmt.Errorf("%s %q was sent at revision %d but the stored revision is %d: read it again and reapply the change: %w",
			k.kind, k.name, sent, rev, store.ErrConflict)
	}
	return inDB, created, nil
}

// stored reads the revision and creation time of an object from the
// database, reporting whether it is there.
func (t *txn) stored(ctx context.Context, kind, name string) (found bool, rev int64, created time.Time, err error) {
	var createdNanos int64
	err = t.s.queryRow(dbctx(ctx), t.tx, t.s.q.storedMeta, kind, name).Scan(&rev, &createdNanos)
	if errors.Is(err, sql.ErrNoRows) {
		return false, 0, time.Time{}, nil
	}
	if err != nil {
		return false, 0, time.Time{}, t.fail(fmt.Errorf("read %s %q: %w", kind, name, err))
	}
	return true, rev, time.Unix(0, createdNanos).UTC(), nil
}

func (t *txn) appendEntry(ctx context.Context, action, kind, name, stateHash string) {
	t.seq++
	reason := t.actor.Reason
	if note := store.AuditNote(ctx); note != "" {
		if reason != "" {
			reason += "; "
		}
		reason += note
	}
	e := audit.Entry{
		Seq:       t.seq,
		Time:      t.now,
		Actor:     t.actor.Name,
		Action:    action,
		Kind:      kind,
		Name:      name,
		Revision:  t.seq,
		Reason:    reason,
		StateHash: stateHash,
	}
	e.Seal(t.hash)
	t.hash = e.Hash
	t.entries = append(t.entries, e)
}
