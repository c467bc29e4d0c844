package flagchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Service proposes, approves, withdraws and applies flag changes through
// the store, every write audited with its actor.
type Service struct {
	store store.Store
	// Actor is who applies approved changes when their window opens.
	Actor store.Actor
	// OnApplied, when set, is called after an approval or an opening
	// window applied a change (the plan controller retries at once).
	OnApplied func()
}

func (s *Service) applied() {
	if s.OnApplied != nil {
		s.OnApplied()
	}
}

// New returns a Service over st.
func New(st store.Store) *Service {
	return &Service{store: st, Actor: store.Actor{Name: "system:flag-changes", Reason: "apply approved flag changes whose deployment window opened"}}
}

// Guard is catalog's hook for Flag objects: apply and delete propose a
// change instead of writing the flag. An applied change reports
// created, configured (or deleted); a change waiting for approval reports
// proposed, with the change's name and what it waits for.
func (s *Service) Guard(ctx context.Context, tx store.Tx, actor store.Actor, cur, next *resource.Object) (catalog.Result, error) {
	origin := "apply"
	if next == nil {
		origin = "delete"
	}
	out, err := Propose(ctx, tx, actor, Request{Current: cur, Next: next, Reason: actor.Reason, Origin: origin})
	if err != nil {
		return catalog.Result{}, err
	}
	name := ""
	if next != nil {
		name = next.Metadata.Name
	} else {
		name = cur.Metadata.Name
	}
	r := catalog.Result{Kind: flag.KindName, Name: name, Revision: out.Revision, Change: out.Change, Message: out.Message}
	switch {
	case out.Phase != Applied:
		r.Action = catalog.Proposed
	case cur == nil:
		r.Action = catalog.Created
	case next == nil:
		r.Action = catalog.Deleted
	default:
		r.Action = catalog.Configured
	}
	return r, nil
}

// SetRequest changes some fields of a flag; nil and empty fields stay.
type SetRequest struct {
	Flag           string       `json:"-"`
	Enabled        *bool        `json:"enabled,omitempty"`
	DefaultVariant string       `json:"defaultVariant,omitempty"`
	Fractional     []flag.Split `json:"fractional,omitempty"`
	// ClearFractional removes the top-level split.
	ClearFractional bool       `json:"clearFractional,omitempty"`
	Reason          string     `json:"reason"`
	Emergency       *Emergency `json:"emergency,omitempty"`
}

// SetResult is the outcome of Set.
type SetResult struct {
	Flag     string `json:"flag"`
	Change   string `json:"change"`
	Phase    Phase  `json:"phase"`
	Revision int64  `json:"revision,omitempty"`
	Summary  string `json:"summary"`
	Message  string `json:"message,omitempty"`
	Review   string `json:"review,omitempty"`
}

// Target returns the environment of a flag (named APP.KEY.ENV) or of a
// flag change, so the caller can be authorized for it.
func (s *Service) Target(ctx context.Context, kind, name string) (string, error) {
	obj, err := s.store.Get(ctx, kind, name)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", strings.ToLower(kind), name, err)
	}
	var v struct {
		Environment string `json:"environment"`
	}
	if err := json.Unmarshal(obj.Spec, &v); err != nil {
		return "", fmt.Errorf("decode %s: %w", obj.Ref(), err)
	}
	return v.Environment, nil
}

// Set changes a flag as actor: the kill switch, the default variant or the
// top-level split. An emergency may only turn the kill switch, needs an
// open incident and a reason, and applies at once, leaving a review;
// anything else is proposed under the environment's policy.
func (s *Service) Set(ctx context.Context, actor store.Actor, req SetRequest) (SetResult, error) {
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Reason == "":
		return SetResult{}, &catalog.InvalidError{Msg: "a reason is required (--reason TEXT): why the flag changes"}
	case len(req.Reason) > MaxReason:
		return SetResult{}, &catalog.InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	case req.Enabled == nil && req.DefaultVariant == "" && req.Fractional == nil && !req.ClearFractional:
		return SetResult{}, &catalog.InvalidError{Msg: "nothing to set: give --enabled, --default or --split (or --clear-split)"}
	case req.Fractional != nil && req.ClearFractional:
		return SetResult{}, &catalog.InvalidError{Msg: "--split and --clear-split contradict each other; give one"}
	}
	if e := req.Emergency; e != nil {
		e.Incident, e.Reason = strings.TrimSpace(e.Incident), req.Reason
		switch {
		case e.Incident == "":
			return SetResult{}, &catalog.InvalidError{Msg: "an emergency needs the open incident it answers (--incident ID)"}
		case req.Enabled == nil || req.DefaultVariant != "" || req.Fractional != nil || req.ClearFractional:
			return SetResult{}, &catalog.InvalidError{Msg: "an emergency only turns the kill switch (--enabled=false or --enabled=true); other changes go through approval"}
		}
	}
	var res SetResult
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, flag.KindName, req.Flag)
		if err != nil {
			return fmt.Errorf("flag %s: %w", req.Flag, err)
		}
		var spec flag.Spec
		if err := cur.DecodeSpec(&spec); err != nil {
			return err
		}
		before := spec
		if req.Enabled != nil {
			spec.Enabled = *req.Enabled
		}
		if req.DefaultVariant != "" {
			spec.DefaultVariant = req.DefaultVariant
		}
		if req.Fractional != nil {
			spec.Fractional = req.Fractional
		}
		if req.ClearFractional {
			spec.Fractional = nil
		}
		if jsonEqual(before, spec) {
			return fmt.Errorf("flag %s already is as asked (%s): %w", req.Flag, describe(spec), store.ErrConflict)
		}
		if err := flag.Validate(spec); err != nil {
			return err
		}
		if req.Emergency != nil {
			if err := incidentOpen(ctx, tx, req.Emergency.Incident); err != nil {
				return err
			}
		}
		next := cur.DeepCopy()
		if err := next.SetSpec(spec); err != nil {
			return err
		}
		out, err := Propose(ctx, tx, actor, Request{Current: cur, Next: next, Reason: req.Reason, Origin: "set", Emergency: req.Emergency})
		if err != nil {
			return err
		}
		res = SetResult{Flag: req.Flag, Change: out.Change, Phase: out.Phase, Revision: out.Revision, Summary: Summarize(&before, &spec), Message: out.Message}
		if req.Emergency != nil {
			rec, err := tx.Get(ctx, Kind, out.Change)
			if err != nil {
				return err
			}
			var st Status
			if err := rec.DecodeStatus(&st); err != nil {
				return err
			}
			res.Review = st.Review
		}
		return nil
	})
	return res, err
}

// VoteRequest is one person's approval or rejection of a flag change.
type VoteRequest struct {
	Change   string
	Decision string
	Reason   string
	// Roles are the roles the caller holds for the change's environment;
	// the API fills them from the caller's grants.
	Roles []string
}

// Vote records actor's approval or rejection of a pending change and,
// once the approvals are complete, applies it (or, while a window is
// closed, marks it Approved to apply when the window opens). Refused,
// changing nothing but audited as refused-approve or refused-reject: an
// empty reason, a change no longer pending, a vote by its proposer, by
// someone holding none of the required roles, or a second vote.
func (s *Service) Vote(ctx context.Context, actor store.Actor, v VoteRequest) (*resource.Object, error) {
	out, err := s.vote(ctx, actor, v)
	var pe *catalog.PolicyError
	var ie *catalog.InvalidError
	if err != nil && (errors.As(err, &pe) || errors.As(err, &ie) || errors.Is(err, store.ErrConflict)) {
		rec := store.Actor{Name: actor.Name, Reason: fmt.Sprintf("%s refused: %v", v.Decision, err)}
		if aerr := s.store.Write(ctx, rec, func(tx store.Tx) error {
			return tx.Record(ctx, "refused-"+v.Decision, Kind, v.Change, "")
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
		return nil, &catalog.InvalidError{Msg: "a reason is required (--reason TEXT)"}
	case len(v.Reason) > MaxReason:
		return nil, &catalog.InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	case v.Decision != Approve && v.Decision != Reject:
		return nil, &catalog.InvalidError{Msg: fmt.Sprintf("decision %q must be approve or reject", v.Decision)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		rec, spec, st, err := load(ctx, tx, v.Change)
		if err != nil {
			return err
		}
		switch {
		case st.Phase != Pending:
			return &catalog.PolicyError{Msg: fmt.Sprintf("flag change %s is %s; there is nothing left to %s", v.Change, st.Phase, v.Decision)}
		case actor.Name == spec.ProposedBy:
			return &catalog.PolicyError{Msg: fmt.Sprintf("%s proposed flag change %s and may not %s it; another person holding a required role (%s) must", actor.Name, v.Change, v.Decision, approval.DescribeMissing(st.Require))}
		case slices.ContainsFunc(st.Votes, func(o Vote) bool { return o.Approver == actor.Name }):
			return fmt.Errorf("%s already voted on flag change %s: %w", actor.Name, v.Change, store.ErrConflict)
		}
		roles := approval.Held(v.Roles, st.Require)
		if len(roles) == 0 {
			return &catalog.PolicyError{Msg: fmt.Sprintf("%s holds none of the roles flag change %s needs (%s) for environment %s", actor.Name, v.Change, approval.DescribeMissing(st.Require), spec.Environment)}
		}
		now := tx.Now()
		st.Votes = append(st.Votes, Vote{Approver: actor.Name, Roles: roles, Decision: v.Decision, Reason: v.Reason, At: now})
		verdict := Judge(spec, st, now)
		st.Have, st.Missing = verdict.Have, verdict.Missing
		switch {
		case len(verdict.Rejections) > 0:
			st.Phase, st.Message = Rejected, strings.Join(verdict.Rejections, "; ")
		case verdict.Missing != "":
			st.Message = "awaits " + verdict.Missing
		default:
			if err := s.applyApproved(ctx, tx, rec, spec, &st); err != nil {
				return err
			}
		}
		if err := saveStatus(ctx, tx, rec, st); err != nil {
			return err
		}
		out, err = tx.Get(ctx, Kind, v.Change)
		return err
	})
	if err == nil {
		s.applied()
	}
	return out, err
}

// applyApproved applies an approved change in tx, or, while a window is
// closed, leaves it Approved with a message saying until when. A
// superseded change is marked so; the vote still stands. An error is a
// failed read or write: the transaction must end.
func (s *Service) applyApproved(ctx context.Context, tx store.Tx, rec *resource.Object, spec Spec, st *Status) error {
	pol, err := PolicyFor(ctx, tx, spec.App, spec.Environment)
	if err != nil {
		return err
	}
	if pol.Windows {
		if err := windowOpen(ctx, tx, spec.App, spec.Environment, tx.Now()); err != nil {
			var we *windowError
			if !errors.As(err, &we) {
				return err
			}
			st.Phase, st.Message = Approved, "approved; waits for the deployment window: "+we.msg
			return nil
		}
	}
	if _, err := apply(ctx, tx, rec, spec, st); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // st says Superseded
		}
		return err
	}
	st.Message = "applied after approval by " + st.Have
	return nil
}

// load reads a change record.
func load(ctx context.Context, r store.Reader, name string) (*resource.Object, Spec, Status, error) {
	var spec Spec
	var st Status
	rec, err := r.Get(ctx, Kind, name)
	if err != nil {
		return nil, spec, st, fmt.Errorf("flag change %s: %w", name, err)
	}
	if err := rec.DecodeSpec(&spec); err != nil {
		return nil, spec, st, err
	}
	if err := rec.DecodeStatus(&st); err != nil {
		return nil, spec, st, err
	}
	return rec, spec, st, nil
}

// Withdraw ends a change that has not applied yet.
func (s *Service) Withdraw(ctx context.Context, actor store.Actor, name, reason string) (*resource.Object, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return nil, &catalog.InvalidError{Msg: "withdrawing a flag change needs a reason (--reason TEXT)"}
	case len(reason) > MaxReason:
		return nil, &catalog.InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		rec, _, st, err := load(ctx, tx, name)
		if err != nil {
			return err
		}
		if st.Phase.Final() {
			return &catalog.PolicyError{Msg: fmt.Sprintf("flag change %s is %s; only a pending or approved change can be withdrawn", name, st.Phase)}
		}
		st.Phase, st.Message = Withdrawn, fmt.Sprintf("withdrawn by %s: %s", actor.Name, reason)
		if err := saveStatus(ctx, tx, rec, st); err != nil {
			return err
		}
		out, err = tx.Get(ctx, Kind, name)
		return err
	})
	return out, err
}

// RunOnce applies the approved changes whose deployment window has opened
// and supersedes those whose flag changed meanwhile. It returns how many
// it applied.
func (s *Service) RunOnce(ctx context.Context) (int, error) {
	waiting, err := s.store.List(ctx, Kind, resource.Selector{{Key: "phase", Op: resource.Equals, Values: []string{string(Approved)}}})
	if err != nil || len(waiting) == 0 {
		return 0, err
	}
	applied := 0
	for _, o := range waiting {
		err := s.store.Write(ctx, s.Actor, func(tx store.Tx) error {
			rec, spec, st, err := load(ctx, tx, o.Metadata.Name)
			if err != nil || st.Phase != Approved {
				return err
			}
			before := st.Message
			if err := s.applyApproved(ctx, tx, rec, spec, &st); err != nil {
				return err
			}
			if st.Phase == Approved && st.Message == before {
				return nil // still closed: write nothing
			}
			if st.Phase == Applied {
				applied++
			}
			return saveStatus(ctx, tx, rec, st)
		})
		if err != nil {
			return applied, fmt.Errorf("flag change %s: %w", o.Metadata.Name, err)
		}
	}
	if applied > 0 {
		s.applied()
	}
	return applied, nil
}

// Loop runs RunOnce every interval until ctx ends, logging nothing: the
// changes it applies are audited.
func (s *Service) Loop(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.RunOnce(ctx); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// ApplyPlanned applies, in tx, a change a progressive release plan makes
// as one of its steps. Where the environment needs approvals, the plan is
// approved by approving its first step (PlanGuard proposes it): until then
// the error wraps ErrAwaitingApproval; after, steps skip approvals. No step
// skips a closed deployment window (the error then wraps ErrWindowClosed).
func ApplyPlanned(ctx context.Context, tx store.Tx, actor store.Actor, plan, flagName string, next flag.Spec, note string) error {
	cur, err := tx.Get(ctx, flag.KindName, flagName)
	if err != nil {
		return fmt.Errorf("flag %s: %w", flagName, err)
	}
	if err := flag.Validate(next); err != nil {
		return err
	}
	var now flag.Spec
	if err := cur.DecodeSpec(&now); err != nil {
		return err
	}
	if err := planGate(ctx, tx, plan, flagName, now); err != nil {
		return err
	}
	if jsonEqual(now, next) {
		return nil // the approved start change already applied this step
	}
	obj := cur.DeepCopy()
	if err := obj.SetSpec(next); err != nil {
		return err
	}
	_, err = Propose(ctx, tx, actor, Request{Current: cur, Next: obj, Reason: note, Origin: "plan " + plan, Preapproved: "plan " + plan})
	return err
}
