package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// MaxReason is the longest reason a person may give.
const MaxReason = 2000

// InvalidError is a malformed request (no reason, an unknown command). The
// API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// PolicyError is a request airlock refuses as the plan stands (advancing a
// paused or completed plan, resuming one that is not paused). The API maps
// it to 422. Err, when set, is the cause.
type PolicyError struct {
	Msg string
	Err error
}

func (e *PolicyError) Error() string { return e.Msg }
func (e *PolicyError) Unwrap() error { return e.Err }

// Commands people give a plan.
const (
	CmdAdvance = "advance"
	CmdPause   = "pause"
	CmdResume  = "resume"
	CmdCancel  = "cancel"
)

// Service is what people do with plans: advance, pause, resume and cancel.
// Each command is one store write, audited with the person as actor and
// their reason.
type Service struct {
	Store store.Store
	// Apply writes the flag when Advance applies a step.
	Apply ApplyFunc
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Wake, when set, is called after a command so the controller looks at
	// the plan at once (e.g. Controller.Wake).
	Wake func()
}

// NewService returns a Service over st; wake may be nil.
func NewService(st store.Store, apply ApplyFunc, wake func()) *Service {
	return &Service{Store: st, Apply: apply, Wake: wake}
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Do runs command (advance, pause, resume or cancel) on plan name.
func (s *Service) Do(ctx context.Context, actor store.Actor, name, command, reason string) (*resource.Object, error) {
	switch command {
	case CmdAdvance:
		return s.Advance(ctx, actor, name, reason)
	case CmdPause:
		return s.Pause(ctx, actor, name, reason)
	case CmdResume:
		return s.Resume(ctx, actor, name, reason)
	case CmdCancel:
		return s.Cancel(ctx, actor, name, reason)
	}
	return nil, &InvalidError{Msg: fmt.Sprintf("unknown flag plan command %q; use advance, pause, resume or cancel", command)}
}

// Advance applies the plan's next step now, whatever its schedule: the
// flag changes (through Apply) and the plan records the step in one
// transaction. A Pending plan starts its first step. It refuses a plan that
// is paused (resume it first), completed or cancelled. Apply's errors are
// returned as they are (a closed deployment window wraps ErrWindowClosed).
func (s *Service) Advance(ctx context.Context, actor store.Actor, name, reason string) (*resource.Object, error) {
	return s.command(ctx, actor, name, CmdAdvance, reason, func(tx store.Tx, spec Spec, st Status, now time.Time) (Status, error) {
		n := st.Step + 1
		switch st.PhaseOf() {
		case Pending:
			n = 0
		case Running:
		case Paused:
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s is paused (%s); resume it first (airlock flags plan resume %s --reason TEXT)", name, st.Message, name)}
		default:
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s is %s: there is no step to advance to", name, st.PhaseOf())}
		}
		if n >= len(spec.Steps) {
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s is at its last step %d", name, st.Step)}
		}
		next, err := applyStep(ctx, tx, s.Apply, name, spec, st, n, now, actor.Name)
		var (
			fe *flagApplyError
			se *stepError
		)
		switch {
		case err == nil:
		case errors.Is(err, ErrWindowClosed):
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s: step %d (%s) waits: %v; advance again when a deployment window is open", name, n, spec.Describe(n), err), Err: err}
		case errors.As(err, &fe):
			return st, fe.err
		case errors.As(err, &se):
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s: step %d (%s) cannot be applied: %v", name, n, spec.Describe(n), se.err), Err: se.err}
		default:
			return st, err
		}
		next.History[len(next.History)-1].Message += " by hand: " + reason
		return next, nil
	})
}

// flagApplyError marks an error that came from the ApplyFunc (change
// control refusing, say), so Advance returns it unchanged.
type flagApplyError struct{ err error }

func (e *flagApplyError) Error() string { return e.err.Error() }
func (e *flagApplyError) Unwrap() error { return e.err }

// Pause stops a Pending or Running plan where it is: the flag keeps
// serving the current step until the plan is resumed.
func (s *Service) Pause(ctx context.Context, actor store.Actor, name, reason string) (*resource.Object, error) {
	return s.command(ctx, actor, name, CmdPause, reason, func(_ store.Tx, spec Spec, st Status, now time.Time) (Status, error) {
		switch st.PhaseOf() {
		case Pending, Running:
		default:
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s is %s; only a pending or running plan can be paused", name, st.PhaseOf())}
		}
		st.Phase, st.NextAt = Paused, nil
		st.Message = fmt.Sprintf("paused by %s: %s", actor.Name, reason)
		st.record(Event{At: now, Step: st.Step, Actor: actor.Name, Message: st.Message})
		return st, nil
	})
}

// Resume goes on from a pause. Verdicts count again from the resume (a
// fail verdict older than it does not pause the plan again) and the next
// automatic advance is due a full Advance.Every after it. A plan paused
// before its first step was applied becomes Pending and starts at once.
func (s *Service) Resume(ctx context.Context, actor store.Actor, name, reason string) (*resource.Object, error) {
	obj, err := s.command(ctx, actor, name, CmdResume, reason, func(_ store.Tx, spec Spec, st Status, now time.Time) (Status, error) {
		if st.PhaseOf() != Paused {
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s is %s, not paused", name, st.PhaseOf())}
		}
		t := now
		st.ResumedAt = &t
		st.Phase, st.NextAt = Running, nil
		if st.StepStartedAt == nil {
			st.Phase = Pending
		} else if every := spec.Every(); every > 0 {
			due := t.Add(every)
			st.NextAt = &due
		}
		st.Message = fmt.Sprintf("resumed by %s: %s", actor.Name, reason)
		st.record(Event{At: now, Step: st.Step, Actor: actor.Name, Message: st.Message})
		return st, nil
	})
	if err == nil && s.Wake != nil {
		s.Wake()
	}
	return obj, err
}

// Cancel ends a plan for good. The flag is left as it is, serving the last
// step applied: change the flag itself (or apply a new plan) to go on.
func (s *Service) Cancel(ctx context.Context, actor store.Actor, name, reason string) (*resource.Object, error) {
	return s.command(ctx, actor, name, CmdCancel, reason, func(_ store.Tx, spec Spec, st Status, now time.Time) (Status, error) {
		if st.PhaseOf().Final() {
			return st, &PolicyError{Msg: fmt.Sprintf("flag plan %s is already %s", name, st.PhaseOf())}
		}
		st.Phase, st.NextAt = Cancelled, nil
		st.Message = fmt.Sprintf("cancelled by %s: %s; the flag stays as the plan left it", actor.Name, reason)
		st.record(Event{At: now, Step: st.Step, Actor: actor.Name, Message: st.Message})
		return st, nil
	})
}

func (s *Service) command(ctx context.Context, actor store.Actor, name, cmd, reason string, fn func(tx store.Tx, spec Spec, st Status, now time.Time) (Status, error)) (*resource.Object, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return nil, &InvalidError{Msg: fmt.Sprintf("%s needs a reason (--reason TEXT)", cmd)}
	case len(reason) > MaxReason:
		return nil, &InvalidError{Msg: fmt.Sprintf("the reason is %d characters; at most %d are allowed", len(reason), MaxReason)}
	}
	actor.Reason = fmt.Sprintf("plan %s %s: %s", name, cmd, reason)
	var out *resource.Object
	err := s.Store.Write(ctx, actor, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, Kind, name)
		if err != nil {
			return err
		}
		spec, st, err := Decode(cur)
		if err != nil {
			return err
		}
		next, err := fn(tx, spec, st, s.now())
		if err != nil {
			return err
		}
		upd := cur.DeepCopy()
		if err := upd.SetStatus(next); err != nil {
			return err
		}
		out, err = tx.Update(ctx, upd)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Environment returns the environment of the flag plan name releases (for
// authorization): the flag's spec.environment, or, when the flag does not
// exist, the last dot-separated part of its name (APP.KEY.ENV).
func (s *Service) Environment(ctx context.Context, name string) (string, error) {
	o, err := s.Store.Get(ctx, Kind, name)
	if err != nil {
		return "", err
	}
	spec, _, err := Decode(o)
	if err != nil {
		return "", err
	}
	fo, err := s.Store.Get(ctx, flag.KindName, spec.Flag)
	if errors.Is(err, store.ErrNotFound) {
		return spec.Flag[strings.LastIndexByte(spec.Flag, '.')+1:], nil
	}
	if err != nil {
		return "", err
	}
	var fs flag.Spec
	if err := fo.DecodeSpec(&fs); err != nil {
		return "", fmt.Errorf("decode %s: %w", fo.Ref(), err)
	}
	return fs.Environment, nil
}

func statusJSON(st Status) (string, error) {
	b, err := json.Marshal(st)
	return string(b), err
}
