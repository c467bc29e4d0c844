package change

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// GateType is the gate this package registers: the transition needs an
// approved change request for the release and the target environment.
const GateType = "changeRequest"

// DefaultRequire is who approves an internal change request when the gate
// does not say: one tech lead.
var DefaultRequire = map[string]int{"tech-lead": 1}

func init() {
	gate.Register(GateType, buildGate)
}

// Policy is how an internal change request is approved.
type Policy struct {
	Require map[string]int
	MaxAge  time.Duration // how long an approval counts
}

// policyOf reads a changeRequest gate's policy; s must be valid.
func policyOf(s gate.Spec) Policy {
	p := Policy{Require: s.Require, MaxAge: approval.MaxAge}
	if len(p.Require) == 0 {
		p.Require = DefaultRequire
	}
	if d, err := time.ParseDuration(s.MaxAge); err == nil {
		p.MaxAge = d
	}
	return p
}

// PolicyFor returns the approval policy of change requests for app into
// env: that of the changeRequest gate of the transition, or the default
// when the transition declares none.
func PolicyFor(ctx context.Context, r store.Reader, app, env string) (Policy, error) {
	obj, err := r.Get(ctx, "Application", app)
	if err != nil {
		return Policy{}, fmt.Errorf("application %s: %w", app, err)
	}
	var appSpec application.Spec
	if err := obj.DecodeSpec(&appSpec); err != nil {
		return Policy{}, err
	}
	pipe, err := r.Get(ctx, "Pipeline", appSpec.Pipeline)
	if err != nil {
		return Policy{}, fmt.Errorf("pipeline %s: %w", appSpec.Pipeline, err)
	}
	var ps pipeline.Spec
	if err := pipe.DecodeSpec(&ps); err != nil {
		return Policy{}, err
	}
	specs, err := ps.GatesFor(env)
	if err != nil {
		return Policy{}, &PolicyError{Msg: err.Error()}
	}
	for _, s := range specs {
		if s.Type == GateType {
			return policyOf(s), nil
		}
	}
	return Policy{Require: DefaultRequire, MaxAge: approval.MaxAge}, nil
}

// Parties are the people separation of duties keeps from approving.
type Parties struct {
	ReleaseCreator string
	Authors        []string
	Requester      string // the promotion's requester, when known
}

// Verdict is what a change request amounts to under a policy.
type Verdict struct {
	Phase      Phase
	Have       string   // e.g. "tech-lead alice"
	Missing    string   // e.g. "1 tech-lead approval"
	Ignored    []string // votes that do not count, and why
	Rejections []string
}

// Judge decides an internal change request's phase from its votes: a vote
// counts when it is at most p.MaxAge old at now and comes from neither
// whoever raised the request, the release's creator, an author of its
// commit, nor the promotion's requester; one person fills one role slot;
// a counting rejection rejects it. A closed request stays closed; an
// external one is what its system last answered.
func Judge(p Policy, cr Request, parties Parties, now time.Time) Verdict {
	if cr.Status.Phase == Closed {
		return Verdict{Phase: Closed}
	}
	if cr.Spec.External != nil {
		c := cr.Status.External
		switch {
		case c == nil:
			return Verdict{Phase: Open, Missing: fmt.Sprintf("confirmation by %s of %s", cr.Spec.External.System, cr.Spec.External.Key)}
		case c.Approved:
			return Verdict{Phase: Approved, Have: fmt.Sprintf("%s says %s is approved", cr.Spec.External.System, cr.Spec.External.Key)}
		case strings.EqualFold(c.State, "rejected"):
			return Verdict{Phase: Rejected, Rejections: []string{fmt.Sprintf("%s rejected %s: %s", cr.Spec.External.System, cr.Spec.External.Key, c.Message)}}
		}
		return Verdict{Phase: Open, Missing: fmt.Sprintf("approval of %s in %s (state %q)", cr.Spec.External.Key, cr.Spec.External.System, c.State)}
	}
	var v Verdict
	var holders []approval.Holder
	for _, vote := range cr.Status.Votes {
		who := vote.Approver
		switch {
		case who == cr.Spec.RaisedBy:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s raised the change request and may not approve it", who))
			continue
		case who == parties.ReleaseCreator:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s created the release and may not approve its change", who))
			continue
		case slices.Contains(parties.Authors, who):
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s authored the release's commit and may not approve its change", who))
			continue
		case parties.Requester != "" && who == parties.Requester:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s requested the promotion and may not approve its change", who))
			continue
		case now.Sub(vote.At) > p.MaxAge:
			v.Ignored = append(v.Ignored, fmt.Sprintf("the vote of %s expired (given %s, valid %s)", who, vote.At.UTC().Format(time.RFC3339), p.MaxAge))
			continue
		}
		var held []string
		for _, r := range vote.Roles {
			if p.Require[r] > 0 {
				held = append(held, r)
			}
		}
		if len(held) == 0 {
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s holds none of the required roles (%s)", who, approval.Describe(p.Require)))
			continue
		}
		if vote.Decision == Reject {
			v.Rejections = append(v.Rejections, fmt.Sprintf("rejected by %s (%s): %s", who, strings.Join(held, ", "), vote.Reason))
			continue
		}
		holders = append(holders, approval.Holder{Name: who, Roles: held})
	}
	have, missing := approval.Match(p.Require, holders)
	v.Have, v.Missing = strings.Join(have, ", "), approval.DescribeMissing(missing)
	switch {
	case len(v.Rejections) > 0:
		v.Phase = Rejected
	case v.Missing == "":
		v.Phase = Approved
	default:
		v.Phase = Open
	}
	return v
}

type crGate struct {
	spec   gate.Spec
	policy Policy
	when   *gate.Condition
}

func buildGate(s gate.Spec) (gate.Gate, error) {
	for _, f := range gate.SetFields(s) {
		if f != "require" && f != "maxAge" {
			return nil, &gate.FieldError{Field: f, Msg: f + " does not apply to a changeRequest gate, which takes only name, message, require, maxAge and when"}
		}
	}
	if s.RequireTrusted != nil {
		return nil, &gate.FieldError{Field: "requireTrusted", Msg: "requireTrusted does not apply to a changeRequest gate"}
	}
	for role, n := range s.Require {
		if n < 1 || n > 10 {
			return nil, &gate.FieldError{Field: "require." + role, Msg: fmt.Sprintf("the count of %s approvals must be from 1 to 10, got %d", role, n)}
		}
	}
	if s.MaxAge != "" {
		d, err := time.ParseDuration(s.MaxAge)
		if err != nil || d < approval.MinMaxAge || d > approval.MaxMaxAge {
			return nil, &gate.FieldError{Field: "maxAge", Msg: fmt.Sprintf("maxAge %q must be a duration from 1m to 720h, e.g. 72h", s.MaxAge)}
		}
	}
	if s.Name == "" {
		s.Name = s.DefaultName()
	} else if err := resource.ValidateName(s.Name); err != nil {
		return nil, &gate.FieldError{Field: "name", Msg: "gate " + err.Error()}
	}
	g := &crGate{spec: s, policy: policyOf(s)}
	if s.When != "" {
		c, err := gate.CompileCondition(s.When)
		if err != nil {
			return nil, &gate.FieldError{Field: "when", Msg: err.Error()}
		}
		g.when = c
	}
	return g, nil
}

func (g *crGate) Spec() gate.Spec { return g.spec }

// Evaluate passes when one change request for the release and the target
// environment is approved; it waits while one is open or none exists, and
// fails when every one was rejected (a new one may be raised). An
// emergency waives it; the review lists it.
func (g *crGate) Evaluate(in *gate.Input) gate.Result {
	r := gate.Result{Gate: g.spec.Name, Type: GateType}
	if !g.when.Applies(in, &r) {
		return r
	}
	crs, ok := in.Extra[GateType].([]Request)
	if in.Extra[GateType] != nil && !ok {
		r.Status, r.Reasons, r.Fix = gate.StatusFail, []string{fmt.Sprintf("the change requests were handed to the gate as %T", in.Extra[GateType])}, "report this as a bug in airlock"
		return r
	}
	create := fmt.Sprintf("airlock change create %s %s --env %s --summary TEXT --risk low|medium|high --rollback-plan TEXT [--external SYSTEM:KEY]", in.App, in.Release.Version, in.To)
	parties := Parties{ReleaseCreator: in.Release.Creator, Authors: in.Release.Authors, Requester: in.RequestedBy}
	var open, rejected []string
	for _, cr := range crs {
		v := Judge(g.policy, cr, parties, in.Now)
		switch v.Phase {
		case Approved:
			r.Status = gate.StatusPass
			r.Reasons = []string{fmt.Sprintf("change request %s (%s risk) approved: %s", cr.Name, cr.Spec.Risk, v.Have)}
			return r
		case Open:
			line := fmt.Sprintf("change request %s (%s risk) needs %s", cr.Name, cr.Spec.Risk, v.Missing)
			if v.Have != "" {
				line += "; have: " + v.Have
			}
			open = append(open, line)
			open = append(open, v.Ignored...)
		case Rejected:
			rejected = append(rejected, fmt.Sprintf("change request %s: %s", cr.Name, strings.Join(v.Rejections, "; ")))
		}
	}
	if g.spec.Message != "" {
		r.Reasons = append(r.Reasons, g.spec.Message)
	}
	switch {
	case len(open) > 0:
		r.Status = gate.StatusPending
		r.Reasons = append(r.Reasons, open...)
		r.Reasons = append(r.Reasons, rejected...)
		r.Fix = "airlock change approve <change-request> --reason TEXT (by " + approval.Describe(g.policy.Require) + "), or for an external one: airlock change confirm <change-request>"
	case len(rejected) > 0:
		r.Status = gate.StatusFail
		r.Reasons = append(r.Reasons, rejected...)
		r.Fix = "answer the rejection and raise a new change request: " + create
	default:
		r.Status = gate.StatusPending
		r.Reasons = append(r.Reasons, fmt.Sprintf("no change request for %s %s into %s", in.App, in.Release.Version, in.To))
		r.Fix = create
	}
	return r
}
