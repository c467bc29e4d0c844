package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/internal/store"
)

// watchPage bounds the entries one poll reads.
const watchPage = 512

// Watch implements store.Store. It reads the audit log after after, polling
// every PollInterval and waking at once when this Store commits. Created and
// Updated events carry the object as it is stored when the event is sent:
// if it has changed again since, that later state (with its revision) is
// delivered once and the entries it covers are skipped; if it has been
// deleted since, only the Deleted event is sent.
func (s *Store) Watch(ctx context.Context, kind string, after int64) (<-chan store.Event, error) {
	if s.closed() {
		return nil, store.ErrClosed
	}
	ch := make(chan store.Event, 64)
	go s.watch(ctx, kind, after, ch)
	return ch, nil
}

type watchEntry struct {
	seq              int64
	action, kin, nam string
}

func (s *Store) watch(ctx context.Context, kind string, after int64, ch chan<- store.Event) {
	defer close(ch)
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	// ahead holds objects already delivered at a revision later than the
	// entry being read, so those later entries are not delivered twice.
	ahead := map[[2]string]int64{}
	for {
		wake := s.changed()
		for {
			page, err := s.watchPage(ctx, kind, after)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
					return
				}
				break // try again at the next tick
			}
			for _, e := range page {
				after = e.seq
				ev, ok, err := s.event(ctx, e, ahead)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					after = e.seq - 1
					break
				}
				if !ok {
					continue
				}
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
			}
			if len(page) < watchPage {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-wake:
		case <-ticker.C:
		}
	}
}

func (s *Store) watchPage(ctx context.Context, kind string, after int64) ([]watchEntry, error) {
	if s.closed() {
		return nil, store.ErrClosed
	}
	q, args := s.q.watch, []any{after, watchPage}
	if kind != "" {
		q, args = s.q.watchKind, []any{kind, after, watchPage}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	defer rows.Close()
	var page []watchEntry
	for rows.Next() {
		var e watchEntry
		if err := rows.Scan(&e.seq, &e.action, &e.kin, &e.nam); err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		page = append(page, e)
	}
	return page, rows.Err()
}

// event turns an entry into the event to deliver, or ok=false to skip it.
func (s *Store) event(ctx context.Context, e watchEntry, ahead map[[2]string]int64) (store.Event, bool, error) {
	key := [2]string{e.kin, e.nam}
	if rev, ok := ahead[key]; ok {
		if e.seq <= rev {
			if e.seq == rev {
				delete(ahead, key)
			}
			return store.Event{}, false, nil
		}
		delete(ahead, key)
	}
	ev := store.Event{Kind: e.kin, Name: e.nam, Revision: e.seq}
	switch e.action {
	case "delete":
		ev.Type = store.Deleted
		return ev, true, nil
	case "create":
		ev.Type = store.Created
	default:
		ev.Type = store.Updated
	}
	obj, err := s.get(ctx, nil, e.kin, e.nam)
	if errors.Is(err, store.ErrNotFound) {
		return store.Event{}, false, nil // deleted since; its Deleted event follows
	}
	if err != nil {
		return store.Event{}, false, err
	}
	ev.Object = obj
	if obj.Metadata.Revision > e.seq {
		ev.Revision = obj.Metadata.Revision
		ahead[key] = obj.Metadata.Revision
	}
	return ev, true, nil
}
