// Package change records change requests: the accountable record of a
// change (what, how risky, how to roll it back) that a transition declaring
// the changeRequest gate requires, approved before the release may pass.
//
// A change request is either internal, approved in airlock by people
// holding the roles the gate requires (with the same separation of duties
// as promotion approvals), or external: a reference to a ticket in another
// system (ServiceNow, Jira, ...) whose approval airlock confirms by calling
// that system's endpoint, declared as a ChangeSystem.
package change

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Kinds this package owns.
const (
	Kind       = "ChangeRequest"
	SystemKind = "ChangeSystem"
)

// Limits on free text.
const (
	MaxSummary      = 500
	MaxRollbackPlan = 4000
	MaxReason       = 2000
	MaxKey          = 100
)

// Risk is how likely the change is to hurt.
type Risk string

// Risks.
const (
	Low    Risk = "low"
	Medium Risk = "medium"
	High   Risk = "high"
)

// Risks lists the risks, lowest first.
var Risks = []Risk{Low, Medium, High}

// Phase is where a change request stands.
type Phase string

// Phases. Open waits for approval; Approved and Rejected are what the
// approvers (or the external system) decided; Closed was withdrawn or is
// done. An external request moves between Open, Approved and Rejected as
// its system answers.
const (
	Open     Phase = "Open"
	Approved Phase = "Approved"
	Rejected Phase = "Rejected"
	Closed   Phase = "Closed"
)

// Spec is what was asked: a change of one application version into one
// environment.
type Spec struct {
	App          string    `json:"app"`
	Version      string    `json:"version"`
	Environment  string    `json:"environment"`
	Summary      string    `json:"summary"`
	Risk         Risk      `json:"risk"`
	RollbackPlan string    `json:"rollbackPlan"`
	RaisedBy     string    `json:"raisedBy"`
	External     *External `json:"external,omitempty"`
}

// External is a change ticket in another system.
type External struct {
	System string `json:"system"` // a ChangeSystem
	Key    string `json:"key"`    // e.g. CHG0012345 or OPS-1234
}

// Vote is one person's decision on an internal change request.
type Vote struct {
	Approver string    `json:"approver"`
	Roles    []string  `json:"roles"` // the roles they held for the environment
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Decisions.
const (
	Approve = "approve"
	Reject  = "reject"
)

// Confirmation is what the external system last answered. It is written
// only when the answer (or the error) changes, so the audit log holds one
// entry per change, not one per minute.
type Confirmation struct {
	Approved  bool      `json:"approved"`
	State     string    `json:"state,omitempty"`   // the system's own word, e.g. "scheduled"
	Message   string    `json:"message,omitempty"` // shown to users
	Error     string    `json:"error,omitempty"`   // why the last check failed; the previous answer stands
	ChangedAt time.Time `json:"changedAt"`         // when this answer (or error) was first seen
}

// Status is what airlock records of a change request.
type Status struct {
	Phase      Phase         `json:"phase"`
	Votes      []Vote        `json:"votes,omitempty"`
	External   *Confirmation `json:"external,omitempty"`
	ClosedAt   *time.Time    `json:"closedAt,omitempty"`
	ClosedBy   string        `json:"closedBy,omitempty"`
	Resolution string        `json:"resolution,omitempty"`
}

// Request is a change request as the changeRequest gate sees it.
type Request struct {
	Name      string
	Spec      Spec
	Status    Status
	CreatedAt time.Time
}

// Register adds ChangeRequest (written only through its endpoints) and
// ChangeSystem (declarative) to a scheme.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: Kind, Plural: "changerequests", Aliases: []string{"changerequest", "change", "changes", "cr"}, NewSpec: func() any { return &Spec{} }})
	s.Register(resource.Kind{
		Name: SystemKind, Plural: "changesystems", Aliases: []string{"changesystem"},
		NewSpec: func() any { return &SystemSpec{} },
		Validate: func(_ *resource.Object, spec any) error {
			v, ok := spec.(*SystemSpec)
			if !ok {
				return fmt.Errorf("changesystem: spec has type %T, want *change.SystemSpec", spec)
			}
			return ValidateSystem(*v)
		},
		Declarative: true,
	})
}

// InvalidError is a malformed request. The API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// PolicyError is a request airlock refuses (self-approval, a role the
// change does not need). The API maps it to 422.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

// CreateRequest asks to raise a change request.
type CreateRequest struct {
	App          string    `json:"app"`
	Version      string    `json:"version"`
	Environment  string    `json:"environment"`
	Summary      string    `json:"summary"`
	Risk         Risk      `json:"risk"`
	RollbackPlan string    `json:"rollbackPlan"`
	External     *External `json:"external,omitempty"`
}

func (r *CreateRequest) validate() error {
	r.Summary, r.RollbackPlan = strings.TrimSpace(r.Summary), strings.TrimSpace(r.RollbackPlan)
	r.Risk = Risk(strings.ToLower(strings.TrimSpace(string(r.Risk))))
	if err := resource.ValidateName(r.App); err != nil {
		return &InvalidError{Msg: "app: " + err.Error()}
	}
	if err := release.ValidateVersion(r.Version); err != nil {
		return &InvalidError{Msg: err.Error()}
	}
	if err := resource.ValidateName(r.Environment); err != nil {
		return &InvalidError{Msg: "environment (--env): " + err.Error()}
	}
	switch {
	case r.Summary == "":
		return &InvalidError{Msg: "a change request needs a summary of the change (--summary TEXT)"}
	case len(r.Summary) > MaxSummary:
		return &InvalidError{Msg: fmt.Sprintf("the summary is %d characters; at most %d are allowed", len(r.Summary), MaxSummary)}
	case !slices.Contains(Risks, r.Risk):
		return &InvalidError{Msg: fmt.Sprintf("risk %q is not one of low, medium, high (--risk)", r.Risk)}
	case r.RollbackPlan == "":
		return &InvalidError{Msg: "a change request needs its rollback plan (--rollback-plan TEXT): how the change is undone if it goes wrong"}
	case len(r.RollbackPlan) > MaxRollbackPlan:
		return &InvalidError{Msg: fmt.Sprintf("the rollback plan is %d characters; at most %d are allowed", len(r.RollbackPlan), MaxRollbackPlan)}
	}
	if e := r.External; e != nil {
		e.System, e.Key = strings.TrimSpace(e.System), strings.TrimSpace(e.Key)
		if err := resource.ValidateName(e.System); err != nil {
			return &InvalidError{Msg: "external system: " + err.Error()}
		}
		if e.Key == "" || len(e.Key) > MaxKey || strings.IndexFunc(e.Key, func(c rune) bool { return c <= ' ' || c > '~' || c == '/' || c == '?' || c == '#' }) >= 0 {
			return &InvalidError{Msg: fmt.Sprintf("external key %q must be 1 to %d printable characters without spaces, '/', '?' or '#' (e.g. CHG0012345)", e.Key, MaxKey)}
		}
	}
	return nil
}

// Service raises, votes on, confirms and closes change requests through
// the store; every change is audited with its actor.
type Service struct {
	store store.Store
	// reevaluate re-judges a release's open promotions inside a write, so
	// an approval that satisfies a changeRequest gate promotes at once.
	reevaluate func(ctx context.Context, tx store.Tx, releaseName string) error
	confirmer  *Confirmer
}

// New returns a Service over st; reevaluate may be nil.
func New(st store.Store, reevaluate func(ctx context.Context, tx store.Tx, releaseName string) error) *Service {
	return &Service{store: st, reevaluate: reevaluate, confirmer: &Confirmer{}}
}

// SetConfirmer replaces the HTTP client external confirmations use.
func (s *Service) SetConfirmer(c *Confirmer) { s.confirmer = c }

// namePrefix is the prefix of the names of change requests raised on day t.
func namePrefix(t time.Time) string { return "chg-" + t.UTC().Format("20060102") + "-" }

// Create raises a change request by actor. Its name is
// "chg-YYYYMMDD-NNN". The release and environment must exist, and an
// external request's system must be declared.
func (s *Service) Create(ctx context.Context, actor store.Actor, req CreateRequest) (*resource.Object, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		out, err := s.create(ctx, actor, req)
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt == 5 {
			return out, err
		}
	}
}

func (s *Service) create(ctx context.Context, actor store.Actor, req CreateRequest) (*resource.Object, error) {
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		if _, err := tx.Get(ctx, "Release", release.Name(req.App, req.Version)); err != nil {
			return fmt.Errorf("release %s %s: %w", req.App, req.Version, err)
		}
		if _, err := tx.Get(ctx, "Environment", req.Environment); err != nil {
			return fmt.Errorf("environment %s: %w", req.Environment, err)
		}
		if req.External != nil {
			if _, err := tx.Get(ctx, SystemKind, req.External.System); errors.Is(err, store.ErrNotFound) {
				return &PolicyError{Msg: fmt.Sprintf("change system %q is not declared; apply a ChangeSystem named %q with the URL airlock asks for approval", req.External.System, req.External.System)}
			} else if err != nil {
				return err
			}
		}
		now := tx.Now()
		all, err := tx.List(ctx, Kind, nil)
		if err != nil {
			return err
		}
		prefix, seq := namePrefix(now), 0
		for _, o := range all {
			if rest, ok := strings.CutPrefix(o.Metadata.Name, prefix); ok {
				if n, err := strconv.Atoi(rest); err == nil && n > seq {
					seq = n
				}
			}
		}
		obj := &resource.Object{APIVersion: resource.APIVersion, Kind: Kind, Metadata: resource.Metadata{
			Name: fmt.Sprintf("%s%03d", prefix, seq+1),
			Labels: map[string]string{"app": req.App, "release": release.Name(req.App, req.Version),
				"environment": req.Environment, "phase": string(Open), "risk": string(req.Risk)},
		}}
		if err := obj.SetSpec(Spec{App: req.App, Version: req.Version, Environment: req.Environment, Summary: req.Summary,
			Risk: req.Risk, RollbackPlan: req.RollbackPlan, RaisedBy: actor.Name, External: req.External}); err != nil {
			return err
		}
		if err := obj.SetStatus(Status{Phase: Open}); err != nil {
			return err
		}
		if out, err = tx.Create(ctx, obj); err != nil {
			return err
		}
		return s.reevaluateRelease(ctx, tx, release.Name(req.App, req.Version))
	})
	return out, err
}

func (s *Service) reevaluateRelease(ctx context.Context, tx store.Tx, rel string) error {
	if s.reevaluate == nil {
		return nil
	}
	return s.reevaluate(ctx, tx, rel)
}

// Target returns the environment a change request is for, so the caller
// can be authorized for it.
func (s *Service) Target(ctx context.Context, name string) (string, error) {
	obj, err := s.store.Get(ctx, Kind, name)
	if err != nil {
		return "", fmt.Errorf("change request %s: %w", name, err)
	}
	var spec Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		return "", err
	}
	return spec.Environment, nil
}

// VoteRequest is one person's approval or rejection of a change request.
type VoteRequest struct {
	Name     string
	Decision string
	Reason   string
	// Roles are the roles the caller holds for the change's environment;
	// the API fills them from the caller's grants.
	Roles []string
}

// Vote records actor's approval or rejection of an internal change
// request and re-judges the release's promotions. Refused, changing
// nothing but audited as refused-approve or refused-reject: an empty
// reason, an external or closed request, a vote by whoever raised the
// request, created the release or authored its commit, a caller holding
// none of the roles the transition's changeRequest gate requires, and a
// second vote by the same person (store.ErrConflict).
func (s *Service) Vote(ctx context.Context, actor store.Actor, v VoteRequest) (*resource.Object, error) {
	out, err := s.vote(ctx, actor, v)
	var pe *PolicyError
	var ie *InvalidError
	if err != nil && (errors.As(err, &pe) || errors.As(err, &ie) || errors.Is(err, store.ErrConflict)) {
		rec := store.Actor{Name: actor.Name, Reason: fmt.Sprintf("%s refused: %v", v.Decision, err)}
		if aerr := s.store.Write(ctx, rec, func(tx store.Tx) error {
			return tx.Record(ctx, "refused-"+v.Decision, Kind, v.Name, "")
		}); aerr != nil {
			return nil, fmt.Errorf("%w (and recording the refused attempt failed: %v)", err, aerr)
		}
	}
	return out, err
}

func (s *Service) vote(ctx context.Context, actor store.Actor, v VoteRequest) (*resource.Object, error) {
	v.Reason = strings.TrimSpace(v.Reason)
	switch {
	case v.Reason == "":
		return nil, &InvalidError{Msg: "a reason is required (--reason TEXT)"}
	case len(v.Reason) > MaxReason:
		return nil, &InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	case v.Decision != Approve && v.Decision != Reject:
		return nil, &InvalidError{Msg: fmt.Sprintf("decision %q must be approve or reject", v.Decision)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, Kind, v.Name)
		if err != nil {
			return fmt.Errorf("change request %s: %w", v.Name, err)
		}
		var spec Spec
		var st Status
		if err := obj.DecodeSpec(&spec); err != nil {
			return err
		}
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		switch {
		case spec.External != nil:
			return &PolicyError{Msg: fmt.Sprintf("change request %s is approved in %s (%s), not in airlock; airlock confirms it there (airlock change confirm %s)", v.Name, spec.External.System, spec.External.Key, v.Name)}
		case st.Phase == Closed || st.Phase == Rejected:
			return &PolicyError{Msg: fmt.Sprintf("change request %s is %s; there is nothing left to %s (raise a new one)", v.Name, st.Phase, v.Decision)}
		case actor.Name == spec.RaisedBy:
			return &PolicyError{Msg: fmt.Sprintf("%s raised change request %s and may not %s it; another person holding a required role must", actor.Name, v.Name, v.Decision)}
		case slices.ContainsFunc(st.Votes, func(o Vote) bool { return o.Approver == actor.Name }):
			return fmt.Errorf("%s already voted on change request %s: %w", actor.Name, v.Name, store.ErrConflict)
		}
		rel, err := tx.Get(ctx, "Release", release.Name(spec.App, spec.Version))
		if err != nil {
			return err
		}
		var relSpec release.Spec
		if err := rel.DecodeSpec(&relSpec); err != nil {
			return err
		}
		switch {
		case actor.Name == relSpec.Creator:
			return &PolicyError{Msg: fmt.Sprintf("%s created release %s and may not %s its change request", actor.Name, rel.Metadata.Name, v.Decision)}
		case slices.Contains(relSpec.Authors, actor.Name):
			return &PolicyError{Msg: fmt.Sprintf("%s authored the commit of release %s and may not %s its change request", actor.Name, rel.Metadata.Name, v.Decision)}
		}
		pol, err := PolicyFor(ctx, tx, spec.App, spec.Environment)
		if err != nil {
			return err
		}
		roles := approval.Held(v.Roles, pol.Require)
		if len(roles) == 0 {
			return &PolicyError{Msg: fmt.Sprintf("%s holds none of the roles the change request needs (%s) for environment %s", actor.Name, approval.Describe(pol.Require), spec.Environment)}
		}
		now := tx.Now()
		st.Votes = append(st.Votes, Vote{Approver: actor.Name, Roles: roles, Decision: v.Decision, Reason: v.Reason, At: now})
		verdict := Judge(pol, Request{Name: v.Name, Spec: spec, Status: st}, Parties{ReleaseCreator: relSpec.Creator, Authors: relSpec.Authors}, now)
		st.Phase = verdict.Phase
		if err := setStatus(obj, st); err != nil {
			return err
		}
		if out, err = tx.Update(ctx, obj); err != nil {
			return err
		}
		return s.reevaluateRelease(ctx, tx, rel.Metadata.Name)
	})
	return out, err
}

// setStatus writes st and its phase label onto obj for an update.
func setStatus(obj *resource.Object, st Status) error {
	if obj.Metadata.Labels == nil {
		obj.Metadata.Labels = map[string]string{}
	}
	obj.Metadata.Labels["phase"] = string(st.Phase)
	obj.Metadata.Revision = 0
	return obj.SetStatus(st)
}

// Close withdraws (or ends) a change request. Closing a closed one is a
// conflict.
func (s *Service) Close(ctx context.Context, actor store.Actor, name, resolution string) (*resource.Object, error) {
	resolution = strings.TrimSpace(resolution)
	switch {
	case resolution == "":
		return nil, &InvalidError{Msg: "closing a change request needs a reason (--reason TEXT)"}
	case len(resolution) > MaxReason:
		return nil, &InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, Kind, name)
		if err != nil {
			return fmt.Errorf("change request %s: %w", name, err)
		}
		var spec Spec
		var st Status
		if err := obj.DecodeSpec(&spec); err != nil {
			return err
		}
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		if st.Phase == Closed {
			return fmt.Errorf("change request %s was already closed by %s: %w", name, st.ClosedBy, store.ErrConflict)
		}
		now := tx.Now()
		st.Phase, st.ClosedAt, st.ClosedBy, st.Resolution = Closed, &now, actor.Name, resolution
		if err := setStatus(obj, st); err != nil {
			return err
		}
		if out, err = tx.Update(ctx, obj); err != nil {
			return err
		}
		return s.reevaluateRelease(ctx, tx, release.Name(spec.App, spec.Version))
	})
	return out, err
}

// Load returns the change requests for one application version and
// environment, for the changeRequest gate.
func Load(ctx context.Context, r store.Reader, app, version, env string) ([]Request, error) {
	objs, err := r.List(ctx, Kind, resource.Selector{
		{Key: "release", Op: resource.Equals, Values: []string{release.Name(app, version)}},
		{Key: "environment", Op: resource.Equals, Values: []string{env}},
	})
	if err != nil {
		return nil, fmt.Errorf("list change requests of %s %s in %s: %w", app, version, env, err)
	}
	out := make([]Request, 0, len(objs))
	for _, o := range objs {
		cr := Request{Name: o.Metadata.Name, CreatedAt: o.Metadata.CreatedAt}
		if err := o.DecodeSpec(&cr.Spec); err != nil {
			return nil, err
		}
		if err := o.DecodeStatus(&cr.Status); err != nil {
			return nil, err
		}
		if cr.Spec.App == app && cr.Spec.Version == version {
			out = append(out, cr)
		}
	}
	return out, nil
}
