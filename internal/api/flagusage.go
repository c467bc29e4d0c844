package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/store"
)

// FlagUsageEvery is how often FlagUsageLoop writes the days flags were
// evaluated to their status.
const FlagUsageEvery = 5 * time.Minute

// flagUsageActor is who the usage writes are audited as.
var flagUsageActor = store.Actor{Name: "system:flag-usage", Reason: "record the day flags were last evaluated"}

const secondsPerDay = 24 * 60 * 60

// flagUsage notes, in memory, the UTC day each flag was last evaluated,
// until flush writes the days to the flags' status.lastEvaluated. Its
// zero value is ready to use. note is safe for concurrent use and cheap:
// once a flag is known, it is a lock-free map read and an atomic load,
// and writes happen only when the day changes.
type flagUsage struct {
	days sync.Map // usageKey → *usageDay

	flushMu sync.Mutex // one flush at a time
}

// usageKey names one flag.
type usageKey struct{ app, key, env string }

type usageDay struct {
	seen    atomic.Int64 // the latest UTC day (Unix days) the flag was evaluated
	written int64        // the latest day flush wrote or found stored; under flushMu
}

// unixDay is the UTC day of t, counted from 1970-01-01.
func unixDay(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - secondsPerDay + 1) / secondsPerDay
	}
	return s / secondsPerDay
}

// note records that flag app/key/env was evaluated at now.
func (u *flagUsage) note(app, key, env string, now time.Time) {
	d := unixDay(now)
	v, ok := u.days.Load(usageKey{app, key, env})
	if !ok {
		v, _ = u.days.LoadOrStore(usageKey{app, key, env}, new(usageDay))
	}
	seen := &v.(*usageDay).seen
	for {
		old := seen.Load()
		if old >= d || seen.CompareAndSwap(old, d) {
			return
		}
	}
}

// noteOne records a successful evaluation of one flag of env by c. Only
// an evaluation key's count: an admin trying a flag (airlock flags eval)
// is not a client using it.
func (u *flagUsage) noteOne(c *call, env string, evs []*flag.Evaluator, now time.Time) {
	if len(evs) == 1 && !c.principal.HoldsRole(auth.Admin) {
		u.note(evs[0].Spec().App, evs[0].Key(), env, now)
	}
}

// noteAll records that c fetched every flag of env (a bulk evaluation,
// answered or 304 Not Modified: the client holds them all).
func (u *flagUsage) noteAll(c *call, env string, set map[string][]*flag.Evaluator, now time.Time) {
	if c.principal.HoldsRole(auth.Admin) {
		return
	}
	for _, evs := range set {
		if len(evs) == 1 {
			u.note(evs[0].Spec().App, evs[0].Key(), env, now)
		}
	}
}

// flush writes the noted days to the flags' status.lastEvaluated (the
// day's midnight, UTC) where the stored day is older, one store write per
// flag, audited as system:flag-usage. It changes nothing else in the flag:
// spec, labels and the rest of the status are kept as stored. It returns
// how many flags it updated; a flag deleted since is forgotten. It keeps
// going past a failed flag and returns the failures joined; their days
// stay noted for the next flush. (A status write does not supersede an
// open FlagChange: a change applies when the flag's spec is as proposed.)
func (u *flagUsage) flush(ctx context.Context, st store.Store) (int, error) {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	type due struct {
		k usageKey
		d *usageDay
	}
	var todo []due
	u.days.Range(func(k, v any) bool {
		if d := v.(*usageDay); d.seen.Load() > d.written {
			todo = append(todo, due{k.(usageKey), d})
		}
		return true
	})
	sort.Slice(todo, func(i, j int) bool { return usageName(todo[i].k) < usageName(todo[j].k) })
	n := 0
	var errs []error
	for _, t := range todo {
		day := t.d.seen.Load()
		wrote, err := writeLastEvaluated(ctx, st, usageName(t.k), time.Unix(day*secondsPerDay, 0).UTC())
		switch {
		case errors.Is(err, store.ErrNotFound):
			u.days.Delete(t.k)
		case err != nil:
			errs = append(errs, err)
		default:
			t.d.written = day
			if wrote {
				n++
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return n, errors.Join(errs...)
}

func usageName(k usageKey) string { return flag.Name(k.app, k.key, k.env) }

// writeLastEvaluated sets the flag's status.lastEvaluated to day unless it
// already holds day or later; it reports whether it wrote.
func writeLastEvaluated(ctx context.Context, st store.Store, name string, day time.Time) (bool, error) {
	wrote := false
	err := st.Write(ctx, flagUsageActor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, flag.KindName, name)
		if err != nil {
			return err
		}
		var cur flag.Status
		if err := obj.DecodeStatus(&cur); err != nil {
			return fmt.Errorf("decode status of %s: %w", obj.Ref(), err)
		}
		if cur.LastEvaluated != nil && !cur.LastEvaluated.Before(day) {
			return nil
		}
		next := obj.DeepCopy()
		if next.Status, err = setStatusField(obj.Status, "lastEvaluated", day); err != nil {
			return fmt.Errorf("status of %s: %w", obj.Ref(), err)
		}
		if _, err := tx.Update(ctx, next); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record the last evaluation of flag %s: %w", name, err)
	}
	return wrote, nil
}

// setStatusField returns status with one field set, every other field
// kept as it is (including any this version does not know).
func setStatusField(status json.RawMessage, field string, v any) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(status) > 0 && string(status) != "null" {
		if err := json.Unmarshal(status, &m); err != nil {
			return nil, err
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m[field] = b
	return json.Marshal(m)
}

// FlushFlagUsage writes the days flags were evaluated, noted in memory
// since the last flush, to their status.lastEvaluated, and returns how
// many flags it updated. FlagUsageLoop calls it periodically; tests call
// it to flush at a point of their choosing. It is safe for concurrent use.
func (a *API) FlushFlagUsage(ctx context.Context) (int, error) {
	return a.usage.flush(ctx, a.Store)
}

// FlagUsageLoop flushes flag usage every interval (FlagUsageEvery when
// every is zero) until ctx ends, then once more, so a clean stop loses no
// day. Failures are logged and retried at the next tick.
func (a *API) FlagUsageLoop(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = FlagUsageEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := a.FlushFlagUsage(fctx); err != nil {
				a.logger.Warn("recording flag usage at shutdown failed", slog.Any("error", err))
			}
			return
		case <-t.C:
			if _, err := a.FlushFlagUsage(ctx); err != nil && ctx.Err() == nil {
				a.logger.WarnContext(ctx, "recording flag usage failed", slog.Any("error", err))
			}
		}
	}
}
