package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Reconciler runs rollouts: for the current rollout of each application
// and environment it observes the runtime, plans, applies the plan through
// the target, and stores the new status with a revision check, audited as
// system:rollouts. After a restart it applies every current rollout's
// state again, so the routers come back with the weights the status holds.
type Reconciler struct {
	Store  store.Store
	Target Target
	Now    func() time.Time
	Logger *slog.Logger
	// OnFinish runs in the transaction that records a rollout ending, so
	// the promotion that started it takes its outcome atomically.
	OnFinish func(ctx context.Context, tx store.Tx, name string, spec Spec, st Status) error
	// Resync, when positive, applies a finished rollout's final state
	// again that often, so drift on the runtime (a hand edit) is found
	// and reverted; 0 applies it once.
	Resync time.Duration

	once     sync.Once
	wake     chan struct{}
	mu       sync.Mutex
	applyErr map[string]string // app/env → why the last Apply failed
	settled  map[string]int64  // rollout → revision whose final state was applied
	synced   map[string]time.Time
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		r.wake = make(chan struct{}, 1)
		r.applyErr, r.settled, r.synced = map[string]string{}, map[string]int64{}, map[string]time.Time{}
		if r.Now == nil {
			r.Now = time.Now
		}
		if r.Logger == nil {
			r.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// Wake makes the loop run at once (after a command or a new rollout).
func (r *Reconciler) Wake() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// idle is how long the loop sleeps when no rollout asks for sooner.
const idle = time.Second

// RunOnce reconciles every current rollout once and returns how soon it
// wants to run again.
func (r *Reconciler) RunOnce(ctx context.Context) (time.Duration, error) {
	r.init()
	objs, err := r.Store.List(ctx, Kind, resource.Selector{{Key: CurrentLabel, Op: resource.Equals, Values: []string{"true"}}})
	if err != nil {
		return idle, err
	}
	next := idle
	var errs []error
	for _, o := range objs {
		d, err := r.one(ctx, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", o.Metadata.Name, err))
		}
		if d > 0 && d < next {
			next = d
		}
	}
	return next, errors.Join(errs...)
}

func (r *Reconciler) one(ctx context.Context, o *resource.Object) (time.Duration, error) {
	spec, st, err := Decode(o)
	if err != nil {
		return 0, err
	}
	k := spec.App + "/" + spec.Environment
	r.mu.Lock()
	settledAt, isSettled := r.settled[o.Metadata.Name]
	applyErr := r.applyErr[k]
	synced := r.synced[o.Metadata.Name]
	r.mu.Unlock()
	resync := r.Resync > 0 && r.Now().Sub(synced) >= r.Resync
	if !st.Phase.Active() && isSettled && settledAt == o.Metadata.Revision && applyErr == "" && !resync &&
		(st.StableUntil == nil || !r.Now().Before(*st.StableUntil)) {
		return 0, nil // final, applied, nothing pending
	}
	r.mu.Lock()
	r.synced[o.Metadata.Name] = r.Now()
	r.mu.Unlock()
	obs, err := r.Target.Observe(ctx, spec.App, spec.Environment, &spec.Candidate, spec.Stable)
	if err != nil {
		return poll, err
	}
	obs.Error = applyErr
	res := Plan(spec, st, obs, r.Now())
	if err := r.Target.Apply(ctx, res.Desired); err != nil {
		r.mu.Lock()
		r.applyErr[k] = err.Error()
		r.mu.Unlock()
		r.Logger.WarnContext(ctx, "runtime apply failed", slog.String("rollout", o.Metadata.Name), slog.Any("error", err))
		if res.Status.Phase.Active() {
			return poll, nil // the next plan fails the rollout with the reason
		}
	} else {
		r.mu.Lock()
		delete(r.applyErr, k)
		r.mu.Unlock()
	}
	rev := o.Metadata.Revision
	if !sameStatus(st, res.Status) {
		if rev, err = r.store(ctx, o, spec, st, res.Status); err != nil {
			return poll, err
		}
	}
	if !res.Status.Phase.Active() {
		r.mu.Lock()
		r.settled[o.Metadata.Name] = rev
		r.mu.Unlock()
	}
	return res.Requeue, nil
}

// store writes a rollout's new status if nobody changed the rollout since
// it was read, and hands a rollout that just ended to OnFinish.
func (r *Reconciler) store(ctx context.Context, o *resource.Object, spec Spec, prev, next Status) (int64, error) {
	var rev int64
	err := r.Store.Write(ctx, store.Actor{Name: "system:rollouts", Reason: next.Message}, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, Kind, o.Metadata.Name)
		if err != nil {
			return err
		}
		if cur.Metadata.Revision != o.Metadata.Revision {
			return fmt.Errorf("changed while planning: %w", store.ErrConflict)
		}
		upd := cur.DeepCopy()
		upd.Metadata.Labels[PhaseLabel] = string(next.Phase)
		if err := upd.SetStatus(next); err != nil {
			return err
		}
		saved, err := tx.Update(ctx, upd)
		if err != nil {
			return err
		}
		rev = saved.Metadata.Revision
		if err := enqueueMarkers(ctx, tx, o.Metadata.Name, spec, prev, next); err != nil {
			return err
		}
		if prev.Phase.Active() && !next.Phase.Active() && r.OnFinish != nil {
			return r.OnFinish(ctx, tx, o.Metadata.Name, spec, next)
		}
		if prev.Phase == Succeeded && next.Phase == RolledBack && r.OnFinish != nil {
			return r.OnFinish(ctx, tx, o.Metadata.Name, spec, next)
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return 0, nil // someone steered it meanwhile: plan again from the new state
	}
	return rev, err
}

// Loop reconciles until ctx ends: at once when woken, otherwise when a
// rollout asks for it or every second.
func (r *Reconciler) Loop(ctx context.Context) {
	r.init()
	for {
		d, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "reconciling rollouts", slog.Any("error", err))
		}
		if d <= 0 || d > idle {
			d = idle
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}
