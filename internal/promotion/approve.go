package promotion

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Vote is one person's approval or rejection of a promotion.
type Vote struct {
	Promotion string
	Decision  approval.Decision
	Reason    string
	// Roles are the roles the caller holds for the promotion's target
	// environment; the API fills them from the caller's grants.
	Roles []string
}

// Target returns the environment a promotion moves into, so the caller can
// be authorized for it before voting.
func (s *Service) Target(ctx context.Context, promo string) (string, error) {
	obj, err := s.store.Get(ctx, Kind, promo)
	if err != nil {
		return "", fmt.Errorf("promotion %s: %w", promo, err)
	}
	var spec Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		return "", err
	}
	return spec.To, nil
}

// Vote records actor's approval or rejection of a promotion and re-judges
// the release's open promotions in the same transaction, so an approval
// that completes the policy promotes at once. It refuses, changing
// nothing: an empty reason, a finished promotion, a vote by the release's
// creator or the promotion's requester, a caller holding none of the
// required roles for the environment, and a second vote by the same person
// on the same digest and policy revision (store.ErrConflict).
func (s *Service) Vote(ctx context.Context, actor store.Actor, v Vote) (*resource.Object, error) {
	out, err := s.vote(ctx, actor, v)
	if err != nil && refused(err) {
		// The attempt changed nothing, but it is recorded: who tried to
		// approve or reject what, and why airlock refused.
		rec := store.Actor{Name: actor.Name, Reason: fmt.Sprintf("%s refused: %v", v.Decision, err)}
		if aerr := s.store.Write(ctx, rec, func(tx store.Tx) error {
			return tx.Record(ctx, "refused-"+string(v.Decision), Kind, v.Promotion, "")
		}); aerr != nil {
			return nil, fmt.Errorf("%w (and recording the refused attempt failed: %v)", err, aerr)
		}
	}
	return out, err
}

// refused reports whether err is airlock saying no (as opposed to a
// failure): those attempts are audited.
func refused(err error) bool {
	var pe *PolicyError
	var ie *InvalidError
	return errors.As(err, &pe) || errors.As(err, &ie) || errors.Is(err, store.ErrConflict)
}

func (s *Service) vote(ctx context.Context, actor store.Actor, v Vote) (*resource.Object, error) {
	v.Reason = strings.TrimSpace(v.Reason)
	switch {
	case v.Reason == "":
		return nil, &InvalidError{Msg: "a reason is required (--reason TEXT)"}
	case len(v.Reason) > 2000:
		return nil, &InvalidError{Msg: "the reason is longer than 2000 characters"}
	case v.Decision != approval.Approve && v.Decision != approval.Reject:
		return nil, &InvalidError{Msg: fmt.Sprintf("decision %q must be approve or reject", v.Decision)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, Kind, v.Promotion)
		if err != nil {
			return fmt.Errorf("promotion %s: %w", v.Promotion, err)
		}
		var spec Spec
		if err := obj.DecodeSpec(&spec); err != nil {
			return err
		}
		var st Status
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		if st.Phase.judged() {
			return &PolicyError{Msg: fmt.Sprintf("promotion %s already finished (%s); there is nothing left to %s", v.Promotion, st.Phase, v.Decision)}
		}
		rel, err := tx.Get(ctx, "Release", spec.Release)
		if err != nil {
			return fmt.Errorf("release %s: %w", spec.Release, err)
		}
		var relSpec release.Spec
		if err := rel.DecodeSpec(&relSpec); err != nil {
			return err
		}
		if err := mayNotVote(actor.Name, spec, relSpec, v.Decision); err != nil {
			return err
		}
		require, rev, err := requiredRoles(ctx, tx, spec)
		if err != nil {
			return err
		}
		if len(require) == 0 {
			return &PolicyError{Msg: fmt.Sprintf("the transition to %s in pipeline %s has no approvals gate; nothing to %s", spec.To, spec.Pipeline, v.Decision)}
		}
		var roles []string
		for _, r := range v.Roles {
			if _, ok := require[r]; ok && !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		sort.Strings(roles)
		if len(roles) == 0 {
			return &PolicyError{Msg: fmt.Sprintf("%s holds none of the roles this promotion needs (%s) for environment %s", actor.Name, strings.Join(sortedKeys(require), ", "), spec.To)}
		}
		name := approval.Name(v.Promotion, actor.Name, relSpec.Artifact.Digest, rev)
		if _, err := tx.Get(ctx, approval.Kind, name); err == nil {
			return fmt.Errorf("%s already voted on promotion %s for this artifact and policy revision: %w", actor.Name, v.Promotion, store.ErrConflict)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rec := &resource.Object{APIVersion: resource.APIVersion, Kind: approval.Kind, Metadata: resource.Metadata{Name: name, Labels: map[string]string{
			"promotion": v.Promotion, "release": spec.Release,
		}}}
		if err := rec.SetSpec(approval.Spec{
			Promotion: v.Promotion, Release: spec.Release, Digest: relSpec.Artifact.Digest, PolicyRevision: rev,
			Approver: actor.Name, Roles: roles, Decision: v.Decision, Reason: v.Reason,
		}); err != nil {
			return err
		}
		if _, err := tx.Create(ctx, rec); err != nil {
			return err
		}
		if err := s.Reevaluate(ctx, tx, spec.Release); err != nil {
			return err
		}
		out, err = tx.Get(ctx, Kind, v.Promotion)
		return err
	})
	return out, err
}

// mayNotVote refuses a vote by someone separation of duties excludes: the
// release's creator, an author of its commit, the promotion's requester.
func mayNotVote(who string, spec Spec, rel release.Spec, d approval.Decision) error {
	switch {
	case who == rel.Creator:
		return &PolicyError{Msg: fmt.Sprintf("%s created release %s and may not %s its promotion; another person holding a required role must", who, spec.Release, d)}
	case slices.Contains(rel.Authors, who):
		return &PolicyError{Msg: fmt.Sprintf("%s authored the commit of release %s and may not %s its promotion; another person holding a required role must", who, spec.Release, d)}
	case who == spec.RequestedBy:
		return &PolicyError{Msg: fmt.Sprintf("%s requested promotion %s and may not %s it; another person holding a required role must", who, Name(spec.Release, spec.To), d)}
	}
	return nil
}

// requiredRoles returns the roles the approvals gates of spec's transition
// require (the largest count of each), and the pipeline revision. An
// emergency promotion requires one emergency approver instead.
func requiredRoles(ctx context.Context, r store.Reader, spec Spec) (map[string]int, int64, error) {
	pipe, err := r.Get(ctx, "Pipeline", spec.Pipeline)
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline %s: %w", spec.Pipeline, err)
	}
	var pipeSpec pipeline.Spec
	if err := pipe.DecodeSpec(&pipeSpec); err != nil {
		return nil, 0, err
	}
	specs, err := pipeSpec.GatesFor(spec.To)
	if err != nil {
		return nil, 0, &PolicyError{Msg: err.Error()}
	}
	if spec.Emergency != nil {
		return map[string]int{approval.EmergencyRole: 1}, pipe.Metadata.Revision, nil
	}
	ev, err := LoadEvidence(ctx, r, spec.Release)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]int{}
	for _, g := range specs {
		if g.Type != approval.GateType {
			continue
		}
		require, _ := approval.EffectiveRequire(g, ev)
		for role, n := range require {
			out[role] = max(out[role], n)
		}
	}
	return out, pipe.Metadata.Revision, nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PendingApprovals lists the promotions that wait for approvals: Pending,
// with an approvals gate pending. With mine, only those who (holding, for
// the target environment, the roles rolesFor returns) could approve:
// holding a required role, neither the release's creator nor the
// requester, and not having voted yet.
func (s *Service) PendingApprovals(ctx context.Context, who string, rolesFor func(env string) []string, mine bool) ([]*resource.Object, error) {
	objs, err := s.store.List(ctx, Kind, nil)
	if err != nil {
		return nil, err
	}
	out := []*resource.Object{}
	for _, o := range objs {
		var st Status
		if err := o.DecodeStatus(&st); err != nil {
			return nil, err
		}
		if st.Phase != Pending || !slices.ContainsFunc(st.Gates, func(r gate.Result) bool {
			return r.Type == approval.GateType && r.Status == gate.StatusPending
		}) {
			continue
		}
		if mine {
			ok, err := s.mayVote(ctx, o, who, rolesFor)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func (s *Service) mayVote(ctx context.Context, o *resource.Object, who string, rolesFor func(env string) []string) (bool, error) {
	var spec Spec
	if err := o.DecodeSpec(&spec); err != nil {
		return false, err
	}
	rel, err := s.store.Get(ctx, "Release", spec.Release)
	if err != nil {
		return false, err
	}
	var relSpec release.Spec
	if err := rel.DecodeSpec(&relSpec); err != nil {
		return false, err
	}
	if mayNotVote(who, spec, relSpec, approval.Approve) != nil {
		return false, nil
	}
	require, rev, err := requiredRoles(ctx, s.store, spec)
	if err != nil {
		return false, err
	}
	if _, err := s.store.Get(ctx, approval.Kind, approval.Name(o.Metadata.Name, who, relSpec.Artifact.Digest, rev)); err == nil {
		return false, nil
	}
	for _, r := range rolesFor(spec.To) {
		if _, ok := require[r]; ok {
			return true, nil
		}
	}
	return false, nil
}
