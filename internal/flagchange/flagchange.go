// Package flagchange is the change control of feature flags: every write
// of a Flag (apply, airlock flags set, a progressive plan's step, a
// deletion) goes through Service.Propose, which records it as a
// FlagChange holding the flag's spec before and after.
//
// Where the environment's policy asks for approvals (always for a
// production-tier environment), the change waits, Pending, until people
// holding the required roles approve it — never the person who proposed
// it — and then applies, unless a deployment window is closed, in which
// case it waits, Approved, for the window to open. Where no approval is
// needed it applies at once, again unless a window is closed. An emergency
// turns a kill switch off or on at once, whatever the approvals and
// windows, under an open incident, and leaves a post-emergency review.
//
// A change applies only onto the flag as it was proposed against: a flag
// whose spec changed in between supersedes it. Each flag write is audited with
// a note naming the change and what it changed.
package flagchange

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/window"
)

// Kind is the kind of a flag change record.
const Kind = "FlagChange"

// MaxReason bounds the free text of a change, a vote and a withdrawal.
const MaxReason = 2000

// DefaultRequire is who approves a production flag change when neither the
// environment nor the application's pipeline says: one tech lead.
var DefaultRequire = map[string]int{"tech-lead": 1}

// Operation is what a change does to its flag.
type Operation string

// Operations.
const (
	Create Operation = "create"
	Update Operation = "update"
	Delete Operation = "delete"
)

// Phase is where a change stands.
type Phase string

// Phases. Pending waits for approvals; Approved has them and waits for a
// deployment window; Applied is done; Rejected, Superseded (the flag
// changed since it was proposed) and Withdrawn are final.
const (
	Pending    Phase = "Pending"
	Approved   Phase = "Approved"
	Applied    Phase = "Applied"
	Rejected   Phase = "Rejected"
	Superseded Phase = "Superseded"
	Withdrawn  Phase = "Withdrawn"
)

// Final reports whether nothing more happens to a change in phase p.
func (p Phase) Final() bool { return p != Pending && p != Approved }

// Spec is what a change does: the flag's spec before and after.
type Spec struct {
	Flag        string    `json:"flag"`
	App         string    `json:"app"`
	Environment string    `json:"environment"`
	Key         string    `json:"key"`
	Operation   Operation `json:"operation"`
	// Before is nil for a create, After for a delete.
	Before *flag.Spec `json:"before,omitempty"`
	After  *flag.Spec `json:"after,omitempty"`
	// Labels are the flag object's labels after the change.
	Labels map[string]string `json:"labels,omitempty"`
	// BaseRevision is the flag's revision the change was made against (0
	// for a create): it applies only onto that revision.
	BaseRevision int64  `json:"baseRevision"`
	Summary      string `json:"summary"`
	ProposedBy   string `json:"proposedBy"`
	Reason       string `json:"reason,omitempty"`
	// Origin says how the change came: apply, set, delete, or plan NAME.
	Origin    string     `json:"origin"`
	Emergency *Emergency `json:"emergency,omitempty"`
}

// Emergency is why a change skipped approvals and windows.
type Emergency struct {
	Incident string `json:"incident"`
	Reason   string `json:"reason"`
}

// Vote is one person's decision on a change.
type Vote struct {
	Approver string    `json:"approver"`
	Roles    []string  `json:"roles"` // the required roles they held for the environment
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Decisions.
const (
	Approve = "approve"
	Reject  = "reject"
)

// Status is what airlock records of a change.
type Status struct {
	Phase Phase `json:"phase"`
	// Require and MaxAge are the policy the change was proposed under.
	Require map[string]int `json:"require,omitempty"`
	MaxAge  string         `json:"maxAge,omitempty"`
	Votes   []Vote         `json:"votes,omitempty"`
	Have    string         `json:"have,omitempty"`
	Missing string         `json:"missing,omitempty"`
	// Message says what the change waits for, or why it ended.
	Message         string     `json:"message,omitempty"`
	AppliedAt       *time.Time `json:"appliedAt,omitempty"`
	AppliedRevision int64      `json:"appliedRevision,omitempty"`
	// Review names the post-emergency review an emergency change left.
	Review string `json:"review,omitempty"`
	// PassedFreeze records an emergency applied through a closed window.
	PassedFreeze bool `json:"passedFreeze,omitempty"`
}

// Register adds the FlagChange kind to s. It is not declarative: changes
// are made through flag writes and their own endpoints.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: Kind, Plural: "flagchanges", Aliases: []string{"flagchange", "fc"}, NewSpec: func() any { return &Spec{} }})
}

// Policy is how an environment's flag changes are controlled.
type Policy struct {
	Require map[string]int // empty: changes apply without approval
	MaxAge  time.Duration
	Windows bool // deployment windows apply
	// Source says where Require came from, for messages.
	Source string
}

// PolicyFor returns the policy of flag changes of app in env: the
// environment's spec.flagChanges.approvals; else, for a production-tier
// environment, the approvals gates of the application's transition into
// env, or DefaultRequire; else no approvals.
func PolicyFor(ctx context.Context, r store.Reader, app, env string) (Policy, error) {
	obj, err := r.Get(ctx, "Environment", env)
	if err != nil {
		return Policy{}, fmt.Errorf("environment %s: %w", env, err)
	}
	var es environment.Spec
	if err := obj.DecodeSpec(&es); err != nil {
		return Policy{}, err
	}
	p := Policy{MaxAge: approval.MaxAge, Windows: true}
	if fc := es.FlagChanges; fc != nil {
		p.Windows = !fc.IgnoreWindows
		if d, err := time.ParseDuration(fc.MaxAge); err == nil && fc.MaxAge != "" {
			p.MaxAge = d
		}
		if len(fc.Approvals) > 0 {
			p.Require, p.Source = maps.Clone(fc.Approvals), "environment "+env+" spec.flagChanges.approvals"
			return p, nil
		}
	}
	if !es.IsProduction() {
		return p, nil
	}
	require, err := pipelineApprovals(ctx, r, app, env)
	if err != nil {
		return Policy{}, err
	}
	if len(require) > 0 {
		p.Require, p.Source = require, "the approvals gates of "+app+"'s transition into "+env
		return p, nil
	}
	p.Require, p.Source = maps.Clone(DefaultRequire), "the default for a production environment"
	return p, nil
}

// pipelineApprovals is the union (largest count per role) of the approvals
// gates on app's transition into env, or nil when app or its pipeline is
// not declared or the transition has none.
func pipelineApprovals(ctx context.Context, r store.Reader, app, env string) (map[string]int, error) {
	obj, err := r.Get(ctx, "Application", app)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var as application.Spec
	if err := obj.DecodeSpec(&as); err != nil {
		return nil, err
	}
	pipe, err := r.Get(ctx, "Pipeline", as.Pipeline)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var ps pipeline.Spec
	if err := pipe.DecodeSpec(&ps); err != nil {
		return nil, err
	}
	gates, err := ps.GatesFor(env)
	if err != nil {
		return nil, nil // env is not on the pipeline: no transition into it
	}
	var out map[string]int
	for _, g := range gates {
		if g.Type != approval.GateType {
			continue
		}
		require, _ := approval.EffectiveRequire(g, nil)
		for role, n := range require {
			if out == nil {
				out = map[string]int{}
			}
			out[role] = max(out[role], n)
		}
	}
	return out, nil
}

// ErrWindowClosed is wrapped by the error of a change a closed deployment
// window holds back.
var ErrWindowClosed = errors.New("deployment window closed")

// windowError is a change refused, or held, by a closed window.
type windowError struct{ msg string }

func (e *windowError) Error() string { return e.msg }
func (e *windowError) Unwrap() error { return ErrWindowClosed }

// closedError is a change refused by a closed window: a policy refusal
// (422) that also wraps ErrWindowClosed.
type closedError struct{ policy *catalog.PolicyError }

func (e *closedError) Error() string   { return e.policy.Msg }
func (e *closedError) Unwrap() []error { return []error{e.policy, ErrWindowClosed} }

// windowOpen checks the deployment windows for app in env at now. It
// returns nil when flag changes may happen, or a *windowError saying which
// window is closed and until when.
func windowOpen(ctx context.Context, r store.Reader, app, env string, now time.Time) error {
	ws, err := window.Load(ctx, r)
	if err != nil {
		return err
	}
	d, err := window.Decide(ws, app, env, now)
	if err != nil {
		return err
	}
	if d.Open {
		return nil
	}
	until := "not within the next year"
	if !d.Next.IsZero() {
		until = "until " + d.Next.Format(time.RFC3339)
	}
	return &windowError{msg: fmt.Sprintf("flag changes of %s in %s are %s, %s", app, env, d.Why, until)}
}

// Request is one proposed write of a flag.
type Request struct {
	// Current is the stored flag (nil: the change creates it); Next is
	// the wanted object (nil: the change deletes it).
	Current, Next *resource.Object
	Reason        string
	Origin        string
	Emergency     *Emergency
	// Preapproved names what already approved this change (a progressive
	// plan approved as a whole): it skips approvals, not windows.
	Preapproved string
}

// Outcome is what became of a proposed change.
type Outcome struct {
	Change   string
	Phase    Phase
	Revision int64  // the flag's revision after an applied change
	Message  string // what a pending change waits for
}

// Propose records a change of a flag in tx as actor and, when the policy
// allows, applies it. A closed window refuses a change that needs no
// approval with an error wrapping ErrWindowClosed, and a change that needs
// approval is recorded Pending. The error types are catalog's, so the API
// maps them like apply's.
func Propose(ctx context.Context, tx store.Tx, actor store.Actor, req Request) (Outcome, error) {
	spec, err := specOf(req)
	if err != nil {
		return Outcome{}, err
	}
	pol, err := PolicyFor(ctx, tx, spec.App, spec.Environment)
	if err != nil {
		return Outcome{}, err
	}
	now := tx.Now()
	st := Status{Phase: Pending, MaxAge: pol.MaxAge.String()}
	needApproval := len(pol.Require) > 0 && req.Emergency == nil && req.Preapproved == ""
	if needApproval {
		st.Require = pol.Require
		st.Missing = approval.DescribeMissing(pol.Require)
		st.Message = fmt.Sprintf("awaits %s (%s)", st.Missing, pol.Source)
	} else if req.Emergency == nil && pol.Windows {
		if err := windowOpen(ctx, tx, spec.App, spec.Environment, now); err != nil {
			var we *windowError
			if errors.As(err, &we) {
				return Outcome{}, &closedError{policy: &catalog.PolicyError{Msg: fmt.Sprintf("%s: %s; apply it when the window opens, or, in an emergency, turn the kill switch now (airlock flags set %s --enabled=false --emergency --incident ID --reason TEXT)", spec.Flag, we.msg, spec.Flag)}}
			}
			return Outcome{}, err
		}
	}
	if req.Emergency != nil && pol.Windows {
		st.PassedFreeze = errors.Is(windowOpen(ctx, tx, spec.App, spec.Environment, now), ErrWindowClosed)
	}
	spec.ProposedBy = actor.Name
	obj, err := newRecord(ctx, tx, spec, st)
	if err != nil {
		return Outcome{}, err
	}
	if needApproval {
		return Outcome{Change: obj.Metadata.Name, Phase: Pending, Message: st.Message}, nil
	}
	if req.Preapproved != "" {
		st.Message = "approved as part of " + req.Preapproved
	}
	rev, err := apply(ctx, tx, obj, spec, &st)
	if err != nil {
		return Outcome{}, err
	}
	if req.Emergency != nil {
		chain := pol.Require
		if len(chain) == 0 {
			chain = maps.Clone(DefaultRequire)
		}
		st.Review, err = promotion.OpenFlagReview(ctx, tx, promotion.FlagReview{
			FlagChange: obj.Metadata.Name, Flag: spec.Flag, App: spec.App, Environment: spec.Environment,
			Incident: req.Emergency.Incident, Reason: req.Emergency.Reason, RequestedBy: actor.Name,
			PassedFreeze: st.PassedFreeze, Chain: chain,
		})
		if err != nil {
			return Outcome{}, err
		}
		st.Message = fmt.Sprintf("emergency under incident %s; review %s is due in %s", req.Emergency.Incident, st.Review, promotion.ReviewDue)
	}
	if err := saveStatus(ctx, tx, obj, st); err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: obj.Metadata.Name, Phase: Applied, Revision: rev, Message: st.Message}, nil
}

// specOf builds the record of a request, checking it is a change of one
// flag.
func specOf(req Request) (Spec, error) {
	var s Spec
	var from *resource.Object
	switch {
	case req.Current == nil && req.Next == nil:
		return s, fmt.Errorf("flagchange: a change needs a flag before or after it")
	case req.Current == nil:
		s.Operation, from = Create, req.Next
	case req.Next == nil:
		s.Operation, from = Delete, req.Current
		s.BaseRevision = req.Current.Metadata.Revision
	default:
		s.Operation, from = Update, req.Next
		s.BaseRevision = req.Current.Metadata.Revision
	}
	if req.Current != nil {
		var b flag.Spec
		if err := req.Current.DecodeSpec(&b); err != nil {
			return s, fmt.Errorf("decode stored %s: %w", req.Current.Ref(), err)
		}
		s.Before = &b
	}
	if req.Next != nil {
		var a flag.Spec
		if err := req.Next.DecodeSpec(&a); err != nil {
			return s, &catalog.InvalidError{Msg: fmt.Sprintf("%s: %v", req.Next.Ref(), err)}
		}
		s.After = &a
		s.Labels = req.Next.Metadata.Labels
	}
	cur := s.After
	if cur == nil {
		cur = s.Before
	}
	s.Flag, s.App, s.Environment, s.Key = from.Metadata.Name, cur.App, cur.Environment, cur.Key
	s.Summary = Summarize(s.Before, s.After)
	s.Reason, s.Origin, s.Emergency = strings.TrimSpace(req.Reason), req.Origin, req.Emergency
	if len(s.Reason) > MaxReason {
		return s, &catalog.InvalidError{Msg: fmt.Sprintf("the reason is longer than %d characters", MaxReason)}
	}
	return s, nil
}

// dayLabel is the label that groups the changes proposed on one day, for
// naming.
const dayLabel = "day"

// newRecord creates the FlagChange object, named fch-YYYYMMDD-NNN.
func newRecord(ctx context.Context, tx store.Tx, spec Spec, st Status) (*resource.Object, error) {
	now := tx.Now()
	day := now.UTC().Format("20060102")
	prefix := "fch-" + day + "-"
	same, err := tx.List(ctx, Kind, resource.Selector{{Key: dayLabel, Op: resource.Equals, Values: []string{day}}})
	if err != nil {
		return nil, err
	}
	seq := 0
	for _, o := range same {
		if n, err := strconv.Atoi(strings.TrimPrefix(o.Metadata.Name, prefix)); err == nil && n > seq {
			seq = n
		}
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: Kind, Metadata: resource.Metadata{
		Name: fmt.Sprintf("%s%03d", prefix, seq+1),
		Labels: map[string]string{"flag": spec.Flag, "app": spec.App, "environment": spec.Environment,
			"phase": string(st.Phase), dayLabel: day},
	}}
	if err := obj.SetSpec(spec); err != nil {
		return nil, err
	}
	if err := obj.SetStatus(st); err != nil {
		return nil, err
	}
	return tx.Create(ctx, obj)
}

// apply writes the change's flag (or deletes it), when the flag is still
// at the change's base revision, and marks st Applied; otherwise it marks
// st Superseded and returns a conflict. It returns the flag's new revision.
func apply(ctx context.Context, tx store.Tx, rec *resource.Object, spec Spec, st *Status) (int64, error) {
	cur, err := tx.Get(ctx, flag.KindName, spec.Flag)
	var curRev int64
	var curSpec *flag.Spec
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return 0, err
	default:
		curRev = cur.Metadata.Revision
		curSpec = &flag.Spec{}
		if err := cur.DecodeSpec(curSpec); err != nil {
			return 0, err
		}
	}
	// The flag must be as the change saw it: the same spec (a status
	// write, such as the day it was last evaluated, does not matter).
	if (curSpec == nil) != (spec.Before == nil) || (curSpec != nil && !jsonEqual(*curSpec, *spec.Before)) {
		what := fmt.Sprintf("flag %s changed after change %s was proposed (revision %d then, %d now)", spec.Flag, rec.Metadata.Name, spec.BaseRevision, curRev)
		if curRev == 0 {
			what = fmt.Sprintf("flag %s was deleted after change %s was proposed", spec.Flag, rec.Metadata.Name)
		} else if spec.BaseRevision == 0 {
			what = fmt.Sprintf("flag %s was created after change %s was proposed", spec.Flag, rec.Metadata.Name)
		}
		st.Phase, st.Message = Superseded, what+"; propose it again"
		return 0, fmt.Errorf("%s: %w", what, store.ErrConflict)
	}
	note := store.WithAuditNote(ctx, fmt.Sprintf("flag change %s: %s", rec.Metadata.Name, spec.Summary))
	now := tx.Now()
	var rev int64
	if spec.Operation == Delete {
		if err := tx.Delete(note, flag.KindName, spec.Flag, curRev); err != nil {
			return 0, err
		}
	} else {
		var fs flag.Status
		next := &resource.Object{APIVersion: resource.APIVersion, Kind: flag.KindName, Metadata: resource.Metadata{Name: spec.Flag, Labels: spec.Labels}}
		if cur != nil {
			next = cur.DeepCopy()
			next.Metadata.Labels = spec.Labels
			if err := cur.DecodeStatus(&fs); err != nil {
				return 0, err
			}
		}
		if err := next.SetSpec(spec.After); err != nil {
			return 0, err
		}
		fs.Change = rec.Metadata.Name
		if p, ok := strings.CutPrefix(spec.Origin, "plan "); ok {
			fs.Plan = strings.TrimSuffix(p, " start")
		}
		if v, ok := flag.Uniform(*spec.After); !ok {
			fs.UniformSince, fs.UniformVariant = nil, ""
		} else if fs.UniformSince == nil || fs.UniformVariant != v {
			fs.UniformSince, fs.UniformVariant = &now, v
		}
		if err := next.SetStatus(fs); err != nil {
			return 0, err
		}
		var out *resource.Object
		if cur == nil {
			out, err = tx.Create(note, next)
		} else {
			out, err = tx.Update(note, next)
		}
		if err != nil {
			return 0, err
		}
		rev = out.Metadata.Revision
	}
	st.Phase, st.AppliedAt, st.AppliedRevision = Applied, &now, rev
	return rev, nil
}

// saveStatus writes st (and its phase label) onto the stored record.
func saveStatus(ctx context.Context, tx store.Tx, rec *resource.Object, st Status) error {
	cur, err := tx.Get(ctx, Kind, rec.Metadata.Name)
	if err != nil {
		return err
	}
	cur.Metadata.Labels["phase"] = string(st.Phase)
	cur.Metadata.Revision = 0
	if err := cur.SetStatus(st); err != nil {
		return err
	}
	_, err = tx.Update(ctx, cur)
	return err
}

// Verdict is what a change's votes amount to.
type Verdict struct {
	Have, Missing string
	Rejections    []string
	Ignored       []string
}

// Judge counts a change's votes against its policy at now: a vote counts
// when it comes from someone other than the proposer, is at most maxAge
// old, and is given by a holder of a required role; each person fills one
// role slot; a counting rejection rejects the change.
func Judge(spec Spec, st Status, now time.Time) Verdict {
	var v Verdict
	maxAge, err := time.ParseDuration(st.MaxAge)
	if err != nil || maxAge <= 0 {
		maxAge = approval.MaxAge
	}
	var holders []approval.Holder
	for _, vote := range st.Votes {
		var held []string
		for _, r := range vote.Roles {
			if st.Require[r] > 0 {
				held = append(held, r)
			}
		}
		switch {
		case vote.Approver == spec.ProposedBy:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s proposed the change and may not approve it", vote.Approver))
		case now.Sub(vote.At) > maxAge:
			v.Ignored = append(v.Ignored, fmt.Sprintf("the vote of %s expired (given %s, valid %s)", vote.Approver, vote.At.UTC().Format(time.RFC3339), maxAge))
		case len(held) == 0:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s holds none of the required roles (%s)", vote.Approver, approval.Describe(st.Require)))
		case vote.Decision == Reject:
			v.Rejections = append(v.Rejections, fmt.Sprintf("rejected by %s (%s): %s", vote.Approver, strings.Join(held, ", "), vote.Reason))
		default:
			holders = append(holders, approval.Holder{Name: vote.Approver, Roles: held})
		}
	}
	have, missing := approval.Match(st.Require, holders)
	v.Have, v.Missing = strings.Join(have, ", "), approval.DescribeMissing(missing)
	return v
}

// incidentOpen refuses an emergency without an open incident.
func incidentOpen(ctx context.Context, r store.Reader, name string) error {
	ok, err := incident.IsOpen(ctx, r, name)
	if err != nil {
		return err
	}
	if !ok {
		return &catalog.PolicyError{Msg: fmt.Sprintf("incident %q is not open; an emergency flag change needs an open incident (airlock incident open --severity SEV --summary TEXT)", name)}
	}
	return nil
}
