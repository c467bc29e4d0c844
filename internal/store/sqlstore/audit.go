package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/store"
)

// Audit implements store.Store.
func (s *Store) Audit() store.AuditLog { return auditLog{s} }

type auditLog struct{ s *Store }

// Entries implements store.AuditLog. It streams rows from the database and
// holds one entry in memory at a time.
func (a auditLog) Entries(ctx context.Context, f store.AuditFilter, fn func(audit.Entry) error) error {
	s := a.s
	if s.closed() {
		return store.ErrClosed
	}
	var b strings.Builder
	b.WriteString("SELECT " + entryCols + " FROM audit_entries WHERE seq > ?")
	args := []any{f.After}
	if f.Actor != "" {
		b.WriteString(" AND actor = ?")
		args = append(args, f.Actor)
	}
	if f.Kind != "" {
		b.WriteString(" AND kind = ?")
		args = append(args, f.Kind)
	}
	if !f.Since.IsZero() {
		b.WriteString(" AND time >= ?")
		args = append(args, f.Since.UnixNano())
	}
	b.WriteString(" ORDER BY seq")
	if f.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.d.rebind(b.String()), args...)
	if err != nil {
		return fmt.Errorf("read audit entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  audit.Entry
			ts int64
		)
		if err := rows.Scan(&e.Seq, &ts, &e.Actor, &e.Action, &e.Kind, &e.Name, &e.Revision, &e.Reason, &e.StateHash, &e.PrevHash, &e.Hash); err != nil {
			return fmt.Errorf("read audit entries: %w", err)
		}
		e.Time = time.Unix(0, ts).UTC()
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit entries: %w", err)
	}
	return nil
}

// Head implements store.AuditLog.
func (a auditLog) Head(ctx context.Context) (int64, string, error) {
	if a.s.closed() {
		return 0, "", store.ErrClosed
	}
	var (
		seq  int64
		hash string
	)
	if err := a.s.db.QueryRowContext(ctx, a.s.q.headSeq).Scan(&seq, &hash); err != nil {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

// AddCheckpoint implements store.AuditLog. Storing the same checkpoint
// (size and key) twice keeps the first.
func (a auditLog) AddCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	if a.s.closed() {
		return store.ErrClosed
	}
	if _, err := a.s.db.ExecContext(ctx, a.s.q.insertCheckpoint, c.Size, c.Head, c.Time.UnixNano(), c.KeyID, c.Signature); err != nil {
		return fmt.Errorf("store checkpoint at size %d: %w", c.Size, err)
	}
	return nil
}

// Checkpoints implements store.AuditLog.
func (a auditLog) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	if a.s.closed() {
		return nil, store.ErrClosed
	}
	rows, err := a.s.db.QueryContext(ctx, a.s.q.checkpoints)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		var (
			c  audit.Checkpoint
			ts int64
		)
		if err := rows.Scan(&c.Size, &c.Head, &ts, &c.KeyID, &c.Signature); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		c.Time = time.Unix(0, ts).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}
