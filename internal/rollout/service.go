package rollout

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Labels a rollout carries: app, environment, release, phase, and current
// on the newest rollout of an application in an environment (the one that
// decides what runs there).
const (
	PhaseLabel   = "phase"
	CurrentLabel = "current"
)

// PolicyError is a request airlock refuses (a rollout already running,
// nothing to roll back to). The API maps it to 422.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

// InvalidError is a malformed request. The API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// ErrAlreadyServing is Start's answer when the version asked for already
// serves: there is nothing to roll out.
var ErrAlreadyServing = errors.New("already serves")

// StartRequest starts a rollout of a release into an environment.
type StartRequest struct {
	App         string
	Environment string
	Candidate   Version
	Settings    application.EnvSettings // the application's settings in the environment
	Promotion   string
}

// Current returns the current rollout of app in env (store.ErrNotFound
// when none).
func Current(ctx context.Context, r store.Reader, app, env string) (*resource.Object, error) {
	objs, err := r.List(ctx, Kind, resource.Selector{
		{Key: "app", Op: resource.Equals, Values: []string{app}},
		{Key: "environment", Op: resource.Equals, Values: []string{env}},
		{Key: CurrentLabel, Op: resource.Equals, Values: []string{"true"}},
	})
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no rollout of %s in %s: %w", app, env, store.ErrNotFound)
	}
	return slices.MaxFunc(objs, func(a, b *resource.Object) int { return cmp.Compare(a.Metadata.Revision, b.Metadata.Revision) }), nil
}

// Decode returns a rollout object's spec and status.
func Decode(o *resource.Object) (Spec, Status, error) {
	var spec Spec
	var st Status
	if err := o.DecodeSpec(&spec); err != nil {
		return spec, st, err
	}
	if err := o.DecodeStatus(&st); err != nil {
		return spec, st, err
	}
	return spec, st, nil
}

// Serving returns the version that serves app in env according to its
// current rollout (nil when nothing does), the runtime it was deployed
// with, and that rollout.
func Serving(ctx context.Context, r store.Reader, app, env string) (*Version, *Runtime, *resource.Object, error) {
	cur, err := Current(ctx, r, app, env)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	spec, st, err := Decode(cur)
	if err != nil {
		return nil, nil, nil, err
	}
	stableRT := spec.StableRuntime
	if stableRT == nil {
		stableRT = &spec.Runtime
	}
	switch st.Phase {
	case Succeeded:
		return &spec.Candidate, &spec.Runtime, cur, nil
	case Progressing, Paused, "":
		return spec.Stable, stableRT, cur, &PolicyError{Msg: fmt.Sprintf("rollout %s of %s %s in %s is still %s; wait for it, or airlock rollout abort %s --env %s", cur.Metadata.Name, app, spec.Candidate.Version, env, cmp.Or(st.Phase, Progressing), app, env)}
	default:
		return spec.Stable, stableRT, cur, nil
	}
}

// Start records a new rollout inside tx and makes it the current one of
// its application and environment. The reconciler runs it.
func Start(ctx context.Context, tx store.Tx, req StartRequest) (*resource.Object, error) {
	stable, stableRT, prev, err := Serving(ctx, tx, req.App, req.Environment)
	if err != nil {
		return nil, err
	}
	if stable != nil && stable.Digest == req.Candidate.Digest && stable.Version == req.Candidate.Version {
		return nil, fmt.Errorf("%s %s in %s: %w", req.App, req.Candidate.Version, req.Environment, ErrAlreadyServing)
	}
	return create(ctx, tx, prev, Spec{
		App: req.App, Environment: req.Environment, Candidate: req.Candidate, Stable: stable,
		Replicas: req.Settings.ReplicaCount(), Strategy: req.Settings.StrategyOrDefault(),
		Runtime: runtimeOf(req.Settings), StableRuntime: stableRT, Promotion: req.Promotion,
		Analysis: req.Settings.Analysis,
	})
}

func runtimeOf(s application.EnvSettings) Runtime {
	rt := Runtime{Listen: s.Listen, HealthPath: s.HealthPath, Env: s.Env, SecretEnv: s.SecretEnv, Args: s.Args, Image: s.Image, KeepDrift: s.KeepDrift}
	if rt.HealthPath == "" {
		rt.HealthPath = application.DefaultHealthPath
	}
	if s.Strategy != nil {
		rt.SmokePath = s.Strategy.SmokePath
	}
	return rt
}

// create stores a new current rollout, taking the current label from prev.
func create(ctx context.Context, tx store.Tx, prev *resource.Object, spec Spec) (*resource.Object, error) {
	n := 1
	if prev != nil {
		all, err := tx.List(ctx, Kind, resource.Selector{
			{Key: "app", Op: resource.Equals, Values: []string{spec.App}},
			{Key: "environment", Op: resource.Equals, Values: []string{spec.Environment}},
		})
		if err != nil {
			return nil, err
		}
		n = len(all) + 1
		p := prev.DeepCopy()
		delete(p.Metadata.Labels, CurrentLabel)
		p.Metadata.Revision = 0
		if _, err := tx.Update(ctx, p); err != nil {
			return nil, err
		}
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: Kind, Metadata: resource.Metadata{
		Name: fmt.Sprintf("%s.%s.%d", spec.App, spec.Environment, n),
		Labels: map[string]string{"app": spec.App, "environment": spec.Environment, "release": spec.Candidate.Release,
			PhaseLabel: string(Progressing), CurrentLabel: "true"},
	}}
	if err := obj.SetSpec(spec); err != nil {
		return nil, err
	}
	if err := obj.SetStatus(Status{Message: "waiting for the reconciler"}); err != nil { // the first plan starts it
		return nil, err
	}
	return tx.Create(ctx, obj)
}

// Command is what a person asks of a running rollout.
type Command string

// Commands.
const (
	Pause    Command = "pause"
	Resume   Command = "resume"
	Promote  Command = "promote"
	Abort    Command = "abort"
	Rollback Command = "rollback"
)

// Service steers rollouts for people. Each command is audited with the
// caller and reason; wake tells the reconciler to act at once.
type Service struct {
	store store.Store
	wake  func()
}

// NewService returns a Service over st; wake may be nil.
func NewService(st store.Store, wake func()) *Service {
	if wake == nil {
		wake = func() {}
	}
	return &Service{store: st, wake: wake}
}

// Do applies a command to the current rollout of app in env. A rollback
// of a rollout that finished, once the previous version has stopped,
// starts a new rollout restoring that version; otherwise the command is
// recorded on the rollout's status for the reconciler.
func (s *Service) Do(ctx context.Context, actor store.Actor, app, env string, cmd Command, reason string) (*resource.Object, error) {
	reason = strings.TrimSpace(reason)
	if (cmd == Abort || cmd == Rollback) && reason == "" {
		return nil, &InvalidError{Msg: fmt.Sprintf("%s needs a reason (--reason TEXT)", cmd)}
	}
	if len(reason) > 2000 {
		return nil, &InvalidError{Msg: "the reason is longer than 2000 characters"}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		cur, err := Current(ctx, tx, app, env)
		if err != nil {
			return err
		}
		spec, st, err := Decode(cur)
		if err != nil {
			return err
		}
		active := st.Phase.Active()
		inWindow := st.Phase == Succeeded && st.StableUntil != nil && tx.Now().Before(*st.StableUntil)
		switch {
		case cmd == Rollback && !active && !inWindow:
			// The previous version no longer runs: bring it back beside
			// the serving one and switch, blue-green.
			out, err = s.restorePrevious(ctx, tx, cur, spec, reason)
			return err
		case cmd != Rollback && !active:
			return &PolicyError{Msg: fmt.Sprintf("rollout %s of %s %s in %s already ended (%s); nothing to %s", cur.Metadata.Name, app, spec.Candidate.Version, env, st.Phase, cmd)}
		case cmd == Pause && st.Phase == Paused, cmd == Resume && st.Phase == Progressing && !st.PauseRequested:
			return fmt.Errorf("rollout %s is already %s: %w", cur.Metadata.Name, strings.ToLower(string(st.Phase)), store.ErrConflict)
		}
		switch cmd {
		case Pause:
			st.PauseRequested = true
		case Resume:
			st.ResumeRequested = true
		case Promote:
			st.PromoteRequested = true
		case Abort:
			st.AbortRequested = reason
		case Rollback:
			st.RollbackReason = reason
		default:
			return &InvalidError{Msg: fmt.Sprintf("unknown command %q", cmd)}
		}
		next := cur.DeepCopy()
		if err := next.SetStatus(st); err != nil {
			return err
		}
		next.Metadata.Revision = 0
		out, err = tx.Update(ctx, next)
		return err
	})
	if err == nil {
		s.wake()
	}
	return out, err
}

// restorePrevious starts a rollout bringing back the version that served
// before the one serving now: the stable version of the latest successful
// rollout of the serving version.
func (s *Service) restorePrevious(ctx context.Context, tx store.Tx, cur *resource.Object, spec Spec, reason string) (*resource.Object, error) {
	serving, servingRT, _, err := Serving(ctx, tx, spec.App, spec.Environment)
	if err != nil {
		return nil, err
	}
	if serving == nil {
		return nil, &PolicyError{Msg: fmt.Sprintf("nothing serves %s in %s: there is nothing to roll back", spec.App, spec.Environment)}
	}
	all, err := tx.List(ctx, Kind, resource.Selector{
		{Key: "app", Op: resource.Equals, Values: []string{spec.App}},
		{Key: "environment", Op: resource.Equals, Values: []string{spec.Environment}},
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *resource.Object) int { return cmp.Compare(b.Metadata.Revision, a.Metadata.Revision) })
	var prev *Version
	var prevRT *Runtime
	for _, o := range all {
		os, ost, err := Decode(o)
		if err != nil {
			return nil, err
		}
		if ost.Phase == Succeeded && os.Candidate == *serving && os.Stable != nil {
			prev, prevRT = os.Stable, os.StableRuntime
			if prevRT == nil {
				prevRT = &os.Runtime
			}
			break
		}
	}
	if prev == nil {
		return nil, &PolicyError{Msg: fmt.Sprintf("%s %s is the first version deployed in %s: there is nothing to roll back to", spec.App, serving.Version, spec.Environment)}
	}
	strat := spec.Strategy
	strat.Type, strat.Steps = application.BlueGreen, nil
	back := spec.Runtime // the router's settings stay; the version's own come back
	back.Env, back.SecretEnv, back.HealthPath, back.Args = prevRT.Env, prevRT.SecretEnv, prevRT.HealthPath, prevRT.Args
	return create(ctx, tx, cur, Spec{
		App: spec.App, Environment: spec.Environment, Candidate: *prev, Stable: serving,
		Replicas: spec.Replicas, Strategy: strat, Runtime: back, StableRuntime: servingRT, Rollback: true, Reason: reason,
	})
}

// Restore brings version (with the runtime it was deployed with) back into
// env beside what serves there, blue-green: a rollback rehearsal's way
// forward again.
func (s *Service) Restore(ctx context.Context, actor store.Actor, from Spec, reason string) (*resource.Object, error) {
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		serving, servingRT, cur, err := Serving(ctx, tx, from.App, from.Environment)
		if err != nil {
			return err
		}
		strat := from.Strategy
		strat.Type, strat.Steps = application.BlueGreen, nil
		out, err = create(ctx, tx, cur, Spec{
			App: from.App, Environment: from.Environment, Candidate: from.Candidate, Stable: serving,
			Replicas: from.Replicas, Strategy: strat, Runtime: from.Runtime, StableRuntime: servingRT, Reason: reason,
		})
		return err
	})
	if err == nil {
		s.wake()
	}
	return out, err
}

// sameStatus reports whether two statuses are equal as stored.
func sameStatus(a, b Status) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
