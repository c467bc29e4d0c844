// Package cluster lets several airlock servers share one database: each
// replica writes a heartbeat, and exactly one holds the leader lease and
// runs the background loops (rollouts, analysis, access expiry,
// deliveries). The lease is a row with an expiry, renewed by its holder;
// when the holder dies, another replica takes it once it expires.
//
// Times come from the database's clock, so replicas with skewed clocks
// agree on who holds the lease. A leader that cannot renew stops its loops
// before the lease expires (at TTL minus the renewal period), so two
// replicas never lead at once as long as the database's clock is steady.
package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LeaderLease names the lease of the reconcilers.
const LeaderLease = "reconcilers"

// Defaults: a lease lasts 10 s and is renewed every 2 s, so a successor
// leads at most about 12 s after its predecessor died. Replicas seen in the
// last Alive are listed as alive.
const (
	DefaultTTL   = 10 * time.Second
	DefaultRenew = 2 * time.Second
	Alive        = 15 * time.Second
)

// Replica is one server as the database knows it.
type Replica struct {
	ID        string    `json:"id"`
	Address   string    `json:"address"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"startedAt"`
	LastSeen  time.Time `json:"lastSeen"`
	// Leader is true for the replica that holds the leader lease.
	Leader bool `json:"leader"`
	// LeaderSince is when it took the lease.
	LeaderSince *time.Time `json:"leaderSince,omitempty"`
}

// DB is the database replicas share, in one of airlock's dialects.
type DB struct {
	db      *sql.DB
	dialect string
}

// NewDB wraps db; dialect is "postgres" or "sqlite".
func NewDB(db *sql.DB, dialect string) (*DB, error) {
	if dialect != "postgres" && dialect != "sqlite" {
		return nil, fmt.Errorf("cluster: unknown dialect %q", dialect)
	}
	return &DB{db: db, dialect: dialect}, nil
}

// now is the database's clock in unix milliseconds, as SQL.
func (d *DB) now() string {
	if d.dialect == "postgres" {
		return "(extract(epoch from clock_timestamp()) * 1000)::bigint"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}

// q writes a query with ? placeholders and NOW for the database's clock
// in the dialect.
func (d *DB) q(s string) string {
	s = strings.ReplaceAll(s, "NOW", d.now())
	if d.dialect != "postgres" {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Heartbeat records that replica r is alive.
func (d *DB) Heartbeat(ctx context.Context, r Replica) error {
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO replicas (id, address, version, started_at, last_seen) VALUES (?, ?, ?, NOW, NOW)
ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version, last_seen = excluded.last_seen`), r.ID, r.Address, r.Version)
	return err
}

// Leave removes replica id and gives up any lease it holds.
func (d *DB) Leave(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM leases WHERE holder = ?`), id)
	if err == nil {
		_, err = d.db.ExecContext(ctx, d.q(`DELETE FROM replicas WHERE id = ?`), id)
	}
	return err
}

// Acquire takes or renews lease name for holder for ttl. It returns
// whether holder holds it now and since when.
func (d *DB) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (bool, time.Time, error) {
	var got string
	var since int64
	err := d.db.QueryRowContext(ctx, d.q(`INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, NOW, NOW + ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
	acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END
WHERE leases.holder = excluded.holder OR leases.expires_at < NOW
RETURNING holder, acquired_at`), name, holder, ttl.Milliseconds()).Scan(&got, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	return got == holder, time.UnixMilli(since), nil
}

// Release gives up lease name if holder holds it.
func (d *DB) Release(ctx context.Context, name, holder string) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder)
	return err
}

// Replicas lists the replicas seen in the last alive, oldest first, and
// marks the holder of the leader lease (if it has not expired).
func (d *DB) Replicas(ctx context.Context, alive time.Duration) ([]Replica, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT r.id, r.address, r.version, r.started_at, r.last_seen, l.acquired_at
FROM replicas r LEFT JOIN leases l ON l.holder = r.id AND l.name = ? AND l.expires_at >= NOW
WHERE r.last_seen >= NOW - ?
ORDER BY r.started_at, r.id`), LeaderLease, alive.Milliseconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Replica
	for rows.Next() {
		var r Replica
		var started, seen int64
		var since sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Address, &r.Version, &started, &seen, &since); err != nil {
			return nil, err
		}
		r.StartedAt, r.LastSeen = time.UnixMilli(started).UTC(), time.UnixMilli(seen).UTC()
		if since.Valid {
			t := time.UnixMilli(since.Int64).UTC()
			r.Leader, r.LeaderSince = true, &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Member is this replica: it keeps its heartbeat and competes for the
// leader lease, running the leader's work while it holds it.
type Member struct {
	DB      *DB
	Replica Replica // ID, Address and Version
	TTL     time.Duration
	Renew   time.Duration
	Logger  *slog.Logger

	mu     sync.Mutex
	leader bool
}

// IsLeader reports whether this replica leads now.
func (m *Member) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

func (m *Member) setLeader(v bool) {
	m.mu.Lock()
	m.leader = v
	m.mu.Unlock()
}

// Run keeps the heartbeat and competes for the lease until ctx ends.
// While this replica holds the lease, lead runs with a context that ends
// when the lease is lost (or could not be renewed in time) or ctx ends;
// Run waits for lead to return before it competes again. At the end it
// releases the lease and leaves, so a successor takes over at once.
func (m *Member) Run(ctx context.Context, lead func(context.Context)) {
	ttl, renew := m.TTL, m.Renew
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if renew <= 0 {
		renew = DefaultRenew
	}
	log := m.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		cancelLead context.CancelFunc
		leadDone   chan struct{}
		deadline   time.Time // stop leading when no renewal succeeded by then
	)
	stopLeading := func(why string) {
		if cancelLead == nil {
			return
		}
		cancelLead()
		<-leadDone
		cancelLead, leadDone = nil, nil
		m.setLeader(false)
		log.Warn("no longer the leader; background loops stopped", slog.String("replica", m.Replica.ID), slog.String("why", why))
	}
	tick := time.NewTicker(renew)
	defer tick.Stop()
	for {
		op, cancel := context.WithTimeout(ctx, renew)
		if err := m.DB.Heartbeat(op, m.Replica); err != nil && ctx.Err() == nil {
			log.Warn("cluster heartbeat failed", slog.Any("error", err))
		}
		held, _, err := m.DB.Acquire(op, LeaderLease, m.Replica.ID, ttl)
		cancel()
		now := time.Now()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Warn("leader lease: could not reach the database", slog.Any("error", err))
			if cancelLead != nil && now.After(deadline) {
				stopLeading("the lease could not be renewed before it would expire")
			}
		case held:
			deadline = now.Add(ttl - renew)
			if cancelLead == nil {
				lctx, c := context.WithCancel(ctx)
				cancelLead, leadDone = c, make(chan struct{})
				m.setLeader(true)
				log.Info("took the leader lease; running the background loops", slog.String("replica", m.Replica.ID))
				done := leadDone
				go func() { defer close(done); lead(lctx) }()
			}
		default:
			stopLeading("another replica holds the lease")
		}
		select {
		case <-ctx.Done():
			stopLeading("shutting down")
			bye, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := m.DB.Leave(bye, m.Replica.ID); err != nil {
				log.Warn("leaving the cluster", slog.Any("error", err))
			}
			cancel()
			return
		case <-tick.C:
		}
		if cancelLead != nil && time.Now().After(deadline) {
			stopLeading("the lease was not renewed in time")
		}
	}
}
