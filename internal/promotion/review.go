package promotion

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/window"
)

// ReviewSpec is the post-incident review an emergency promotion leaves
// behind: what was promoted, under which incident, who approved it, which
// gates were waived to do it (a "window" among them means it passed a
// freeze), and the approval chain that must review it.
type ReviewSpec struct {
	Promotion   string   `json:"promotion"`
	App         string   `json:"app"`
	Version     string   `json:"version"`
	Environment string   `json:"environment"`
	Incident    string   `json:"incident"`
	Reason      string   `json:"reason"`
	RequestedBy string   `json:"requestedBy"`
	ApprovedBy  []string `json:"approvedBy,omitempty"` // the emergency approver(s)
	WaivedGates []string `json:"waivedGates,omitempty"`
	// PassedFreeze records that the emergency went through a closed
	// deployment window (a freeze): its window gate was waived.
	PassedFreeze bool `json:"passedFreeze,omitempty"`
	// Chain is the transition's usual approval policy (roles and counts),
	// which the emergency replaced by one approval: the same people
	// review it afterwards.
	Chain map[string]int `json:"chain"`
	DueAt time.Time      `json:"dueAt"`
	// FlagChange and Flag are set, in place of Promotion and Version, on
	// the review of an emergency feature-flag change.
	FlagChange string `json:"flagChange,omitempty"`
	Flag       string `json:"flag,omitempty"`
	BreakGlass string `json:"breakGlass,omitempty"` // set, in place of Promotion, on the review of a break-glass use
}

// Subject names what the review is of, for messages: "emergency promotion
// P" or "emergency flag change C of flag F".
func (s ReviewSpec) Subject() string {
	if s.FlagChange != "" {
		return fmt.Sprintf("emergency flag change %s of flag %s", s.FlagChange, s.Flag)
	}
	if s.BreakGlass != "" {
		return fmt.Sprintf("use of break-glass %s in %s", s.BreakGlass, s.Environment)
	}
	return "emergency promotion " + s.Promotion
}

// ReviewPhase is a review's state.
type ReviewPhase string

// Review phases. A review opens with its emergency promotion; it is
// Completed once every role of its chain has signed it off.
const (
	ReviewOpen      ReviewPhase = "Open"
	ReviewCompleted ReviewPhase = "Completed"
)

// Outcome is a reviewer's conclusion about an emergency change.
type Outcome string

// Outcomes, from the mildest: the change stands; it stands but needs
// follow-up work (named in the reason); it must be (or was) reverted.
const (
	OutcomeAccepted Outcome = "accepted"
	OutcomeFollowUp Outcome = "follow-up"
	OutcomeReverted Outcome = "reverted"
)

// Outcomes lists the outcomes, mildest first.
var Outcomes = []Outcome{OutcomeAccepted, OutcomeFollowUp, OutcomeReverted}

// ReviewSignoff is one reviewer's part of a review.
type ReviewSignoff struct {
	Reviewer string    `json:"reviewer"`
	Roles    []string  `json:"roles"` // the chain roles they held for the environment
	Outcome  Outcome   `json:"outcome"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// ReviewStatus is what the system records of a review.
type ReviewStatus struct {
	Phase       ReviewPhase     `json:"phase"`
	Overdue     bool            `json:"overdue"`
	OverdueAt   *time.Time      `json:"overdueAt,omitempty"`
	Signoffs    []ReviewSignoff `json:"signoffs,omitempty"`
	Missing     string          `json:"missing,omitempty"` // e.g. "1 sre"; empty once complete
	Outcome     Outcome         `json:"outcome,omitempty"` // the gravest outcome of the sign-offs
	CompletedAt *time.Time      `json:"completedAt,omitempty"`
}

// defaultChain reviews an emergency on a transition that declares no
// approvals: its technical lead.
var defaultChain = map[string]int{"tech-lead": 1}

// reviewChain is the approval policy the transition asks for outside an
// emergency: every approvals gate that applies (its when condition holds),
// with security-relevant changes adding their security approval.
func reviewChain(gates []gate.Gate, in *gate.Input) map[string]int {
	normal := *in
	normal.Emergency = false
	normal.Extra = nil
	chain := map[string]int{}
	for _, g := range gates {
		s := g.Spec()
		if s.Type != approval.GateType || s.Name == EmergencyGate {
			continue
		}
		if g.Evaluate(&normal).Status == gate.StatusSkipped {
			continue
		}
		require, _ := approval.EffectiveRequire(s, in.Evidence)
		for role, n := range require {
			chain[role] = max(chain[role], n)
		}
	}
	if len(chain) == 0 {
		return maps.Clone(defaultChain)
	}
	return chain
}

func openReview(ctx context.Context, tx store.Tx, promo string, spec Spec, results []gate.Result, chain map[string]int, now time.Time) (string, error) {
	var waived []string
	freeze := false
	for _, r := range results {
		if r.Status == gate.StatusWaived {
			waived = append(waived, r.Gate)
			freeze = freeze || r.Type == window.GateType
		}
	}
	votes, err := loadApprovals(ctx, tx, promo)
	if err != nil {
		return "", err
	}
	var approvedBy []string
	for _, v := range votes {
		if v.Spec.Decision == approval.Approve && slices.Contains(v.Spec.Roles, approval.EmergencyRole) && !slices.Contains(approvedBy, v.Spec.Approver) {
			approvedBy = append(approvedBy, v.Spec.Approver)
		}
	}
	sort.Strings(approvedBy)
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: ReviewKind, Metadata: resource.Metadata{
		Name:   promo,
		Labels: map[string]string{"app": spec.App, "environment": spec.To, "promotion": labelValue(promo), PhaseLabel: string(ReviewOpen)},
	}}
	rs := ReviewSpec{
		Promotion: promo, App: spec.App, Version: spec.Version, Environment: spec.To,
		Incident: spec.Emergency.Incident, Reason: spec.Emergency.Reason, RequestedBy: spec.RequestedBy,
		ApprovedBy: approvedBy, WaivedGates: waived, PassedFreeze: freeze, Chain: chain, DueAt: now.Add(ReviewDue),
	}
	if err := obj.SetSpec(rs); err != nil {
		return "", err
	}
	if err := obj.SetStatus(ReviewStatus{Phase: ReviewOpen, Missing: approval.Describe(chain)}); err != nil {
		return "", err
	}
	if _, err := tx.Create(ctx, obj); err != nil {
		return "", fmt.Errorf("open review for %s: %w", promo, err)
	}
	if _, err := notify.Enqueue(ctx, tx, notify.Event{
		Type:    notify.ReviewDue,
		Subject: fmt.Sprintf("review of emergency promotion %s due by %s", promo, rs.DueAt.UTC().Format(time.RFC3339)),
		Message: fmt.Sprintf("%s %s went to %s as an emergency (incident %s: %s); the approval chain (%s) must review it: airlock review complete %s --outcome accepted|follow-up|reverted --reason TEXT",
			spec.App, spec.Version, spec.To, rs.Incident, rs.Reason, approval.Describe(chain), obj.Metadata.Name),
		Data: map[string]string{"review": obj.Metadata.Name, "promotion": promo, "app": spec.App, "environment": spec.To,
			"incident": rs.Incident, "dueAt": rs.DueAt.UTC().Format(time.RFC3339), "chain": approval.Describe(chain)},
	}); err != nil {
		return "", fmt.Errorf("notify review due for %s: %w", promo, err)
	}
	return obj.Metadata.Name, nil
}

// FlagReview is the review an emergency flag change leaves behind.
type FlagReview struct {
	FlagChange, Flag, App, Environment string
	Incident, Reason, RequestedBy      string
	PassedFreeze                       bool
	Chain                              map[string]int
}

// OpenFlagReview opens, in tx, the review of an emergency flag change,
// due ReviewDue after now, and sends the review.due notification. An
// overdue one blocks the application's promotions like any other.
func OpenFlagReview(ctx context.Context, tx store.Tx, fr FlagReview) (string, error) {
	now := tx.Now()
	chain := fr.Chain
	if len(chain) == 0 {
		chain = maps.Clone(defaultChain)
	}
	obj := &resource.Object{APIVersion: resource.APIVersion, Kind: ReviewKind, Metadata: resource.Metadata{
		Name:   fr.FlagChange,
		Labels: map[string]string{"app": fr.App, "environment": fr.Environment, "flagchange": labelValue(fr.FlagChange), PhaseLabel: string(ReviewOpen)},
	}}
	rs := ReviewSpec{
		App: fr.App, Environment: fr.Environment, Incident: fr.Incident, Reason: fr.Reason, RequestedBy: fr.RequestedBy,
		PassedFreeze: fr.PassedFreeze, Chain: chain, DueAt: now.Add(ReviewDue), FlagChange: fr.FlagChange, Flag: fr.Flag,
	}
	if err := obj.SetSpec(rs); err != nil {
		return "", err
	}
	if err := obj.SetStatus(ReviewStatus{Phase: ReviewOpen, Missing: approval.Describe(chain)}); err != nil {
		return "", err
	}
	if _, err := tx.Create(ctx, obj); err != nil {
		return "", fmt.Errorf("open review for %s: %w", fr.FlagChange, err)
	}
	if _, err := notify.Enqueue(ctx, tx, notify.Event{
		Type:    notify.ReviewDue,
		Subject: fmt.Sprintf("review of %s due by %s", rs.Subject(), rs.DueAt.UTC().Format(time.RFC3339)),
		Message: fmt.Sprintf("flag %s was changed as an emergency (incident %s: %s); the approval chain (%s) must review it: airlock review complete %s --outcome accepted|follow-up|reverted --reason TEXT",
			fr.Flag, fr.Incident, fr.Reason, approval.Describe(chain), obj.Metadata.Name),
		Data: map[string]string{"review": obj.Metadata.Name, "flagChange": fr.FlagChange, "flag": fr.Flag, "app": fr.App, "environment": fr.Environment,
			"incident": fr.Incident, "dueAt": rs.DueAt.UTC().Format(time.RFC3339), "chain": approval.Describe(chain)},
	}); err != nil {
		return "", fmt.Errorf("notify review due for %s: %w", fr.FlagChange, err)
	}
	return obj.Metadata.Name, nil
}

func labelValue(s string) string {
	if len(s) > 63 {
		return s[:63]
	}
	return s
}

// Completion is one reviewer's sign-off of a review.
type Completion struct {
	Review  string
	Outcome Outcome
	Reason  string
	// Roles are the roles the caller holds for the review's environment;
	// the API fills them from the caller's grants.
	Roles []string
}

// ReviewTarget returns the environment a review is about, so the caller
// can be authorized for it.
func (s *Service) ReviewTarget(ctx context.Context, name string) (string, error) {
	obj, err := s.store.Get(ctx, ReviewKind, name)
	if err != nil {
		return "", fmt.Errorf("review %s: %w", name, err)
	}
	var spec ReviewSpec
	if err := obj.DecodeSpec(&spec); err != nil {
		return "", err
	}
	return spec.Environment, nil
}

// Complete records actor's sign-off of a review. The review is Completed
// once the sign-offs cover its chain, one person counting once; its
// outcome is the gravest one given. Completing a review re-judges the
// application's open promotions, which an overdue review may have
// blocked. Refused, changing nothing but audited as refused-review: an
// empty reason, an unknown outcome, a completed review, the emergency's
// requester or approver reviewing it, a caller holding no role of the
// chain that is still missing, and a second sign-off by the same person.
func (s *Service) Complete(ctx context.Context, actor store.Actor, c Completion) (*resource.Object, error) {
	out, err := s.complete(ctx, actor, c)
	if err != nil && refused(err) {
		rec := store.Actor{Name: actor.Name, Reason: fmt.Sprintf("review refused: %v", err)}
		if aerr := s.store.Write(ctx, rec, func(tx store.Tx) error {
			return tx.Record(ctx, "refused-review", ReviewKind, c.Review, "")
		}); aerr != nil {
			return nil, fmt.Errorf("%w (and recording the refused attempt failed: %v)", err, aerr)
		}
	}
	return out, err
}

func (s *Service) complete(ctx context.Context, actor store.Actor, c Completion) (*resource.Object, error) {
	c.Reason = strings.TrimSpace(c.Reason)
	switch {
	case c.Reason == "":
		return nil, &InvalidError{Msg: "a reason is required (--reason TEXT): what the review found"}
	case len(c.Reason) > 4000:
		return nil, &InvalidError{Msg: "the reason is longer than 4000 characters"}
	case !slices.Contains(Outcomes, c.Outcome):
		return nil, &InvalidError{Msg: fmt.Sprintf("outcome %q is not one of accepted, follow-up, reverted (--outcome)", c.Outcome)}
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, ReviewKind, c.Review)
		if err != nil {
			return fmt.Errorf("review %s: %w", c.Review, err)
		}
		var spec ReviewSpec
		var st ReviewStatus
		if err := obj.DecodeSpec(&spec); err != nil {
			return err
		}
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		switch {
		case st.Phase == ReviewCompleted:
			return &PolicyError{Msg: fmt.Sprintf("review %s is already complete (outcome %s)", c.Review, st.Outcome)}
		case actor.Name == spec.RequestedBy:
			return &PolicyError{Msg: fmt.Sprintf("%s requested the %s and may not review it; the approval chain (%s) must", actor.Name, spec.Subject(), approval.Describe(spec.Chain))}
		case slices.Contains(spec.ApprovedBy, actor.Name):
			return &PolicyError{Msg: fmt.Sprintf("%s approved the %s and may not review their own decision; the approval chain (%s) must", actor.Name, spec.Subject(), approval.Describe(spec.Chain))}
		case slices.ContainsFunc(st.Signoffs, func(so ReviewSignoff) bool { return so.Reviewer == actor.Name }):
			return fmt.Errorf("%s already signed off review %s: %w", actor.Name, c.Review, store.ErrConflict)
		}
		var roles []string
		for _, r := range c.Roles {
			if spec.Chain[r] > 0 && !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		sort.Strings(roles)
		if len(roles) == 0 {
			return &PolicyError{Msg: fmt.Sprintf("%s holds none of the roles of the review's chain (%s) for environment %s", actor.Name, approval.Describe(spec.Chain), spec.Environment)}
		}
		// A sign-off must be able to fill a slot still open: otherwise it
		// adds a name without adding a reviewer the chain lacks.
		before := coverage(spec.Chain, st.Signoffs)
		now := tx.Now()
		st.Signoffs = append(st.Signoffs, ReviewSignoff{Reviewer: actor.Name, Roles: roles, Outcome: c.Outcome, Reason: c.Reason, At: now})
		after := coverage(spec.Chain, st.Signoffs)
		if total(after) == total(before) {
			return &PolicyError{Msg: fmt.Sprintf("the chain's slots for %s are already signed off (still missing: %s); another reviewer must", strings.Join(roles, ", "), approval.Describe(before))}
		}
		st.Missing = approval.Describe(after)
		st.Outcome = gravest(st.Signoffs)
		if total(after) == 0 {
			st.Phase, st.CompletedAt = ReviewCompleted, &now
			if obj.Metadata.Labels == nil {
				obj.Metadata.Labels = map[string]string{}
			}
			obj.Metadata.Labels[PhaseLabel] = string(ReviewCompleted)
		}
		if err := obj.SetStatus(st); err != nil {
			return err
		}
		obj.Metadata.Revision = 0
		if out, err = tx.Update(ctx, obj); err != nil {
			return err
		}
		if st.Phase == ReviewCompleted && st.Overdue {
			return s.reevaluateApp(ctx, tx, spec.App)
		}
		return nil
	})
	return out, err
}

// coverage returns, per chain role, how many slots the sign-offs leave open.
func coverage(chain map[string]int, signoffs []ReviewSignoff) map[string]int {
	holders := make([]approval.Holder, len(signoffs))
	for i, so := range signoffs {
		holders[i] = approval.Holder{Name: so.Reviewer, Roles: so.Roles}
	}
	_, missing := approval.Match(chain, holders)
	return missing
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func gravest(signoffs []ReviewSignoff) Outcome {
	g := 0
	for _, so := range signoffs {
		g = max(g, slices.Index(Outcomes, so.Outcome))
	}
	return Outcomes[g]
}

// reevaluateApp re-judges every open promotion of an application inside tx.
func (s *Service) reevaluateApp(ctx context.Context, tx store.Tx, app string) error {
	for _, phase := range []Phase{Pending, Blocked} {
		objs, err := tx.List(ctx, Kind, resource.Selector{
			{Key: "app", Op: resource.Equals, Values: []string{app}},
			{Key: PhaseLabel, Op: resource.Equals, Values: []string{string(phase)}},
		})
		if err != nil {
			return err
		}
		for _, o := range objs {
			if _, err := s.evaluate(ctx, tx, o, false); err != nil {
				return fmt.Errorf("re-evaluate %s: %w", o.Metadata.Name, err)
			}
		}
	}
	return nil
}

// FlagOverdue marks every open review past its deadline as overdue, each
// change audited as actor, notifies it, and re-judges the application's
// open promotions (an overdue review blocks them where the policy says
// so). It returns how many it flagged. Reconcilers call it on a timer with
// an injected clock.
func (s *Service) FlagOverdue(ctx context.Context, actor store.Actor) (int, error) {
	// Reviews are few (one per emergency), so they are read whole; the
	// phase is checked on each.
	var openSel resource.Selector
	// Most ticks find nothing to do: look before taking a write slot.
	open, err := s.store.List(ctx, ReviewKind, openSel)
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(open, func(o *resource.Object) bool {
		var st ReviewStatus
		return o.DecodeStatus(&st) == nil && st.Phase == ReviewOpen && !st.Overdue
	}) {
		return 0, nil
	}
	n := 0
	err = s.store.Write(ctx, actor, func(tx store.Tx) error {
		n = 0
		objs, err := tx.List(ctx, ReviewKind, openSel)
		if err != nil {
			return err
		}
		apps := map[string]bool{}
		for _, o := range objs {
			var spec ReviewSpec
			var st ReviewStatus
			if err := o.DecodeSpec(&spec); err != nil {
				return err
			}
			if err := o.DecodeStatus(&st); err != nil {
				return err
			}
			now := tx.Now()
			if st.Phase != ReviewOpen || st.Overdue || now.Before(spec.DueAt) {
				continue
			}
			st.Overdue, st.OverdueAt = true, &now
			if err := o.SetStatus(st); err != nil {
				return err
			}
			o.Metadata.Revision = 0
			if _, err := tx.Update(ctx, o); err != nil {
				return err
			}
			if _, err := notify.Enqueue(ctx, tx, notify.Event{
				Type:    notify.ReviewOverdue,
				Subject: fmt.Sprintf("review of %s is overdue", spec.Subject()),
				Message: fmt.Sprintf("the review of %s in %s (incident %s) was due %s and is not complete; still missing: %s", spec.Subject(), spec.Environment, spec.Incident, spec.DueAt.UTC().Format(time.RFC3339), st.Missing),
				Data:    map[string]string{"review": o.Metadata.Name, "promotion": spec.Promotion, "app": spec.App, "environment": spec.Environment, "incident": spec.Incident, "dueAt": spec.DueAt.UTC().Format(time.RFC3339), "missing": st.Missing},
			}); err != nil {
				return fmt.Errorf("notify overdue review %s: %w", o.Metadata.Name, err)
			}
			apps[spec.App] = true
			n++
		}
		for _, app := range slices.Sorted(maps.Keys(apps)) {
			if err := s.reevaluateApp(ctx, tx, app); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// overdueReviews returns the open, overdue reviews of an application, for
// the reviews gate.
func overdueReviews(ctx context.Context, r store.Reader, app string) ([]OverdueReview, error) {
	objs, err := r.List(ctx, ReviewKind, resource.Selector{{Key: "app", Op: resource.Equals, Values: []string{app}}})
	if err != nil {
		return nil, fmt.Errorf("list reviews of %s: %w", app, err)
	}
	out := []OverdueReview{}
	for _, o := range objs {
		var spec ReviewSpec
		var st ReviewStatus
		if err := o.DecodeSpec(&spec); err != nil {
			return nil, err
		}
		if err := o.DecodeStatus(&st); err != nil {
			return nil, err
		}
		if st.Phase == ReviewOpen && st.Overdue {
			out = append(out, OverdueReview{Name: o.Metadata.Name, Subject: spec.Subject(), Promotion: spec.Promotion, Incident: spec.Incident, DueAt: spec.DueAt, Missing: st.Missing})
		}
	}
	return out, nil
}
