package verdict

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// InvalidError is a malformed decision (no reason, an unknown outcome).
// The API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// PolicyError is a decision airlock refuses (a verdict already decided,
// a judge deciding on their own verdict). The API maps it to 422.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

// Decision is what a person does with a verdict.
type Decision string

// Decisions. AcceptDecision records agreement with the verdict as the judge made
// it; OverrideDecision replaces its outcome.
const (
	AcceptDecision   Decision = "accept"
	OverrideDecision Decision = "override"
)

// DecideRequest is one person's decision on the verdict Name. Outcome is
// the new outcome of an override, and empty for an acceptance.
type DecideRequest struct {
	Name     string
	Decision Decision
	Reason   string
	Outcome  Outcome
	// Then, when set, runs in the decision's transaction with the verdict
	// as decided (the analysis carries out the verdict's action with it).
	// Its error undoes the decision.
	Then func(ctx context.Context, tx store.Tx, v Verdict, actor store.Actor) error
}

// Record creates the verdict object name for spec inside tx and queues the
// verdict.recorded marker for the sinks that want it, so the verdict and
// its marker are stored together or not at all.
func Record(ctx context.Context, tx store.Tx, name string, spec Spec) (*resource.Object, error) {
	o, err := New(name, spec)
	if err != nil {
		return nil, err
	}
	created, err := tx.Create(ctx, o)
	if err != nil {
		return nil, err
	}
	subject := fmt.Sprintf("%s in %s: verdict %s on %s %s", spec.App, spec.Environment, spec.Outcome, spec.Subject.Kind, spec.Subject.Name)
	if spec.Version != "" {
		subject = fmt.Sprintf("%s %s in %s: verdict %s", spec.App, spec.Version, spec.Environment, spec.Outcome)
	}
	if _, err := notify.Enqueue(ctx, tx, notify.Event{Type: notify.VerdictRecorded, Subject: subject, Message: spec.Summary,
		Data: map[string]string{"verdict": name, "app": spec.App, "environment": spec.Environment, "version": spec.Version,
			"phase": string(spec.Outcome), "subject": spec.Subject.Kind + "/" + spec.Subject.Name, "judge": spec.Judge},
	}); err != nil {
		return nil, fmt.Errorf("notify %s for verdict %s: %w", notify.VerdictRecorded, name, err)
	}
	return created, nil
}

// Target returns the environment of verdict name, for authorizing a
// decision on it.
func Target(ctx context.Context, r store.Reader, name string) (string, error) {
	o, err := r.Get(ctx, Kind, name)
	if err != nil {
		return "", fmt.Errorf("verdict %s: %w", name, err)
	}
	v, err := Decode(o)
	if err != nil {
		return "", err
	}
	return v.Spec.Environment, nil
}

// Decide records actor's acceptance or override of a verdict, audited as
// an update by actor with actor.Reason. Each verdict takes one decision.
// Refused, changing nothing but audited as refused-accept or
// refused-override: an empty reason, an override without a valid outcome
// or to the outcome the verdict already has, a verdict already accepted
// or overridden, or a decision by the verdict's own judge.
func Decide(ctx context.Context, st store.Store, actor store.Actor, req DecideRequest) (*resource.Object, error) {
	out, err := decide(ctx, st, actor, req)
	var pe *PolicyError
	var ie *InvalidError
	if err != nil && (errors.As(err, &pe) || errors.As(err, &ie) || errors.Is(err, store.ErrConflict)) {
		rec := store.Actor{Name: actor.Name, Reason: fmt.Sprintf("%s refused: %v", req.Decision, err)}
		if aerr := st.Write(ctx, rec, func(tx store.Tx) error {
			return tx.Record(ctx, "refused-"+string(req.Decision), Kind, req.Name, "")
		}); aerr != nil {
			return nil, fmt.Errorf("%w (and recording the refused attempt failed: %v)", err, aerr)
		}
	}
	return out, err
}

func decide(ctx context.Context, st store.Store, actor store.Actor, req DecideRequest) (*resource.Object, error) {
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Decision != AcceptDecision && req.Decision != OverrideDecision:
		return nil, &InvalidError{Msg: fmt.Sprintf("decision %q must be accept or override", req.Decision)}
	case req.Reason == "":
		return nil, &InvalidError{Msg: fmt.Sprintf("a reason is required to %s a verdict (--reason TEXT)", req.Decision)}
	case len(req.Reason) > MaxReason:
		return nil, &InvalidError{Msg: fmt.Sprintf("the reason is %d characters; at most %d are allowed", len(req.Reason), MaxReason)}
	case req.Decision == OverrideDecision && !req.Outcome.Valid():
		return nil, &InvalidError{Msg: fmt.Sprintf("an override names the outcome that counts instead: pass, fail or inconclusive (--outcome), not %q", req.Outcome)}
	case req.Decision == AcceptDecision && req.Outcome != "":
		return nil, &InvalidError{Msg: "accept keeps the verdict's outcome; to change it, override it with --outcome"}
	}
	var out *resource.Object
	err := st.Write(ctx, actor, func(tx store.Tx) error {
		o, err := tx.Get(ctx, Kind, req.Name)
		if err != nil {
			return fmt.Errorf("verdict %s: %w", req.Name, err)
		}
		v, err := Decode(o)
		if err != nil {
			return err
		}
		switch {
		case v.Status.Override != nil:
			ov := v.Status.Override
			return &PolicyError{Msg: fmt.Sprintf("verdict %s was already overridden to %s by %s at %s; a verdict takes one decision", req.Name, ov.Outcome, ov.By, ov.At.UTC().Format("2006-01-02 15:04:05Z"))}
		case v.Status.Accepted != nil:
			ac := v.Status.Accepted
			return &PolicyError{Msg: fmt.Sprintf("verdict %s was already accepted by %s at %s; a verdict takes one decision", req.Name, ac.By, ac.At.UTC().Format("2006-01-02 15:04:05Z"))}
		case actor.Name == v.Spec.Judge:
			return &PolicyError{Msg: fmt.Sprintf("%s judged verdict %s and may not %s it; another person must", actor.Name, req.Name, req.Decision)}
		case req.Decision == OverrideDecision && req.Outcome == v.Spec.Outcome:
			return &PolicyError{Msg: fmt.Sprintf("verdict %s is already %s; to agree with it, accept it (airlock verdict accept %s --reason TEXT)", req.Name, v.Spec.Outcome, req.Name)}
		}
		next := o.DeepCopy()
		now := tx.Now()
		if req.Decision == AcceptDecision {
			v.Status.Accepted = &Acceptance{By: actor.Name, Reason: req.Reason, At: now}
			err = next.SetStatus(v.Status)
		} else {
			err = SetOverride(next, Override{By: actor.Name, Reason: req.Reason, At: now, Outcome: req.Outcome})
		}
		if err != nil {
			return err
		}
		if out, err = tx.Update(ctx, next); err != nil || req.Then == nil {
			return err
		}
		decided, err := Decode(out)
		if err != nil {
			return err
		}
		return req.Then(ctx, tx, decided, actor)
	})
	return out, err
}

// SignalCount is how often verdicts that carried one signal were
// overridden against it: Overridden of Verdicts, and Rate, their ratio. A
// high rate on a signal that failed verdicts is a false-alarm rate.
type SignalCount struct {
	Signal     string  `json:"signal"`
	Verdicts   int     `json:"verdicts"`
	Overridden int     `json:"overridden"`
	Rate       float64 `json:"rate"`
}

// OverrideCounts counts, per signal name, the verdicts that carried the
// signal and those a person overrode to an outcome other than the
// signal's own (the person disagreed with that signal). A verdict without
// per-signal results counts as one signal named after its judge, with the
// verdict's outcome. app and env, when not empty, select the verdicts of
// one application or environment. The counts are made from the recorded
// overrides, so they agree with the audit log. The result is sorted by
// rate, highest first, then by name.
func OverrideCounts(ctx context.Context, r store.Reader, app, env string) ([]SignalCount, error) {
	var sel resource.Selector
	if app != "" {
		sel = append(sel, resource.Requirement{Key: AppLabel, Op: resource.Equals, Values: []string{app}})
	}
	if env != "" {
		sel = append(sel, resource.Requirement{Key: EnvironmentLabel, Op: resource.Equals, Values: []string{env}})
	}
	objs, err := r.List(ctx, Kind, sel)
	if err != nil {
		return nil, fmt.Errorf("list verdicts: %w", err)
	}
	counts := map[string]*SignalCount{}
	for _, o := range objs {
		v, err := Decode(o)
		if err != nil {
			return nil, err
		}
		signals := v.Spec.Signals
		if len(signals) == 0 {
			signals = []Signal{{Name: v.Spec.Judge, Outcome: v.Spec.Outcome}}
		}
		for _, sg := range signals {
			c := counts[sg.Name]
			if c == nil {
				c = &SignalCount{Signal: sg.Name}
				counts[sg.Name] = c
			}
			c.Verdicts++
			if ov := v.Status.Override; ov != nil && ov.Outcome != sg.Outcome {
				c.Overridden++
			}
		}
	}
	out := make([]SignalCount, 0, len(counts))
	for _, c := range counts {
		c.Rate = float64(c.Overridden) / float64(c.Verdicts)
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b SignalCount) int {
		return cmp.Or(cmp.Compare(b.Rate, a.Rate), cmp.Compare(a.Signal, b.Signal))
	})
	return out, nil
}
