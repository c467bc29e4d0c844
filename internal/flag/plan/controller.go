package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

// ErrWindowClosed is what an ApplyFunc's error wraps when no deployment
// window is open for the flag's environment. The controller then waits and
// tries the step again later, without pausing the plan.
var ErrWindowClosed = errors.New("deployment window closed")

// ErrAwaitingApproval is what an ApplyFunc's error wraps while the plan
// itself waits for approval (its first step, proposed as a flag change,
// is not approved yet). The controller waits as for a closed window.
var ErrAwaitingApproval = errors.New("awaiting approval")

// ApplyFunc writes a flag's next spec inside tx, with whatever change
// control, audit and status bookkeeping flag changes need. actor is who
// makes the step (ActorName for the controller, a person for Advance),
// plan names the FlagPlan, and note says why (e.g. "plan
// shop.new-checkout.prod: step 2 (10%)"); the arguments follow
// flagchange.ApplyPlanned. It returns an error wrapping ErrWindowClosed
// when the flag's environment has no open deployment window; any other
// error makes the controller pause the plan with the error as its message.
// It must return an error unless the flag now serves next: the plan then
// records the step as applied. When it returns an error the transaction is
// not committed.
type ApplyFunc func(ctx context.Context, tx store.Tx, actor store.Actor, plan, flagName string, next flag.Spec, note string) error

// ActorName is the audit identity of the controller.
const ActorName = "system:flag-plan"

// Defaults of the Controller's timing.
const (
	DefaultIdle        = 5 * time.Second
	DefaultWindowRetry = time.Minute
)

// Controller drives every FlagPlan: it starts newly applied plans, advances
// running ones on their schedule, pauses them on a fail verdict and marks
// them Completed after their last step. Each step changes the flag (through
// Apply) and the plan's status in one transaction, audited as
// system:flag-plan. All progress lives in the plan's status, so a restarted
// server carries on where the last one stopped.
//
// Set the exported fields before the first call; RunOnce, Loop and Wake
// are then safe for concurrent use, though one Loop per store is intended.
type Controller struct {
	Store store.Store
	Apply ApplyFunc
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Idle is how long Loop sleeps when no plan asks for sooner
	// (DefaultIdle when 0); a newly applied plan starts within it unless
	// Wake is called.
	Idle time.Duration
	// WindowRetry is how soon a step that found its deployment window
	// closed is tried again (DefaultWindowRetry when 0).
	WindowRetry time.Duration

	once sync.Once
	wake chan struct{}
	mu   sync.Mutex
	// retryAt holds, per plan, when a step that found its deployment
	// window closed is tried again.
	retryAt map[string]time.Time
}

func (c *Controller) init() {
	c.once.Do(func() {
		c.wake = make(chan struct{}, 1)
		c.retryAt = map[string]time.Time{}
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.Logger == nil {
			c.Logger = slog.New(slog.DiscardHandler)
		}
		if c.Idle <= 0 {
			c.Idle = DefaultIdle
		}
		if c.WindowRetry <= 0 {
			c.WindowRetry = DefaultWindowRetry
		}
	})
}

// Wake makes Loop run at once (after a plan was applied or resumed).
func (c *Controller) Wake() {
	c.init()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Retry forgets every plan's wait (for a window, for an approval) and
// wakes the loop: something they waited for may have happened.
func (c *Controller) Retry() {
	c.init()
	c.mu.Lock()
	clear(c.retryAt)
	c.mu.Unlock()
	c.Wake()
}

// Decode reads a FlagPlan object.
func Decode(o *resource.Object) (Spec, Status, error) {
	var (
		spec Spec
		st   Status
	)
	if err := o.DecodeSpec(&spec); err != nil {
		return Spec{}, Status{}, fmt.Errorf("decode %s: %w", o.Ref(), err)
	}
	if err := o.DecodeStatus(&st); err != nil {
		return Spec{}, Status{}, fmt.Errorf("decode status of %s: %w", o.Ref(), err)
	}
	return spec, st, nil
}

// RunOnce handles every plan once and returns how soon it wants to run
// again. Errors of single plans are joined; the other plans still run.
func (c *Controller) RunOnce(ctx context.Context) (time.Duration, error) {
	c.init()
	objs, err := c.Store.List(ctx, Kind, nil)
	if err != nil {
		return c.Idle, fmt.Errorf("list flag plans: %w", err)
	}
	next := c.Idle
	var errs []error
	for _, o := range objs {
		d, err := c.one(ctx, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("flag plan %s: %w", o.Metadata.Name, err))
		}
		if d > 0 && d < next {
			next = d
		}
	}
	return next, errors.Join(errs...)
}

// Loop runs RunOnce until ctx ends: at once when woken, otherwise when a
// plan is due or every Idle.
func (c *Controller) Loop(ctx context.Context) {
	c.init()
	for {
		d, err := c.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.Logger.WarnContext(ctx, "running flag plans", slog.Any("error", err))
		}
		if d <= 0 || d > c.Idle {
			d = c.Idle
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// stepError is a step that cannot be applied as the plan stands (the flag
// or the variant is missing, Apply refused): the plan pauses.
type stepError struct{ err error }

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func (c *Controller) one(ctx context.Context, o *resource.Object) (time.Duration, error) {
	spec, st, err := Decode(o)
	if err != nil {
		return 0, err
	}
	now := c.Now()
	switch st.PhaseOf() {
	case Pending:
		return c.step(ctx, o, spec, st, 0)
	case Running:
	default:
		return 0, nil
	}
	if st.Step+1 >= len(spec.Steps) {
		// The last step is applied (the spec was shortened since): done.
		return 0, c.update(ctx, o, func(next *Status) string {
			next.Phase, next.NextAt = Completed, nil
			next.Message = fmt.Sprintf("completed at step %d (%s): the plan has no later step", st.Step, spec.Describe(st.Step))
			return next.Message
		})
	}
	if spec.PausesOnVerdict() {
		bad, err := c.badVerdict(ctx, spec, st)
		if err != nil {
			return 0, err
		}
		if bad != "" {
			c.Logger.InfoContext(ctx, "flag plan paused by a verdict", slog.String("plan", o.Metadata.Name), slog.String("why", bad))
			return 0, c.update(ctx, o, func(next *Status) string {
				next.Phase, next.NextAt = Paused, nil
				next.Message = fmt.Sprintf("paused at step %d (%s): %s; resume with airlock flags plan resume %s --reason TEXT", st.Step, spec.Describe(st.Step), bad, o.Metadata.Name)
				return next.Message
			})
		}
	}
	every := spec.Every()
	if every <= 0 {
		if st.NextAt != nil {
			return 0, c.update(ctx, o, func(next *Status) string {
				next.NextAt = nil
				return ""
			})
		}
		return 0, nil
	}
	due := st.since().Add(every)
	if !now.Before(due) {
		return c.step(ctx, o, spec, st, st.Step+1)
	}
	if st.NextAt == nil || !st.NextAt.Equal(due) {
		if err := c.update(ctx, o, func(next *Status) string {
			next.NextAt = &due
			return ""
		}); err != nil {
			return 0, err
		}
	}
	return due.Sub(now), nil
}

// badVerdict describes the newest fail verdict for the plan's flag since
// its current step began (or it was resumed), or returns "".
func (c *Controller) badVerdict(ctx context.Context, spec Spec, st Status) (string, error) {
	fo, err := c.Store.Get(ctx, flag.KindName, spec.Flag)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil // the next step pauses the plan with the reason
	}
	if err != nil {
		return "", err
	}
	var fs flag.Spec
	if err := fo.DecodeSpec(&fs); err != nil {
		return "", fmt.Errorf("decode %s: %w", fo.Ref(), err)
	}
	vo, err := verdict.LatestBad(ctx, c.Store, fs.App, fs.Environment, st.since())
	if err != nil || vo == nil {
		return "", err
	}
	v, err := verdict.Decode(vo)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("verdict %s on %s/%s by %s is fail: %s", v.Name, v.Spec.Subject.Kind, v.Spec.Subject.Name, v.Spec.Judge, v.Spec.Summary), nil
}

// step applies step n of the plan and records it, in one transaction. A
// closed window leaves the plan as it is (with a message) and asks to be
// tried again after WindowRetry; a step that cannot be applied pauses it.
func (c *Controller) step(ctx context.Context, o *resource.Object, spec Spec, st Status, n int) (time.Duration, error) {
	name := o.Metadata.Name
	now := c.Now()
	c.mu.Lock()
	retry, waiting := c.retryAt[name]
	c.mu.Unlock()
	if waiting && now.Before(retry) {
		return retry.Sub(now), nil
	}
	note := fmt.Sprintf("plan %s: step %d (%s)", name, n, spec.Describe(n))
	err := c.Store.Write(ctx, store.Actor{Name: ActorName, Reason: note}, func(tx store.Tx) error {
		cur, err := current(ctx, tx, o)
		if err != nil {
			return err
		}
		next, err := applyStep(ctx, tx, c.Apply, name, spec, st, n, now, ActorName)
		if err != nil {
			return err
		}
		if err := cur.SetStatus(next); err != nil {
			return err
		}
		_, err = tx.Update(ctx, cur)
		return err
	})
	c.mu.Lock()
	delete(c.retryAt, name)
	if errors.Is(err, ErrWindowClosed) || errors.Is(err, ErrAwaitingApproval) {
		c.retryAt[name] = now.Add(c.WindowRetry)
	}
	c.mu.Unlock()
	var se *stepError
	switch {
	case err == nil:
		c.Logger.InfoContext(ctx, "flag plan step applied", slog.String("plan", name), slog.Int("step", n), slog.String("serves", spec.Describe(n)))
		return time.Millisecond, nil // look again at once: NextAt, the next verdict check
	case errors.Is(err, ErrWindowClosed), errors.Is(err, ErrAwaitingApproval):
		msg := fmt.Sprintf("step %d (%s) waits: %v", n, spec.Describe(n), err)
		return c.WindowRetry, c.update(ctx, o, func(next *Status) string {
			if next.Message == msg {
				return ""
			}
			next.Message = msg
			return msg
		})
	case errors.Is(err, store.ErrConflict), ctx.Err() != nil:
		return 0, nil // changed meanwhile, or stopping: the next pass decides again
	case errors.As(err, &se):
		c.Logger.WarnContext(ctx, "flag plan step failed", slog.String("plan", name), slog.Int("step", n), slog.Any("error", err))
		return 0, c.update(ctx, o, func(next *Status) string {
			next.Phase, next.NextAt = Paused, nil
			next.Message = fmt.Sprintf("paused: step %d (%s) could not be applied: %v; fix it, then airlock flags plan resume %s --reason TEXT", n, spec.Describe(n), se.err, name)
			return next.Message
		})
	}
	return 0, err
}

// current reads the plan again inside tx and refuses (ErrConflict) when it
// changed since o was read.
func current(ctx context.Context, tx store.Tx, o *resource.Object) (*resource.Object, error) {
	cur, err := tx.Get(ctx, Kind, o.Metadata.Name)
	if err != nil {
		return nil, err
	}
	if cur.Metadata.Revision != o.Metadata.Revision {
		return nil, fmt.Errorf("flag plan %s changed while it was handled: %w", o.Metadata.Name, store.ErrConflict)
	}
	return cur.DeepCopy(), nil
}

// update changes the plan's status with fn, if nobody changed the plan
// since o was read. fn returns the event to record, or "" for none; the
// audit reason is that event (or a generic note).
func (c *Controller) update(ctx context.Context, o *resource.Object, fn func(*Status) string) error {
	_, st, err := Decode(o)
	if err != nil {
		return err
	}
	before, err := statusJSON(st)
	if err != nil {
		return err
	}
	event := fn(&st)
	if event != "" {
		st.record(Event{At: c.Now(), Step: st.Step, Actor: ActorName, Message: event})
	}
	after, err := statusJSON(st)
	if err != nil {
		return err
	}
	if before == after {
		return nil
	}
	reason := "plan " + o.Metadata.Name + ": " + event
	if event == "" {
		reason = "plan " + o.Metadata.Name + ": status"
	}
	err = c.Store.Write(ctx, store.Actor{Name: ActorName, Reason: reason}, func(tx store.Tx) error {
		cur, err := current(ctx, tx, o)
		if err != nil {
			return err
		}
		if err := cur.SetStatus(st); err != nil {
			return err
		}
		_, err = tx.Update(ctx, cur)
		return err
	})
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil // changed or deleted meanwhile: the next pass decides again
	}
	return err
}

// applyStep renders step n of the plan onto the flag, hands it to apply
// inside tx, and returns the plan's status after the step. Failures that
// pause a plan are *stepError; apply's errors are wrapped, so
// ErrWindowClosed stays visible to errors.Is.
func applyStep(ctx context.Context, tx store.Tx, apply ApplyFunc, name string, spec Spec, st Status, n int, now time.Time, actor string) (Status, error) {
	fo, err := tx.Get(ctx, flag.KindName, spec.Flag)
	if err != nil {
		return Status{}, &stepError{fmt.Errorf("read flag %s: %w", spec.Flag, err)}
	}
	var fs flag.Spec
	if err := fo.DecodeSpec(&fs); err != nil {
		return Status{}, &stepError{fmt.Errorf("decode %s: %w", fo.Ref(), err)}
	}
	next, err := Render(spec, n, fs)
	if err != nil {
		return Status{}, &stepError{err}
	}
	// Compile against the stored segments: a flag naming a missing segment
	// would not compile for evaluation, and would take its environment's
	// other flags down with it.
	segObjs, err := tx.List(ctx, flag.SegmentKindName, nil)
	if err != nil {
		return Status{}, fmt.Errorf("list segments: %w", err)
	}
	segs := make(map[string]flag.SegmentSpec, len(segObjs))
	for _, o := range segObjs {
		var g flag.SegmentSpec
		if err := o.DecodeSpec(&g); err != nil {
			return Status{}, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		segs[o.Metadata.Name] = g
	}
	if _, err := flag.Compile(next, segs); err != nil {
		return Status{}, &stepError{fmt.Errorf("step %d makes flag %s refer to what does not exist: %w", n, spec.Flag, err)}
	}
	note := fmt.Sprintf("plan %s: step %d (%s)", name, n, spec.Describe(n))
	if err := apply(ctx, tx, store.Actor{Name: actor, Reason: note}, name, spec.Flag, next, note); err != nil {
		if errors.Is(err, ErrWindowClosed) || errors.Is(err, store.ErrConflict) {
			return Status{}, err
		}
		return Status{}, &stepError{&flagApplyError{err}}
	}
	t := now
	st.Step, st.StepStartedAt = n, &t
	st.NextAt = nil
	if n == len(spec.Steps)-1 {
		st.Phase = Completed
		st.Message = fmt.Sprintf("completed: step %d (%s) applied; flag %s serves %q as the plan's last step says", n, spec.Describe(n), spec.Flag, spec.Variant)
	} else {
		st.Phase = Running
		st.Message = fmt.Sprintf("step %d of %d (%s) applied", n, len(spec.Steps)-1, spec.Describe(n))
		if every := spec.Every(); every > 0 {
			due := t.Add(every)
			st.NextAt = &due
		}
	}
	st.record(Event{At: t, Step: n, Actor: actor, Message: st.Message})
	return st, nil
}
