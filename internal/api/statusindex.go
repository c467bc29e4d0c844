package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
)

// statusIndex keeps the status matrix (GET /api/v1/status) in memory: one
// row per current rollout, loaded once and then kept up to date from a
// store watch on Rollouts, which carries each changed object (for writes
// by other replicas within a second: PostgreSQL LISTEN/NOTIFY). A request
// then costs a copy of the rows, not a read and decode of every rollout.
// Should the watch end, the index stops trusting itself and every request
// reads the store again.
type statusIndex struct {
	once sync.Once
	live atomic.Bool

	mu     sync.RWMutex
	rows   map[string]StatusRow // rollout name → row
	sorted []StatusRow          // rows in order; nil after a change
	body   []byte               // the whole matrix as served; nil after a change
	ver    uint64               // moves on at every change
}

// startStatusIndex loads the current rollouts and follows their changes.
func (a *API) startStatusIndex() {
	a.statusIdx.once.Do(func() {
		ctx := context.Background()
		fail := func(what string, err error) {
			a.logger.Warn("status index: "+what+" failed; the status matrix reads the store", slog.Any("error", err))
		}
		seq, _, err := a.Store.Audit().Head(ctx)
		if err != nil {
			fail("reading the audit head", err)
			return
		}
		ch, err := a.Store.Watch(ctx, rollout.Kind, seq)
		if err != nil {
			fail("watching rollouts", err)
			return
		}
		objs, err := a.Store.List(ctx, rollout.Kind, resource.Selector{{Key: rollout.CurrentLabel, Op: resource.Equals, Values: []string{"true"}}})
		if err != nil {
			fail("listing rollouts", err)
			return
		}
		idx := &a.statusIdx
		idx.rows = make(map[string]StatusRow, len(objs))
		for _, o := range objs {
			idx.apply(store.Event{Type: store.Updated, Kind: rollout.Kind, Name: o.Metadata.Name, Object: o})
		}
		idx.live.Store(true)
		go func() {
			// Events after the head read above: a change between the head
			// and the list is applied again, in order, ending in its latest
			// state.
			for ev := range ch {
				idx.apply(ev)
			}
			idx.live.Store(false)
		}()
	})
}

// apply records one change of a rollout.
func (x *statusIndex) apply(ev store.Event) {
	var row StatusRow
	keep := false
	if ev.Type != store.Deleted && ev.Object != nil && ev.Object.Metadata.Labels[rollout.CurrentLabel] == "true" {
		r, err := statusRowOf(ev.Object)
		if err == nil {
			row, keep = r, true
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if keep {
		x.rows[ev.Name] = row
	} else if _, had := x.rows[ev.Name]; had {
		delete(x.rows, ev.Name)
	} else {
		return
	}
	x.sorted, x.body = nil, nil
	x.ver++
}

// statusRows returns a copy of the status rows (of app, when not empty),
// sorted, and false when the index cannot be trusted.
func (a *API) statusRows(app string) ([]StatusRow, bool) {
	a.startStatusIndex()
	x := &a.statusIdx
	if !x.live.Load() {
		return nil, false
	}
	x.mu.RLock()
	sorted := x.sorted
	x.mu.RUnlock()
	if sorted == nil {
		x.mu.Lock()
		if x.sorted == nil {
			all := make([]StatusRow, 0, len(x.rows))
			for _, r := range x.rows {
				all = append(all, r)
			}
			sortRows(all)
			x.sorted = all
		}
		sorted = x.sorted
		x.mu.Unlock()
	}
	if app == "" {
		return slices.Clone(sorted), true
	}
	var out []StatusRow
	for _, r := range sorted {
		if r.App == app {
			out = append(out, r)
		}
	}
	if out == nil {
		out = []StatusRow{}
	}
	return out, true
}

// statusBody returns the whole matrix encoded as GET /api/v1/status
// serves it, kept until the next change, and false when the index cannot
// be trusted. It is only right when no row has live runtime fields.
func (a *API) statusBody() ([]byte, bool) {
	x := &a.statusIdx
	x.mu.RLock()
	body := x.body
	x.mu.RUnlock()
	if body != nil && x.live.Load() {
		return body, true
	}
	x.mu.RLock()
	ver := x.ver
	x.mu.RUnlock()
	rows, ok := a.statusRows("")
	if !ok {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"items": rows}); err != nil {
		return nil, false
	}
	x.mu.Lock()
	if x.ver == ver { // unchanged since the rows were read
		x.body = buf.Bytes()
	}
	x.mu.Unlock()
	return buf.Bytes(), true
}
