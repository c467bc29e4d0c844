package plan_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/verdict"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a store holding shop's new-checkout flag in prod and a plan
// releasing it, a controller and a service over it, and an ApplyFunc that
// stores the flag (or fails as told).
type world struct {
	t     *testing.T
	st    store.Store
	clock *clock
	ctl   *plan.Controller
	svc   *plan.Service

	mu       sync.Mutex
	applyErr error    // what the ApplyFunc returns instead of applying
	calls    int      // how often it was called
	notes    []string // what it applied
}

const planName = "shop.new-checkout.prod"

func newWorld(t *testing.T, p plan.Spec) *world {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "airlock.db"), sqlstore.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, clock: c}
	w.ctl = &plan.Controller{Store: st, Apply: w.apply, Now: c.Now, WindowRetry: 2 * time.Minute}
	w.svc = &plan.Service{Store: st, Apply: w.apply, Now: c.Now, Wake: w.ctl.Wake}
	f := checkoutFlag()
	f.Targeting, f.Fractional = nil, nil
	w.create(flag.KindName, planName, f)
	w.create(flag.SegmentKindName, "internal-users", segments["internal-users"])
	w.create(plan.Kind, planName, p)
	return w
}

func (w *world) create(kind, name string, spec any) {
	w.t.Helper()
	o := &resource.Object{APIVersion: resource.APIVersion, Kind: kind, Metadata: resource.Metadata{Name: name}}
	if err := o.SetSpec(spec); err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.Write(context.Background(), store.Actor{Name: "ana"}, func(tx store.Tx) error {
		_, err := tx.Create(context.Background(), o)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
}

// apply is the tests' ApplyFunc: it stores the flag's spec with tx.Update.
func (w *world) apply(ctx context.Context, tx store.Tx, actor store.Actor, planName, name string, next flag.Spec, note string) error {
	w.mu.Lock()
	err := w.applyErr
	w.calls++
	w.mu.Unlock()
	if err != nil {
		return err
	}
	o, err := tx.Get(ctx, flag.KindName, name)
	if err != nil {
		return err
	}
	if err := o.SetSpec(next); err != nil {
		return err
	}
	if _, err := tx.Update(ctx, o); err != nil {
		return err
	}
	w.mu.Lock()
	w.notes = append(w.notes, actor.Name+" "+planName+" "+note)
	w.mu.Unlock()
	return nil
}

func (w *world) failApply(err error) {
	w.mu.Lock()
	w.applyErr = err
	w.mu.Unlock()
}

func (w *world) run() time.Duration {
	w.t.Helper()
	d, err := w.ctl.RunOnce(context.Background())
	if err != nil {
		w.t.Fatalf("RunOnce: %v", err)
	}
	return d
}

func (w *world) status() plan.Status {
	w.t.Helper()
	o, err := w.st.Get(context.Background(), plan.Kind, planName)
	if err != nil {
		w.t.Fatal(err)
	}
	_, st, err := plan.Decode(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func (w *world) flag() flag.Spec {
	w.t.Helper()
	o, err := w.st.Get(context.Background(), flag.KindName, planName)
	if err != nil {
		w.t.Fatal(err)
	}
	var f flag.Spec
	if err := o.DecodeSpec(&f); err != nil {
		w.t.Fatal(err)
	}
	return f
}

// percent returns the share the flag's split gives the plan's variant, or
// -1 without a split.
func (w *world) percent() float64 {
	f := w.flag()
	if f.Fractional == nil {
		return -1
	}
	return f.Fractional[0].Weight
}

func (w *world) want(phase plan.Phase, step int) {
	w.t.Helper()
	st := w.status()
	if st.PhaseOf() != phase || st.Step != step {
		w.t.Fatalf("plan is %s at step %d (%s), want %s at step %d", st.PhaseOf(), st.Step, st.Message, phase, step)
	}
}

func (w *world) verdict(name, env string, o verdict.Outcome) {
	w.t.Helper()
	obj, err := verdict.New(name, verdict.Spec{App: "shop", Environment: env, Subject: verdict.Subject{Kind: plan.Kind, Name: planName},
		Outcome: o, Summary: "checkout error rate 4.2% above 1%", Judge: "analysis/error-rate"})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.Write(context.Background(), store.Actor{Name: "system:analysis"}, func(tx store.Tx) error {
		_, err := tx.Create(context.Background(), obj)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
}

func timedPlan() plan.Spec {
	return plan.Spec{Flag: planName, Variant: "on", Steps: []plan.Step{
		{Segments: []string{"internal-users"}}, {Percent: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100},
	}, Advance: plan.Advance{Every: "24h"}}
}

func manualPlan() plan.Spec {
	p := timedPlan()
	p.Advance.Every = ""
	return p
}

func TestPendingStartsStepZero(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	w.want(plan.Pending, 0)
	w.run()
	w.want(plan.Running, 0)
	f := w.flag()
	if !f.Enabled || len(f.Targeting) != 1 || f.Targeting[0].Name != plan.RuleName || f.Fractional != nil {
		t.Errorf("flag after step 0: enabled %v, rules %+v, split %+v; want enabled, the plan rule only, no split", f.Enabled, f.Targeting, f.Fractional)
	}
	st := w.status()
	if st.StepStartedAt == nil || !st.StepStartedAt.Equal(w.clock.Now()) {
		t.Errorf("stepStartedAt = %v, want %v", st.StepStartedAt, w.clock.Now())
	}
	if st.NextAt == nil || !st.NextAt.Equal(w.clock.Now().Add(24*time.Hour)) {
		t.Errorf("nextAt = %v, want a day later", st.NextAt)
	}
	if len(st.History) != 1 || st.History[0].Actor != plan.ActorName || st.History[0].Step != 0 {
		t.Errorf("history = %+v, want one event of %s at step 0", st.History, plan.ActorName)
	}
	if len(w.notes) != 1 || w.notes[0] != plan.ActorName+" "+planName+" plan "+planName+": step 0 (segments internal-users)" {
		t.Errorf("apply notes = %q", w.notes)
	}
	// The plan's status and the flag changed in one transaction, audited
	// as the controller with the step as the reason.
	var entries []audit.Entry
	if err := w.st.Audit().Entries(context.Background(), store.AuditFilter{Actor: plan.ActorName}, func(e audit.Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Kind != flag.KindName || entries[1].Kind != plan.Kind || entries[0].Reason != entries[1].Reason ||
		!strings.HasPrefix(entries[1].Reason, "plan "+planName+": step 0") {
		t.Errorf("audit entries of %s = %+v, want the flag and the plan with one reason", plan.ActorName, entries)
	}
	w.run()
	w.want(plan.Running, 0)
}

func TestTimedAdvanceToCompletion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	w.run()
	w.clock.Add(23 * time.Hour)
	if d := w.run(); d <= 0 || d > plan.DefaultIdle {
		t.Errorf("RunOnce asks to run again in %v, want within the idle interval", d)
	}
	w.want(plan.Running, 0)
	for step, pct := range []float64{1, 10, 50} {
		w.clock.Add(time.Hour)
		if step > 0 {
			w.clock.Add(23 * time.Hour)
		}
		w.run()
		w.want(plan.Running, step+1)
		if got := w.percent(); got != pct {
			t.Fatalf("step %d: the flag serves on to %v%%, want %v%%", step+1, got, pct)
		}
		if st := w.status(); st.NextAt == nil || !st.NextAt.Equal(w.clock.Now().Add(24*time.Hour)) {
			t.Errorf("step %d: nextAt = %v, want a day later", step+1, st.NextAt)
		}
	}
	w.clock.Add(24 * time.Hour)
	w.run()
	w.want(plan.Completed, 4)
	if got := w.percent(); got != 100 {
		t.Errorf("completed: the flag serves on to %v%%, want 100%%", got)
	}
	if st := w.status(); st.NextAt != nil || len(st.History) != 5 {
		t.Errorf("completed: nextAt %v, %d events; want none and 5", st.NextAt, len(st.History))
	}
	w.clock.Add(72 * time.Hour)
	w.run()
	w.want(plan.Completed, 4)
	if len(w.notes) != 5 {
		t.Errorf("%d flag changes, want 5 (one per step)", len(w.notes))
	}
}

func TestManualAdvance(t *testing.T) {
	t.Parallel()
	w := newWorld(t, manualPlan())
	ctx := context.Background()
	w.run()
	w.clock.Add(100 * time.Hour)
	w.run()
	w.want(plan.Running, 0)
	if st := w.status(); st.NextAt != nil {
		t.Errorf("a plan advanced by hand has nextAt %v", st.NextAt)
	}
	if _, err := w.svc.Advance(ctx, store.Actor{Name: "ana"}, planName, " "); !errors.As(err, new(*plan.InvalidError)) {
		t.Fatalf("Advance without a reason = %v, want an InvalidError", err)
	}
	o, err := w.svc.Advance(ctx, store.Actor{Name: "ana"}, planName, "internal users are happy")
	if err != nil {
		t.Fatal(err)
	}
	if o.Metadata.Name != planName {
		t.Errorf("Advance returned %s", o.Ref())
	}
	w.want(plan.Running, 1)
	if got := w.percent(); got != 1 {
		t.Errorf("after advance: %v%%, want 1%%", got)
	}
	if got := w.notes[len(w.notes)-1]; !strings.HasPrefix(got, "ana "+planName+" ") {
		t.Errorf("apply got %q, want ana as the actor and the plan's name", got)
	}
	st := w.status()
	last := st.History[len(st.History)-1]
	if last.Actor != "ana" || !strings.Contains(last.Message, "internal users are happy") {
		t.Errorf("last event %+v, want ana's advance with her reason", last)
	}
	for range 3 {
		if _, err := w.svc.Advance(ctx, store.Actor{Name: "ana"}, planName, "go on"); err != nil {
			t.Fatal(err)
		}
	}
	w.want(plan.Completed, 4)
	if _, err := w.svc.Advance(ctx, store.Actor{Name: "ana"}, planName, "more"); !errors.As(err, new(*plan.PolicyError)) {
		t.Errorf("Advance of a completed plan = %v, want a PolicyError", err)
	}
	if _, err := w.svc.Advance(ctx, store.Actor{Name: "ana"}, "no-such-plan", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Advance of a missing plan = %v, want ErrNotFound", err)
	}
}

func TestBadVerdictPausesAndResumeContinues(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	ctx := context.Background()
	w.verdict("before-the-plan", "prod", verdict.Fail)
	w.clock.Add(time.Minute)
	w.run()
	w.want(plan.Running, 0) // a fail verdict older than the step does not count
	w.clock.Add(24 * time.Hour)
	w.run()
	w.want(plan.Running, 1)

	w.clock.Add(time.Hour)
	w.verdict("staging-fails", "staging", verdict.Fail)
	w.verdict("prod-passes", "prod", verdict.Pass)
	w.run()
	w.want(plan.Running, 1)

	w.verdict("prod-fails", "prod", verdict.Fail)
	w.run()
	w.want(plan.Paused, 1)
	st := w.status()
	if !strings.Contains(st.Message, "prod-fails") || !strings.Contains(st.Message, "checkout error rate 4.2% above 1%") || st.NextAt != nil {
		t.Errorf("paused with message %q and nextAt %v; want the verdict's name and summary, no next advance", st.Message, st.NextAt)
	}
	w.clock.Add(72 * time.Hour)
	w.run()
	w.want(plan.Paused, 1)
	if got := w.percent(); got != 1 {
		t.Errorf("paused: %v%%, want 1%% still", got)
	}
	if _, err := w.svc.Advance(ctx, store.Actor{Name: "ana"}, planName, "push on"); !errors.As(err, new(*plan.PolicyError)) {
		t.Errorf("Advance of a paused plan = %v, want a PolicyError", err)
	}
	if _, err := w.svc.Pause(ctx, store.Actor{Name: "ana"}, planName, "again"); !errors.As(err, new(*plan.PolicyError)) {
		t.Errorf("Pause of a paused plan = %v, want a PolicyError", err)
	}

	if _, err := w.svc.Resume(ctx, store.Actor{Name: "ana"}, planName, "the errors came from a bad deploy of cart"); err != nil {
		t.Fatal(err)
	}
	w.want(plan.Running, 1)
	w.run()
	w.want(plan.Running, 1) // the verdict older than the resume no longer pauses
	w.clock.Add(23 * time.Hour)
	w.run()
	w.want(plan.Running, 1) // a full day after the resume, not after the step
	w.clock.Add(time.Hour)
	w.run()
	w.want(plan.Running, 2)

	w.clock.Add(time.Minute)
	w.verdict("prod-fails-again", "prod", verdict.Fail)
	w.run()
	w.want(plan.Paused, 2)
}

func TestVerdictsIgnoredWhenPauseOnVerdictIsFalse(t *testing.T) {
	t.Parallel()
	p := timedPlan()
	no := false
	p.PauseOnVerdict = &no
	w := newWorld(t, p)
	w.run()
	w.clock.Add(time.Minute)
	w.verdict("prod-fails", "prod", verdict.Fail)
	w.run()
	w.want(plan.Running, 0)
}

func TestWindowClosedWaitsWithoutPausing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	w.failApply(fmt.Errorf("environment prod: %w until 2026-11-30 08:00 UTC", plan.ErrWindowClosed))
	w.run()
	w.want(plan.Pending, 0)
	st := w.status()
	if !strings.Contains(st.Message, "waits: environment prod: deployment window closed") || len(st.History) != 1 {
		t.Errorf("message %q, %d events; want a wait message recorded once", st.Message, len(st.History))
	}
	if f := w.flag(); f.Enabled || f.Targeting != nil {
		t.Errorf("the flag changed while the window was closed: %+v", f)
	}
	w.clock.Add(time.Minute)
	w.run()
	if w.calls != 1 {
		t.Errorf("apply called %d times within the window retry (2m), want once", w.calls)
	}
	w.clock.Add(time.Minute)
	w.run()
	if w.calls != 2 {
		t.Errorf("apply called %d times after the window retry, want twice", w.calls)
	}
	if st := w.status(); len(st.History) != 1 {
		t.Errorf("%d events after a second closed window, want still 1", len(st.History))
	}
	w.failApply(nil)
	w.clock.Add(2 * time.Minute)
	w.run()
	w.want(plan.Running, 0)

	// A closed window at a timed advance waits too.
	w.failApply(fmt.Errorf("%w", plan.ErrWindowClosed))
	w.clock.Add(24 * time.Hour)
	w.run()
	w.want(plan.Running, 0)
	w.failApply(nil)
	w.clock.Add(2 * time.Minute)
	w.run()
	w.want(plan.Running, 1)
}

func TestApplyErrorPauses(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	w.failApply(errors.New("change control: production flags need an approved FlagChange"))
	w.run()
	w.want(plan.Paused, 0)
	if st := w.status(); !strings.Contains(st.Message, "production flags need an approved FlagChange") || st.StepStartedAt != nil {
		t.Errorf("paused with %q, stepStartedAt %v; want the apply error, no step started", st.Message, st.StepStartedAt)
	}
	w.failApply(nil)
	if _, err := w.svc.Resume(context.Background(), store.Actor{Name: "ana"}, planName, "approved now"); err != nil {
		t.Fatal(err)
	}
	w.want(plan.Pending, 0) // never started: it starts again
	w.run()
	w.want(plan.Running, 0)
}

func TestMissingVariantPauses(t *testing.T) {
	t.Parallel()
	p := timedPlan()
	p.Variant = "off" // the flag's default
	w := newWorld(t, p)
	w.run()
	w.want(plan.Paused, 0)
	if st := w.status(); !strings.Contains(st.Message, "default variant") {
		t.Errorf("paused with %q, want the reason", st.Message)
	}
}

func TestMissingSegmentPauses(t *testing.T) {
	t.Parallel()
	p := timedPlan()
	p.Steps[0].Segments = []string{"internal-users", "beta-testers"}
	w := newWorld(t, p)
	w.run()
	w.want(plan.Paused, 0)
	if st := w.status(); !strings.Contains(st.Message, "beta-testers") {
		t.Errorf("paused with %q, want the missing segment named", st.Message)
	}
	if f := w.flag(); f.Enabled || f.Targeting != nil {
		t.Errorf("the flag changed to name a missing segment: %+v", f)
	}
}

func TestPauseResumeCancel(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	ctx := context.Background()
	ana := store.Actor{Name: "ana"}
	w.run()
	w.clock.Add(24 * time.Hour)
	w.run()
	w.want(plan.Running, 1)
	if _, err := w.svc.Resume(ctx, ana, planName, "go"); !errors.As(err, new(*plan.PolicyError)) {
		t.Errorf("Resume of a running plan = %v, want a PolicyError", err)
	}
	if _, err := w.svc.Pause(ctx, ana, planName, "black friday"); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(48 * time.Hour)
	w.run()
	w.want(plan.Paused, 1)
	if _, err := w.svc.Cancel(ctx, ana, planName, "we ship another checkout"); err != nil {
		t.Fatal(err)
	}
	w.want(plan.Cancelled, 1)
	w.clock.Add(48 * time.Hour)
	w.run()
	w.want(plan.Cancelled, 1)
	if got := w.percent(); got != 1 {
		t.Errorf("cancelled: the flag serves %v%%, want the 1%% the plan left", got)
	}
	for _, cmd := range []string{plan.CmdAdvance, plan.CmdPause, plan.CmdResume, plan.CmdCancel} {
		if _, err := w.svc.Do(ctx, ana, planName, cmd, "x"); !errors.As(err, new(*plan.PolicyError)) {
			t.Errorf("%s of a cancelled plan = %v, want a PolicyError", cmd, err)
		}
	}
	if _, err := w.svc.Do(ctx, ana, planName, "restart", "x"); !errors.As(err, new(*plan.InvalidError)) {
		t.Errorf("an unknown command = %v, want an InvalidError", err)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	t.Parallel()
	w := newWorld(t, manualPlan())
	ctx := context.Background()
	w.run()
	for i := range 30 {
		if _, err := w.svc.Pause(ctx, store.Actor{Name: "ana"}, planName, fmt.Sprintf("pause %d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Resume(ctx, store.Actor{Name: "ana"}, planName, fmt.Sprintf("resume %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	st := w.status()
	if len(st.History) != plan.MaxHistory {
		t.Fatalf("%d events, want the latest %d", len(st.History), plan.MaxHistory)
	}
	if last := st.History[len(st.History)-1]; !strings.Contains(last.Message, "resume 29") {
		t.Errorf("last event %q, want the latest resume", last.Message)
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	w := newWorld(t, timedPlan())
	env, err := w.svc.Environment(context.Background(), planName)
	if err != nil || env != "prod" {
		t.Errorf("Environment = %q, %v; want prod", env, err)
	}
}

// TestLoopWakes runs the loop with an idle interval of an hour: a plan
// applied later starts only because Wake is called.
func TestLoopWakes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, manualPlan())
	w.ctl.Idle = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.ctl.Loop(ctx) }()
	defer func() { cancel(); <-done }()
	phaseOf := func(name string) plan.Phase {
		o, err := w.st.Get(context.Background(), plan.Kind, name)
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := plan.Decode(o)
		if err != nil {
			t.Fatal(err)
		}
		return st.PhaseOf()
	}
	waitRunning := func(name string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for phaseOf(name) != plan.Running {
			if time.Now().After(deadline) {
				t.Fatalf("plan %s is %s, not Running, 10s after the loop was woken", name, phaseOf(name))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitRunning(planName)
	f := checkoutFlag()
	f.Key, f.Targeting, f.Fractional = "dark-mode", nil, nil
	w.create(flag.KindName, "shop.dark-mode.prod", f)
	p := manualPlan()
	p.Flag = "shop.dark-mode.prod"
	w.create(plan.Kind, "shop.dark-mode.prod", p)
	w.ctl.Wake()
	waitRunning("shop.dark-mode.prod")
}
