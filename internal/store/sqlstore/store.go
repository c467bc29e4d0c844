package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Now is the clock written into objects and audit entries; time.Now
	// when nil.
	Now func() time.Time
	// PollInterval is how often a watch looks for changes committed by
	// other processes; changes made through this Store wake watches at
	// once. Default 500ms.
	PollInterval time.Duration
	// MaxBatch caps how many Write calls share one transaction. Default 256.
	MaxBatch int
	// ObserveBatch, when set, is called by the writer after every batch
	// with its size, the whole cycle (running the functions, flushing,
	// committing) and the commit alone (with a Dialect.Pipeline, the
	// batch's last statement and its COMMIT, which go together). It must
	// not block.
	ObserveBatch func(writes int, cycle, commit time.Duration)
	// CheckpointEvery and CheckpointRestart, when positive, replace the
	// dialect's (see Dialect.Checkpoint); tests make them small.
	CheckpointEvery   time.Duration
	CheckpointRestart int
}

// Store is a store.Store over database/sql. It is safe for concurrent use.
// Writes go through one writer goroutine that commits queued Write calls
// together (group commit); reads use the connection pool. A write's changes
// stay in memory until its function returns and reach the database in a few
// multi-row statements per batch, and a Bloom filter of object names (see
// nameFilter) spares a create of a new name its read, so a batch costs its
// callers' reads plus a fixed handful of statements.
type Store struct {
	db       *sql.DB
	d        Dialect
	now      func() time.Time
	observe  func(writes int, cycle, commit time.Duration)
	poll     time.Duration
	maxBatch int
	q        queries

	reqs       chan *writeReq
	closing    chan struct{}
	writerDone chan struct{}
	maintDone  chan struct{} // closed when the checkpointer stops; nil without one
	// notifyKick asks the notifier to run Dialect.Notify; notifyDone is
	// closed when it has stopped, after the writer. Both nil without a
	// Notify.
	notifyKick, notifyDone chan struct{}
	// restartWAL asks the writer to run a checkpoint between two batches
	// (see Dialect.CheckpointRestart).
	restartWAL atomic.Bool
	// bgCheckpoint cancels the checkpointer's checkpoint while one runs,
	// which SQLite then interrupts.
	bgCheckpoint atomic.Pointer[context.CancelFunc]
	// commits counts the writer's commits that changed something, so the
	// checkpointer can tell when there is nothing new to copy.
	commits atomic.Int64
	// checkpoints and writeBacks count the checkpointer's checkpoints and
	// its calls of Dialect.WriteBack; writeBackErr holds the first error
	// one returned.
	checkpoints  atomic.Int64
	writeBacks   atomic.Int64
	writeBackErr atomic.Pointer[error]
	// walSeen is the WAL file's size in frames when the writer last
	// looked, and walWait the size it waits for after a checkpoint that
	// could not copy everything. Both are the writer's own.
	walSeen, walWait int
	closeOnce        sync.Once

	mu      sync.Mutex
	notify  chan struct{} // closed and replaced after every commit that appended entries
	closers []func()

	names *nameFilter // the writer goroutine's
	wconn *sql.Conn   // the writer goroutine's own connection

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared once on the pool, per connection by database/sql

	// Multi-row statements by row count: int -> string.
	entryQueries, objectQueries, labelQueries, deleteQueries sync.Map
}

// maxStmts bounds the prepared statement cache; queries past it run unprepared.
const maxStmts = 512

// stmt returns the prepared statement for query, or nil when it cannot be
// prepared or the cache is full.
func (s *Store) stmt(ctx context.Context, query string) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st
	}
	if len(s.stmts) >= maxStmts {
		return nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // run unprepared; the error, if real, surfaces there
	}
	s.stmts[query] = st
	return st
}

// dbtx is what a write's statements run on: a *sql.Tx, or the writer's own
// *sql.Conn with a transaction open on it (see Dialect.Pipeline).
type dbtx interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// exec runs a statement in tx, through the statement cache when tx is a
// *sql.Tx (a connection's driver keeps its own, as pgx does).
func (s *Store) exec(ctx context.Context, tx dbtx, query string, args ...any) (sql.Result, error) {
	if t, ok := tx.(*sql.Tx); ok {
		if st := s.stmt(ctx, query); st != nil {
			return t.StmtContext(ctx, st).ExecContext(ctx, args...)
		}
	}
	return tx.ExecContext(ctx, query, args...)
}

// queryRow runs a one-row query in tx (or on the pool when tx is nil),
// through the statement cache as exec does.
func (s *Store) queryRow(ctx context.Context, tx dbtx, query string, args ...any) *sql.Row {
	t, isTx := tx.(*sql.Tx)
	if tx != nil && !isTx {
		return tx.QueryRowContext(ctx, query, args...)
	}
	st := s.stmt(ctx, query)
	switch {
	case st != nil && isTx:
		return t.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	case st != nil:
		return st.QueryRowContext(ctx, args...)
	case isTx:
		return t.QueryRowContext(ctx, query, args...)
	default:
		return s.db.QueryRowContext(ctx, query, args...)
	}
}

var _ store.Store = (*Store)(nil)

// New migrates db to the dialect's schema and returns a Store that owns db:
// Close closes it.
func New(ctx context.Context, db *sql.DB, d Dialect, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.CheckpointEvery > 0 {
		d.CheckpointEvery = opts.CheckpointEvery
	}
	if opts.CheckpointRestart > 0 {
		d.CheckpointRestart = opts.CheckpointRestart
	}
	if err := migrate(ctx, db, &d, opts.Now().UnixNano()); err != nil {
		return nil, err
	}
	s := &Store{
		db:         db,
		d:          d,
		now:        opts.Now,
		observe:    opts.ObserveBatch,
		poll:       opts.PollInterval,
		maxBatch:   opts.MaxBatch,
		q:          newQueries(&d),
		reqs:       make(chan *writeReq, opts.MaxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		notify:     make(chan struct{}),
		stmts:      map[string]*sql.Stmt{},
		names:      newNameFilter(),
	}
	if d.Notify != "" {
		if s.d.NotifyEvery <= 0 {
			s.d.NotifyEvery = 5 * time.Millisecond
		}
		s.notifyKick = make(chan struct{}, 1)
		s.notifyDone = make(chan struct{})
		go s.notifier()
	}
	go s.writer()
	if d.Checkpoint != "" {
		s.maintDone = make(chan struct{})
		go s.checkpointer(d)
	}
	return s, nil
}

// notifier runs Dialect.Notify after commits that appended entries (the
// writer kicks it), at most once every NotifyEvery: the commits made while
// it waits share the next notification. Once the writer has stopped
// (writerDone), it sends the notification still owed, if any, and returns.
func (s *Store) notifier() {
	defer close(s.notifyDone)
	send := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A failure fails no write (see Dialect.Notify): the other
		// processes' watches find the entries at their next poll.
		_, _ = s.db.ExecContext(ctx, s.d.Notify)
	}
	owed := func() { // on stop: the notification of the writer's last commits
		select {
		case <-s.notifyKick:
			send()
		default:
		}
	}
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	for {
		select {
		case <-s.notifyKick:
		case <-s.writerDone:
			owed()
			return
		}
		send()
		// Commits during the pause kick again and share one notification.
		pause.Reset(s.d.NotifyEvery)
		select {
		case <-pause.C:
		case <-s.writerDone:
			pause.Stop()
			owed()
			return
		}
	}
}

// checkpointer runs the dialect's checkpoint statement on a timer until the
// store closes. A failed checkpoint is retried at the next tick: the WAL
// only grows meanwhile, nothing is lost.
//
// Copying the WAL into the database is work nobody waits for, yet it takes
// CPU (pure-Go SQLite) from the writer, whose latency everyone waits for.
// So the checkpoints run on a thread of their own at the lowest CPU
// priority (where the system lets a thread have its own, see
// background_linux.go). Should that starve them on a saturated machine, and
// the WAL fall more than CheckpointCatchUp frames behind, the next
// checkpoint runs at normal priority until it has caught up. A checkpoint
// that finds the WAL longer than CheckpointRestart asks the writer to make
// it start over, so the WAL file stays bounded.
func (s *Store) checkpointer(d Dialect) {
	defer close(s.maintDone)
	every := d.CheckpointEvery
	if every <= 0 {
		every = time.Second
	}
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	background := backgroundThread()
	t := time.NewTicker(every)
	defer t.Stop()
	var last walState
	seen := int64(-1) // s.commits before the last checkpoint; none yet
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			if s.restartWAL.Load() {
				continue // the writer runs the next one (see keepWALBounded)
			}
			// Nothing committed here since a checkpoint that copied
			// everything: an idle store does not wake SQLite every tick.
			// (Another process's writes are its own checkpointer's.)
			commits := s.commits.Load()
			if commits == seen && last.ok && !last.busy && last.behind() == 0 {
				continue
			}
			seen = commits
			s.checkpoints.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			s.bgCheckpoint.Store(&cancel)
			if !background || catchUp(last.behind(), d.CheckpointCatchUp) {
				last = runOn(func() walState { return s.checkpoint(ctx, d.Checkpoint) })
			} else {
				last = s.checkpoint(ctx, d.Checkpoint)
			}
			s.bgCheckpoint.Store(nil)
			cancel()
			if d.WriteBack != nil && last.copied > 0 {
				s.writeBack(d.WriteBack)
			}
			if d.CheckpointRestart > 0 && last.frames >= d.CheckpointRestart {
				s.restartWAL.Store(true)
			}
		}
	}
}

// writeBack runs the dialect's WriteBack and counts it, keeping the first
// error for CheckpointStats. After an error (a file system without the
// call, say) it does nothing more: the write-back only saves time.
func (s *Store) writeBack(f func() error) {
	if s.writeBackErr.Load() != nil {
		return
	}
	s.writeBacks.Add(1)
	if err := f(); err != nil {
		s.writeBackErr.CompareAndSwap(nil, &err)
	}
}

// CheckpointStats is what the checkpointer did since the store opened.
type CheckpointStats struct {
	Checkpoints int64 // background checkpoints run
	WriteBacks  int64 // calls of Dialect.WriteBack
	// WriteBackErr is the first error a WriteBack returned, if any.
	WriteBackErr error
}

// CheckpointStats reports what the checkpointer did, for tests and
// diagnostics.
func (s *Store) CheckpointStats() CheckpointStats {
	st := CheckpointStats{Checkpoints: s.checkpoints.Load(), WriteBacks: s.writeBacks.Load()}
	if p := s.writeBackErr.Load(); p != nil {
		st.WriteBackErr = *p
	}
	return st
}

// walState is what a checkpoint reports: whether another checkpoint kept
// it from running, the frames in the WAL and how many of them are copied
// into the database.
type walState struct {
	ok             bool // the checkpoint ran and reported
	busy           bool
	frames, copied int
}

// behind returns how many frames are left to copy.
func (w walState) behind() int { return max(w.frames-w.copied, 0) }

// checkpoint runs the checkpoint statement and returns what it reports
// (zero when it reports nothing, or fails).
func (s *Store) checkpoint(ctx context.Context, stmt string) walState {
	rows, err := s.db.QueryContext(ctx, stmt)
	if err != nil {
		return walState{}
	}
	defer rows.Close()
	var (
		busy int
		w    walState
	)
	if !rows.Next() || rows.Scan(&busy, &w.frames, &w.copied) != nil {
		return walState{}
	}
	w.ok, w.busy = true, busy != 0
	return w
}

// catchUp reports whether a checkpoint that left behind frames uncopied
// must be followed by one at normal priority (limit 0: 16,384 frames, 64 MB
// of 4 KiB pages).
func catchUp(behind, limit int) bool {
	if limit <= 0 {
		limit = 16384
	}
	return behind > limit
}

// runOn runs f on a new goroutine, so on a thread at normal priority, and
// waits for it.
func runOn[T any](f func() T) T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return <-ch
}

// DB returns the underlying pool, for tests and diagnostics.
func (s *Store) DB() *sql.DB { return s.db }

// Close stops the writer, fails queued writes with store.ErrClosed, and
// closes the database. Watches end when their context does.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		closers := s.closers
		s.mu.Unlock()
		for _, f := range closers {
			f()
		}
		close(s.closing)
		<-s.writerDone
		if s.notifyDone != nil {
			<-s.notifyDone // it stops once the writer has, sending what is owed
		}
		if s.maintDone != nil {
			<-s.maintDone
			final := s.d.FinalCheckpoint
			if final == "" {
				final = s.d.Checkpoint
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _ = s.db.ExecContext(ctx, final)
			cancel()
		}
		s.stmtMu.Lock()
		for _, st := range s.stmts {
			st.Close()
		}
		s.stmtMu.Unlock()
		err = s.db.Close()
		if s.d.Release != nil {
			s.d.Release()
		}
	})
	return err
}

func (s *Store) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Wake makes every watch of this Store read at once, as a commit of its
// own does: the PostgreSQL store calls it when another replica committed.
func (s *Store) Wake() { s.broadcast() }

// OnClose registers f to run when the Store closes, before its database
// does (the PostgreSQL store stops its listener with it).
func (s *Store) OnClose(f func()) {
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// changed returns a channel that is closed at the next commit.
func (s *Store) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

func (s *Store) broadcast() {
	s.mu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// queries holds the statements, rebound for the dialect once.
type queries struct {
	getBlob, putBlob                                                    string
	get, lockHead, insertObject, updateObject, deleteObject, storedMeta string
	deleteLabels, updateHead, headSeq, insertCheckpoint, checkpoints    string
	watch, watchKind                                                    string
	createdSince                                                        string
}

const objectCols = "o.name, o.revision, o.created_at, o.updated_at, o.labels, o.spec, o.status"

func newQueries(d *Dialect) queries {
	r := d.rebind
	return queries{
		getBlob:          r("SELECT data FROM blobs WHERE digest = ?"),
		putBlob:          r("INSERT INTO blobs (digest, stored_size, created_at, data) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING"),
		get:              r("SELECT " + objectCols + " FROM objects o WHERE o.kind = ? AND o.name = ?"),
		lockHead:         d.LockHead,
		insertObject:     r("INSERT INTO objects (kind, name, revision, created_at, updated_at, labels, spec, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, name) DO NOTHING"),
		updateObject:     r("UPDATE objects SET revision = ?, updated_at = ?, labels = ?, spec = ?, status = ? WHERE kind = ? AND name = ?"),
		deleteObject:     r("DELETE FROM objects WHERE kind = ? AND name = ?"),
		storedMeta:       r("SELECT revision, created_at FROM objects WHERE kind = ? AND name = ?"),
		deleteLabels:     r("DELETE FROM object_labels WHERE kind = ? AND name = ?"),
		updateHead:       r("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"),
		headSeq:          "SELECT seq, hash FROM audit_head WHERE id = 1",
		insertCheckpoint: r("INSERT INTO audit_checkpoints (size, head, time, key_id, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT (size, key_id) DO NOTHING"),
		checkpoints:      "SELECT size, head, time, key_id, signature FROM audit_checkpoints ORDER BY size, key_id",
		createdSince:     r("SELECT kind, name FROM audit_entries WHERE seq > ? AND seq <= ? AND action = 'create'"),
		watch:            r("SELECT seq, action, kind, name FROM audit_entries WHERE seq > ? AND action IN ('create', 'update', 'delete') ORDER BY seq LIMIT ?"),
		watchKind:        r("SELECT seq, action, kind, name FROM audit_entries WHERE kind = ? AND seq > ? AND action IN ('create', 'update', 'delete') ORDER BY seq LIMIT ?"),
	}
}

// querier is what reads need: the pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Get implements store.Reader.
func (s *Store) Get(ctx context.Context, kind, name string) (*resource.Object, error) {
	if s.closed() {
		return nil, store.ErrClosed
	}
	return s.get(ctx, nil, kind, name)
}

// List implements store.Reader.
func (s *Store) List(ctx context.Context, kind string, sel resource.Selector) ([]*resource.Object, error) {
	if s.closed() {
		return nil, store.ErrClosed
	}
	return s.list(ctx, s.db, kind, sel)
}

func (s *Store) get(ctx context.Context, tx dbtx, kind, name string) (*resource.Object, error) {
	row := s.queryRow(ctx, tx, s.q.get, kind, name)
	obj, err := scanObject(row, kind)
	if err == sql.ErrNoRows {
		return nil, store.NotFound(kind, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %q: %w", kind, name, err)
	}
	return obj, nil
}

func (s *Store) list(ctx context.Context, q querier, kind string, sel resource.Selector) ([]*resource.Object, error) {
	eq := sel.Equalities()
	keys := make([]string, 0, len(eq))
	for k := range eq {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// The first equality drives the query from the label index, which
	// yields names in order; further equalities are probes of the same index.
	var b strings.Builder
	var args []any
	if len(keys) == 0 {
		b.WriteString("SELECT " + objectCols + " FROM objects o WHERE o.kind = ? ORDER BY o.name")
		args = append(args, kind)
	} else {
		b.WriteString("SELECT " + objectCols + " FROM object_labels l0 JOIN objects o ON o.kind = l0.kind AND o.name = l0.name WHERE l0.kind = ? AND l0.key = ? AND l0.value = ?")
		args = append(args, kind, keys[0], eq[keys[0]])
		for _, k := range keys[1:] {
			b.WriteString(" AND EXISTS (SELECT 1 FROM object_labels l WHERE l.kind = ? AND l.key = ? AND l.value = ? AND l.name = o.name)")
			args = append(args, kind, k, eq[k])
		}
		b.WriteString(" ORDER BY l0.name")
	}
	rows, err := q.QueryContext(ctx, s.d.rebind(b.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	defer rows.Close()
	var (
		out []*resource.Object
		ls  listScanner
	)
	for rows.Next() {
		obj, err := ls.scan(rows, kind)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		if sel.Matches(obj.Metadata.Labels) {
			out = append(out, obj)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	return out, nil
}

// listScanner reads the objects of a List with few allocations: the
// columns land in buffers it reuses, each object's name and labels then
// share one new string and its spec and status one new byte slice, and the
// objects themselves are allocated objSlab at a time.
type listScanner struct {
	name, labels, spec, status sql.RawBytes
	buf                        []byte
	slab                       []resource.Object
}

// objSlab is how many objects listScanner allocates at once.
const objSlab = 64

func (ls *listScanner) scan(rows *sql.Rows, kind string) (*resource.Object, error) {
	var created, updated int64
	if len(ls.slab) == 0 {
		ls.slab = make([]resource.Object, objSlab)
	}
	o := &ls.slab[0]
	ls.slab = ls.slab[1:]
	if err := rows.Scan(&ls.name, &o.Metadata.Revision, &created, &updated, &ls.labels, &ls.spec, &ls.status); err != nil {
		return nil, err
	}
	o.APIVersion = resource.APIVersion
	o.Kind = kind
	o.Metadata.CreatedAt = time.Unix(0, created).UTC()
	o.Metadata.UpdatedAt = time.Unix(0, updated).UTC()
	// Name and labels: one string.
	ls.buf = append(append(ls.buf[:0], ls.name...), ls.labels...)
	text := string(ls.buf)
	o.Metadata.Name = text[:len(ls.name)]
	if labels := text[len(ls.name):]; labels != "" && labels != "{}" && labels != "null" {
		if o.Metadata.Labels = parseLabels(labels); o.Metadata.Labels == nil {
			if err := json.Unmarshal([]byte(labels), &o.Metadata.Labels); err != nil {
				return nil, fmt.Errorf("labels of %s %q: %w", kind, o.Metadata.Name, err)
			}
		}
	}
	// Spec and status: one byte slice, each capped so that appending to
	// one cannot overwrite the other.
	if n := len(ls.spec) + len(ls.status); n > 0 {
		b := make([]byte, 0, n)
		b = append(append(b, ls.spec...), ls.status...)
		if len(ls.spec) > 0 {
			o.Spec = b[:len(ls.spec):len(ls.spec)]
		}
		if len(ls.status) > 0 {
			o.Status = b[len(ls.spec):n:n]
		}
	}
	return o, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanObject(r scanner, kind string) (*resource.Object, error) {
	var (
		o                resource.Object
		created, updated int64
		labels           string
		spec, status     []byte
	)
	if err := r.Scan(&o.Metadata.Name, &o.Metadata.Revision, &created, &updated, &labels, &spec, &status); err != nil {
		return nil, err
	}
	o.APIVersion = resource.APIVersion
	o.Kind = kind
	o.Metadata.CreatedAt = time.Unix(0, created).UTC()
	o.Metadata.UpdatedAt = time.Unix(0, updated).UTC()
	if labels != "" && labels != "{}" && labels != "null" {
		if o.Metadata.Labels = parseLabels(labels); o.Metadata.Labels == nil {
			if err := json.Unmarshal([]byte(labels), &o.Metadata.Labels); err != nil {
				return nil, fmt.Errorf("labels of %s %q: %w", kind, o.Metadata.Name, err)
			}
		}
	}
	if len(spec) > 0 {
		o.Spec = spec
	}
	if len(status) > 0 {
		o.Status = status
	}
	return &o, nil
}

// normalize returns the object as it will be stored and read back: API
// version set, empty labels nil, spec and status compact JSON or nil.
func normalize(obj *resource.Object) (*resource.Object, string, error) {
	o := obj.DeepCopy()
	o.APIVersion = resource.APIVersion
	if len(o.Metadata.Labels) == 0 {
		o.Metadata.Labels = nil
	}
	var err error
	if o.Spec, err = compact(o.Spec); err != nil {
		return nil, "", fmt.Errorf("spec of %s: %w", obj.Ref(), err)
	}
	if o.Status, err = compact(o.Status); err != nil {
		return nil, "", fmt.Errorf("status of %s: %w", obj.Ref(), err)
	}
	labels := "{}"
	if o.Metadata.Labels != nil {
		b, err := json.Marshal(o.Metadata.Labels)
		if err != nil {
			return nil, "", fmt.Errorf("labels of %s: %w", obj.Ref(), err)
		}
		labels = string(b)
	}
	return o, labels, nil
}

func compact(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// parseLabels reads the labels column as json.Marshal wrote it for a
// map[string]string, on the fast path where no string holds an escape or a
// quote (label keys and values are validated to plain characters). It
// returns nil when the text is anything else, so the caller falls back to
// encoding/json.
func parseLabels(s string) map[string]string {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.IndexByte(s, '\\') >= 0 {
		return nil
	}
	m := make(map[string]string, strings.Count(s, ":"))
	rest := s[1 : len(s)-1]
	for len(rest) > 0 {
		k, after, ok := quoted(rest)
		if !ok || len(after) == 0 || after[0] != ':' {
			return nil
		}
		v, after2, ok := quoted(after[1:])
		if !ok {
			return nil
		}
		m[k] = v
		rest = after2
		if len(rest) > 0 {
			if rest[0] != ',' || len(rest) == 1 {
				return nil
			}
			rest = rest[1:]
		}
	}
	return m
}

func quoted(s string) (val, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}
