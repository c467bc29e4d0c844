// Package catalog keeps the declared world consistent: it applies documents
// atomically, deletes objects, and registers releases, and after every change
// re-checks the whole set of environments, pipelines and applications inside
// the same transaction, so two concurrent changes can never together produce
// a set that breaks the separation rules.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Kind names this package coordinates.
const (
	EnvironmentKind = "Environment"
	PipelineKind    = "Pipeline"
	ApplicationKind = "Application"
	ReleaseKind     = "Release"
)

// InvalidError is input that is well-formed but not acceptable on its own
// (a wrong field value, an immutable field changed). It maps to HTTP 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// PolicyError is a change refused by a separation or pipeline rule: the
// input is understood, and airlock will not allow it. It maps to HTTP 422,
// which the CLI reports with exit code 3.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

// Action is what apply did to one object.
type Action string

// Apply outcomes, as printed by the CLI.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	// Proposed: the change waits for approval (a guarded kind, such as a
	// production flag); Change names the record and Message what it waits
	// for.
	Proposed Action = "proposed"
)

// Result is apply's outcome for one object.
type Result struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Action   Action `json:"action"`
	Revision int64  `json:"revision"`
	Change   string `json:"change,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Guard takes over the writes of one kind inside the apply or delete
// transaction: cur is the stored object (nil: a create), next the wanted
// one (nil: a delete). Feature flags use it for change control.
type Guard func(ctx context.Context, tx store.Tx, actor store.Actor, cur, next *resource.Object) (Result, error)

// Service applies and deletes declared objects.
type Service struct {
	store  store.Store
	scheme *resource.Scheme
	guards map[string]Guard
}

// SetGuard routes every write of kind through g. Call it before serving.
func (s *Service) SetGuard(kind string, g Guard) {
	if s.guards == nil {
		s.guards = map[string]Guard{}
	}
	s.guards[kind] = g
}

// New returns a Service over st; scheme must hold the declared kinds.
func New(st store.Store, scheme *resource.Scheme) *Service {
	return &Service{store: st, scheme: scheme}
}

var errDryRun = errors.New("dry run")

// Apply creates or updates every object in one transaction. Objects whose
// spec and labels are unchanged are left alone (no revision, no audit
// entry). With dryRun, everything is checked and nothing is kept.
func (s *Service) Apply(ctx context.Context, actor store.Actor, objs []*resource.Object, dryRun bool) ([]Result, error) {
	seen := map[string]bool{}
	for _, o := range objs {
		k, ok := s.scheme.Lookup(o.Kind)
		if !ok || !k.Declarative {
			return nil, &InvalidError{Msg: fmt.Sprintf("%s cannot be applied; kinds that can: %s", o.Ref(), s.scheme.KindNames(true))}
		}
		if seen[o.Ref()] {
			return nil, &InvalidError{Msg: fmt.Sprintf("%s appears twice in the input; keep one", o.Ref())}
		}
		seen[o.Ref()] = true
	}
	var results []Result
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		results = results[:0]
		for _, o := range objs {
			r, err := s.applyOne(ctx, tx, actor, o)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		if err := Reconcile(ctx, tx); err != nil {
			return err
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

func (s *Service) applyOne(ctx context.Context, tx store.Tx, actor store.Actor, in *resource.Object) (Result, error) {
	o := in.DeepCopy()
	o.Status = nil
	cur, err := tx.Get(ctx, o.Kind, o.Metadata.Name)
	if g := s.guards[o.Kind]; g != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return g(ctx, tx, actor, nil, o)
		case err != nil:
			return Result{}, fmt.Errorf("read %s: %w", o.Ref(), err)
		case bytes.Equal(compact(cur.Spec), compact(o.Spec)) && maps.Equal(cur.Metadata.Labels, o.Metadata.Labels):
			return Result{Kind: o.Kind, Name: o.Metadata.Name, Action: Unchanged, Revision: cur.Metadata.Revision}, nil
		case o.Metadata.Revision != 0 && o.Metadata.Revision != cur.Metadata.Revision:
			return Result{}, fmt.Errorf("%s is at revision %d, not %d: %w; get it again and retry", o.Ref(), cur.Metadata.Revision, o.Metadata.Revision, store.ErrConflict)
		}
		return g(ctx, tx, actor, cur, o)
	}
	if errors.Is(err, store.ErrNotFound) {
		if o.Kind == ReleaseKind {
			if err := prepareRelease(o, actor.Name); err != nil {
				return Result{}, err
			}
			if err := appExists(ctx, tx, o); err != nil {
				return Result{}, err
			}
		}
		created, err := tx.Create(ctx, o)
		if err != nil {
			return Result{}, fmt.Errorf("create %s: %w", o.Ref(), err)
		}
		return Result{Kind: o.Kind, Name: o.Metadata.Name, Action: Created, Revision: created.Metadata.Revision}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", o.Ref(), err)
	}
	if o.Kind == ReleaseKind {
		var old, nw release.Spec
		if err := cur.DecodeSpec(&old); err != nil {
			return Result{}, fmt.Errorf("decode stored %s: %w", cur.Ref(), err)
		}
		if err := o.DecodeSpec(&nw); err != nil {
			return Result{}, &InvalidError{Msg: fmt.Sprintf("%s: %v", o.Ref(), err)}
		}
		if nw.Creator == "" {
			nw.Creator = old.Creator // the creator is whoever registered it first
		}
		if err := release.Immutable(old, nw); err != nil {
			return Result{}, fmt.Errorf("%s: %w: %v", o.Ref(), store.ErrConflict, err)
		}
		return Result{Kind: o.Kind, Name: o.Metadata.Name, Action: Unchanged, Revision: cur.Metadata.Revision}, nil
	}
	if bytes.Equal(compact(cur.Spec), compact(o.Spec)) && maps.Equal(cur.Metadata.Labels, o.Metadata.Labels) {
		if o.Metadata.Revision != 0 && o.Metadata.Revision != cur.Metadata.Revision {
			return Result{}, fmt.Errorf("%s is at revision %d, not %d: %w; get it again and retry", o.Ref(), cur.Metadata.Revision, o.Metadata.Revision, store.ErrConflict)
		}
		return Result{Kind: o.Kind, Name: o.Metadata.Name, Action: Unchanged, Revision: cur.Metadata.Revision}, nil
	}
	next := cur.DeepCopy()
	next.Spec = o.Spec
	next.Metadata.Labels = o.Metadata.Labels
	next.Metadata.Revision = o.Metadata.Revision // 0: last writer wins inside this transaction
	updated, err := tx.Update(ctx, next)
	if err != nil {
		return Result{}, fmt.Errorf("update %s: %w", o.Ref(), err)
	}
	return Result{Kind: o.Kind, Name: o.Metadata.Name, Action: Configured, Revision: updated.Metadata.Revision}, nil
}

// appExists refuses a release of an application that is not declared
// (in this apply or before it).
func appExists(ctx context.Context, tx store.Tx, rel *resource.Object) error {
	var spec release.Spec
	if err := rel.DecodeSpec(&spec); err != nil {
		return err
	}
	if _, err := tx.Get(ctx, ApplicationKind, spec.App); errors.Is(err, store.ErrNotFound) {
		return &PolicyError{Msg: fmt.Sprintf("%s: application %q does not exist; apply an Application named %q first (or in the same file, before the release)", rel.Ref(), spec.App, spec.App)}
	} else if err != nil {
		return err
	}
	return nil
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

// Delete removes one declared object, refusing when something still refers
// to it. revision, when non-zero, must match.
func (s *Service) Delete(ctx context.Context, actor store.Actor, kind, name string, revision int64) error {
	_, err := s.DeleteResult(ctx, actor, kind, name, revision)
	return err
}

// DeleteResult is Delete reporting what happened: a guarded kind may only
// propose the deletion (Action Proposed).
func (s *Service) DeleteResult(ctx context.Context, actor store.Actor, kind, name string, revision int64) (Result, error) {
	res := Result{Kind: kind, Name: name, Action: Deleted}
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		if g := s.guards[kind]; g != nil {
			cur, err := tx.Get(ctx, kind, name)
			if err != nil {
				return err
			}
			if revision != 0 && revision != cur.Metadata.Revision {
				return fmt.Errorf("%s is at revision %d, not %d: %w; get it again and retry", cur.Ref(), cur.Metadata.Revision, revision, store.ErrConflict)
			}
			if res, err = g(ctx, tx, actor, cur, nil); err != nil {
				return err
			}
		} else if err := tx.Delete(ctx, kind, name, revision); err != nil {
			return err
		}
		if err := Reconcile(ctx, tx); err != nil {
			var pe *PolicyError
			if errors.As(err, &pe) {
				return &PolicyError{Msg: fmt.Sprintf("cannot delete %s/%s: %s", kind, name, pe.Msg)}
			}
			return err
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// Reconcile checks the whole declared set as tx sees it and records each
// environment's separation violations in its status. It returns a
// *PolicyError when the set breaks a rule.
func Reconcile(ctx context.Context, tx store.Tx) error {
	envObjs, err := tx.List(ctx, EnvironmentKind, nil)
	if err != nil {
		return fmt.Errorf("list environments: %w", err)
	}
	envs := make(map[string]environment.Spec, len(envObjs))
	for _, o := range envObjs {
		var sp environment.Spec
		if err := o.DecodeSpec(&sp); err != nil {
			return fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		envs[o.Metadata.Name] = sp
	}
	violations, err := environment.CheckSet(envs, tx.Now())
	if err != nil {
		return &PolicyError{Msg: err.Error()}
	}
	for _, o := range envObjs {
		var st environment.Status
		if err := o.DecodeStatus(&st); err != nil {
			return fmt.Errorf("decode status of %s: %w", o.Ref(), err)
		}
		want := violations[o.Metadata.Name]
		for _, v := range st.Violations { // observed on the runtime: kept until the next check
			if v.Rule == environment.RuleRuntimeIsolation {
				want = append(want, v)
			}
		}
		if slices.EqualFunc(st.Violations, want, func(a, b environment.Violation) bool { return a == b }) {
			continue
		}
		st.Violations = want
		next := o.DeepCopy()
		if err := next.SetStatus(st); err != nil {
			return err
		}
		if _, err := tx.Update(ctx, next); err != nil {
			return fmt.Errorf("record separation status of %s: %w", o.Ref(), err)
		}
	}

	pipeObjs, err := tx.List(ctx, PipelineKind, nil)
	if err != nil {
		return fmt.Errorf("list pipelines: %w", err)
	}
	pipes := make(map[string]pipeline.Spec, len(pipeObjs))
	for _, o := range pipeObjs {
		var sp pipeline.Spec
		if err := o.DecodeSpec(&sp); err != nil {
			return fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		if err := pipeline.Check(sp, envs); err != nil {
			return &PolicyError{Msg: fmt.Sprintf("Pipeline %q: %v", o.Metadata.Name, err)}
		}
		pipes[o.Metadata.Name] = sp
	}

	appObjs, err := tx.List(ctx, ApplicationKind, nil)
	if err != nil {
		return fmt.Errorf("list applications: %w", err)
	}
	for _, o := range appObjs {
		var sp application.Spec
		if err := o.DecodeSpec(&sp); err != nil {
			return fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		if err := application.Check(sp, pipes); err != nil {
			return &PolicyError{Msg: fmt.Sprintf("Application %q: %v", o.Metadata.Name, err)}
		}
	}
	return nil
}
