// Package promotion moves a release from one pipeline stage to the next,
// and only when every gate of that transition passes. A Promotion object
// records each evaluation: the results of every gate, the evidence they
// used, and the revision of the pipeline (the gate policy) they were judged
// by. New evidence re-evaluates open promotions in the same transaction.
//
// There is no way to skip a gate. The one exception path is an emergency
// promotion, which needs an incident and a reason, still runs and still
// blocks on the security gates, and leaves a Review due 24 hours later.
package promotion

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/window"
)

// Kinds this package owns.
const (
	Kind       = "Promotion"
	ReviewKind = "Review"
)

// ReviewDue is how long after an emergency promotion its review is due.
const ReviewDue = 24 * time.Hour

// Spec is what was asked: move a release to an environment.
type Spec struct {
	App         string     `json:"app"`
	Version     string     `json:"version"`
	Release     string     `json:"release"`
	Pipeline    string     `json:"pipeline"`
	From        string     `json:"from,omitempty"` // empty when To is the first stage
	To          string     `json:"to"`
	Emergency   *Emergency `json:"emergency,omitempty"`
	RequestedBy string     `json:"requestedBy"`
	// RollbackPlan is how this deployment is undone: the request's, the
	// application's for the environment, or airlock's rollback command.
	RollbackPlan string `json:"rollbackPlan,omitempty"`
}

// Emergency is the accountable reason for an emergency promotion.
type Emergency struct {
	Incident string `json:"incident"`
	Reason   string `json:"reason"`
}

// Phase is where a promotion stands.
type Phase string

// PhaseLabel is the label that carries a promotion's phase.
const PhaseLabel = "phase"

// Phases. Pending waits for evidence or approvals; Blocked has a
// failing gate; both are re-evaluated when evidence arrives. Succeeded is
// final: the release is admitted to the environment. Rejected is final
// too: a person with a required role said no, and only a new release can
// answer that.
//
// Deploying: every gate passed and a rollout carries the release into the
// environment's runtime; the promotion takes the rollout's outcome:
// Succeeded, or Failed (final: the release did not enter the environment).
const (
	Pending   Phase = "Pending"
	Blocked   Phase = "Blocked"
	Deploying Phase = "Deploying"
	Succeeded Phase = "Succeeded"
	Rejected  Phase = "Rejected"
	Failed    Phase = "Failed"
)

// Finished reports whether a phase is final.
func (p Phase) Finished() bool { return p == Succeeded || p == Rejected || p == Failed }

// judged reports whether the gates were judged for good: a promotion past
// its gates is not re-evaluated.
func (p Phase) judged() bool { return p.Finished() || p == Deploying }

// Status records the latest evaluation.
type Status struct {
	Phase          Phase         `json:"phase"`
	Message        string        `json:"message,omitempty"`
	PolicyRevision int64         `json:"policyRevision"` // the pipeline revision the gates came from
	Gates          []gate.Result `json:"gates"`
	Evaluations    int           `json:"evaluations"`
	EvaluatedAt    time.Time     `json:"evaluatedAt"`
	CompletedAt    *time.Time    `json:"completedAt,omitempty"`
	Review         string        `json:"review,omitempty"`  // the post-emergency Review
	Rollout        string        `json:"rollout,omitempty"` // the Rollout carrying the release into the runtime
}

// Register adds Promotion and Review to a scheme. Neither is declarative:
// they are created through their own endpoints.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{Name: Kind, Plural: "promotions", Aliases: []string{"promotion", "promo"}, NewSpec: func() any { return &Spec{} }})
	s.Register(resource.Kind{Name: ReviewKind, Plural: "reviews", Aliases: []string{"review"}, NewSpec: func() any { return &ReviewSpec{} }})
}

// PolicyError is a promotion airlock refuses to start (a skipped stage, an
// environment outside the pipeline). The API maps it to 422.
type PolicyError struct{ Msg string }

func (e *PolicyError) Error() string { return e.Msg }

// InvalidError is a malformed request. The API maps it to 400.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Request asks to promote a release.
type Request struct {
	App          string     `json:"app"`
	Version      string     `json:"version"`
	To           string     `json:"to"`
	Emergency    *Emergency `json:"emergency,omitempty"`
	RollbackPlan string     `json:"rollbackPlan,omitempty"`
}

// Service runs promotions through the store.
type Service struct {
	store store.Store
}

// New returns a Service over st.
func New(st store.Store) *Service { return &Service{store: st} }

// Name is the Promotion object's name for a release and a target
// environment: one promotion per pair, re-evaluated until it succeeds.
func Name(releaseName, env string) string {
	n := releaseName + ".to." + env
	if len(n) <= resource.MaxNameLength {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return strings.Trim(n[:resource.MaxNameLength-13], "-.") + "-" + hex.EncodeToString(sum[:6])
}

// Request evaluates a promotion and records it. A promotion that is
// blocked or pending is still recorded (and returned without error): its
// status says why, and new evidence re-evaluates it.
func (s *Service) Request(ctx context.Context, actor store.Actor, req Request) (*resource.Object, error) {
	if err := validateRequest(&req); err != nil {
		return nil, err
	}
	var out *resource.Object
	err := s.store.Write(ctx, actor, func(tx store.Tx) error {
		rel, err := tx.Get(ctx, "Release", release.Name(req.App, req.Version))
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("release %s %s does not exist (register it with `airlock release create %s %s ...`): %w", req.App, req.Version, req.App, req.Version, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var relStatus release.Status
		if err := rel.DecodeStatus(&relStatus); err != nil {
			return err
		}
		app, err := tx.Get(ctx, "Application", req.App)
		if err != nil {
			return fmt.Errorf("application %s: %w", req.App, err)
		}
		var appSpec application.Spec
		if err := app.DecodeSpec(&appSpec); err != nil {
			return err
		}
		pipe, err := tx.Get(ctx, "Pipeline", appSpec.Pipeline)
		if err != nil {
			return fmt.Errorf("pipeline %s of application %s: %w", appSpec.Pipeline, req.App, err)
		}
		var pipeSpec pipeline.Spec
		if err := pipe.DecodeSpec(&pipeSpec); err != nil {
			return err
		}
		idx := pipeSpec.Index(req.To)
		if idx < 0 {
			return &PolicyError{Msg: fmt.Sprintf("%s is not a stage of pipeline %s (stages: %s)", req.To, appSpec.Pipeline, strings.Join(pipeSpec.Environments(), " → "))}
		}
		from := ""
		if idx > 0 {
			from = pipeSpec.Stages[idx-1].Environment
			if _, ok := relStatus.Environments[from]; !ok {
				return &PolicyError{Msg: fmt.Sprintf("release %s %s has not completed %s, the stage before %s in pipeline %s; promote it to %s first (stages may not be skipped)",
					req.App, req.Version, from, req.To, appSpec.Pipeline, from)}
			}
		}
		name := Name(rel.Metadata.Name, req.To)
		if adm, ok := relStatus.Environments[req.To]; ok {
			// Asking again for a promotion that already succeeded (a re-run
			// CI job) answers with that promotion and changes nothing.
			if done, err := tx.Get(ctx, Kind, adm.Promotion); err == nil {
				out = done
				return nil
			}
			return fmt.Errorf("release %s %s was already promoted to %s by %s: %w", req.App, req.Version, req.To, adm.Promotion, store.ErrConflict)
		}
		if req.Emergency != nil {
			// An emergency answers a real incident that is still going on.
			open, err := incident.IsOpen(ctx, tx, req.Emergency.Incident)
			if err != nil {
				return err
			}
			if !open {
				return &PolicyError{Msg: fmt.Sprintf("incident %s does not exist or is closed; open one with airlock incident open", req.Emergency.Incident)}
			}
		}

		obj, err := tx.Get(ctx, Kind, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			obj = &resource.Object{APIVersion: resource.APIVersion, Kind: Kind, Metadata: resource.Metadata{Name: name, Labels: map[string]string{
				"app": req.App, "release": rel.Metadata.Name, "environment": req.To,
			}}}
			spec := Spec{App: req.App, Version: req.Version, Release: rel.Metadata.Name, Pipeline: appSpec.Pipeline, From: from, To: req.To, Emergency: req.Emergency, RequestedBy: actor.Name,
				RollbackPlan: rollbackPlan(req, appSpec)}
			if err := obj.SetSpec(spec); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			// Asked again: the same promotion is re-evaluated; an emergency
			// request turns it into an emergency promotion.
			var spec Spec
			if err := obj.DecodeSpec(&spec); err != nil {
				return err
			}
			var st Status
			if err := obj.DecodeStatus(&st); err != nil {
				return err
			}
			switch st.Phase {
			case Rejected:
				return &PolicyError{Msg: fmt.Sprintf("promotion %s was rejected (%s); a rejection is final: build a new release that answers it and promote that", name, st.Message)}
			case Deploying:
				out = obj // its rollout is running; asking again changes nothing
				return nil
			}
			// A Failed promotion (its rollout failed) is judged and deployed
			// again: the cause may have been fixed.
			if req.Emergency != nil || (req.RollbackPlan != "" && req.RollbackPlan != spec.RollbackPlan) {
				if req.Emergency != nil {
					spec.Emergency = req.Emergency
					spec.RequestedBy = actor.Name
				}
				if req.RollbackPlan != "" {
					spec.RollbackPlan = req.RollbackPlan
				}
				if err := obj.SetSpec(spec); err != nil {
					return err
				}
			}
		}
		out, err = s.evaluate(ctx, tx, obj, true)
		return err
	})
	return out, err
}

// rollbackPlan is a new promotion's written rollback plan.
func rollbackPlan(req Request, app application.Spec) string {
	switch {
	case req.RollbackPlan != "":
		return req.RollbackPlan
	case app.Environments[req.To].RollbackPlan != "":
		return app.Environments[req.To].RollbackPlan
	}
	return fmt.Sprintf("airlock rollback %s --env %s --reason TEXT puts the previous version back (traffic at once while it still runs; otherwise it is started again and switched to)", req.App, req.To)
}

func validateRequest(req *Request) error {
	req.RollbackPlan = strings.TrimSpace(req.RollbackPlan)
	if len(req.RollbackPlan) > 4000 {
		return &InvalidError{Msg: fmt.Sprintf("the rollback plan is %d characters; at most 4000", len(req.RollbackPlan))}
	}
	if err := resource.ValidateName(req.App); err != nil {
		return &InvalidError{Msg: "app: " + err.Error()}
	}
	if err := release.ValidateVersion(req.Version); err != nil {
		return &InvalidError{Msg: err.Error()}
	}
	if err := resource.ValidateName(req.To); err != nil {
		return &InvalidError{Msg: "to: " + err.Error()}
	}
	if e := req.Emergency; e != nil {
		e.Incident, e.Reason = strings.TrimSpace(e.Incident), strings.TrimSpace(e.Reason)
		switch {
		case e.Incident == "":
			return &InvalidError{Msg: "an emergency promotion needs the incident it answers (--incident ID)"}
		case e.Reason == "":
			return &InvalidError{Msg: "an emergency promotion needs a reason (--reason TEXT)"}
		case len(e.Incident) > 200 || len(e.Reason) > 2000:
			return &InvalidError{Msg: "the incident (200) or reason (2000 characters) is too long"}
		}
	}
	return nil
}

// Reevaluate re-judges every open promotion of a release inside tx. The
// evidence service calls it after storing new evidence, so a promotion that
// was waiting for that evidence moves on in the same transaction.
func (s *Service) Reevaluate(ctx context.Context, tx store.Tx, releaseName string) error {
	objs, err := tx.List(ctx, Kind, resource.Selector{{Key: "release", Op: resource.Equals, Values: []string{releaseName}}})
	if err != nil {
		return fmt.Errorf("list promotions of %s: %w", releaseName, err)
	}
	for _, o := range objs {
		var st Status
		if err := o.DecodeStatus(&st); err != nil {
			return err
		}
		if st.Phase.judged() {
			continue
		}
		if _, err := s.evaluate(ctx, tx, o, false); err != nil {
			return fmt.Errorf("re-evaluate %s: %w", o.Metadata.Name, err)
		}
	}
	return nil
}

// evaluate judges obj's gates now and writes the outcome. It writes only
// when something changed (or always, when the promotion was just asked for).
func (s *Service) evaluate(ctx context.Context, tx store.Tx, obj *resource.Object, requested bool) (*resource.Object, error) {
	var spec Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		return nil, err
	}
	var prev Status
	if err := obj.DecodeStatus(&prev); err != nil {
		return nil, err
	}
	in, pipeRev, gates, err := s.input(ctx, tx, spec)
	if err != nil {
		return nil, err
	}
	results := gate.Evaluate(gates, in)
	now := tx.Now()
	st := Status{PolicyRevision: pipeRev, Gates: results, Evaluations: prev.Evaluations + 1, EvaluatedAt: now, Review: prev.Review}
	st.Phase, st.Message = phaseOf(results)
	passed := st.Phase == Succeeded
	if passed {
		// Past its gates, the release goes into the runtime when the
		// application runs there.
		ro, waiting, err := s.deploy(ctx, tx, spec, in, obj.Metadata.Name)
		switch {
		case err != nil:
			return nil, err
		case waiting != "":
			passed, st.Phase, st.Message = false, Pending, waiting
		case ro != "":
			st.Phase, st.Rollout = Deploying, ro
			st.Message = fmt.Sprintf("%s; rollout %s is deploying it (airlock rollout get %s --env %s)", st.Message, ro, spec.App, spec.To)
		}
	}
	if !requested && prev.Phase == st.Phase && prev.PolicyRevision == st.PolicyRevision && prev.Message == st.Message && sameResults(prev.Gates, results) {
		return obj, nil // nothing new to record
	}
	if st.Phase.Finished() {
		st.CompletedAt = &now
	}
	if st.Phase == Succeeded {
		if err := admit(ctx, tx, spec, obj.Metadata.Name, now); err != nil {
			return nil, err
		}
	}
	if passed && spec.Emergency != nil {
		rv, err := openReview(ctx, tx, obj.Metadata.Name, spec, results, reviewChain(gates, in), now)
		if err != nil {
			return nil, err
		}
		st.Review = rv
	}
	if err := notifyTransition(ctx, tx, obj.Metadata.Name, spec, prev, st); err != nil {
		return nil, err
	}
	next := obj.DeepCopy()
	if err := next.SetStatus(st); err != nil {
		return nil, err
	}
	// The phase is also a label, so the periodic re-evaluation finds the
	// open promotions through the label index instead of reading them all.
	if next.Metadata.Labels == nil {
		next.Metadata.Labels = map[string]string{}
	}
	next.Metadata.Labels[PhaseLabel] = string(st.Phase)
	if next.Metadata.Revision == 0 {
		return tx.Create(ctx, next)
	}
	next.Metadata.Revision = 0
	return tx.Update(ctx, next)
}

func (s *Service) input(ctx context.Context, tx store.Tx, spec Spec) (*gate.Input, int64, []gate.Gate, error) {
	pipe, err := tx.Get(ctx, "Pipeline", spec.Pipeline)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("pipeline %s: %w", spec.Pipeline, err)
	}
	var pipeSpec pipeline.Spec
	if err := pipe.DecodeSpec(&pipeSpec); err != nil {
		return nil, 0, nil, err
	}
	specs, err := pipeSpec.GatesFor(spec.To)
	if err != nil {
		return nil, 0, nil, &PolicyError{Msg: err.Error()}
	}
	specs = withEmergencyApproval(specs, spec.Emergency != nil)
	env, err := tx.Get(ctx, "Environment", spec.To)
	if err != nil {
		return nil, 0, nil, err
	}
	var envSpec environment.Spec
	if err := env.DecodeSpec(&envSpec); err != nil {
		return nil, 0, nil, err
	}
	stage := pipeSpec.Stages[pipeSpec.Index(spec.To)]
	block := envSpec.Tier == environment.TierProduction
	if stage.BlockOnOverdueReview != nil {
		block = *stage.BlockOnOverdueReview
	}
	if block && !slices.ContainsFunc(specs, func(g gate.Spec) bool { return g.Type == ReviewsGateType }) {
		specs = append(slices.Clip(specs), gate.Spec{Type: ReviewsGateType, Name: ReviewsGateName})
	}
	gates, err := gate.Compile(specs)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("gates of pipeline %s (revision %d): %w", spec.Pipeline, pipe.Metadata.Revision, err)
	}
	rel, err := tx.Get(ctx, "Release", spec.Release)
	if err != nil {
		return nil, 0, nil, err
	}
	var relSpec release.Spec
	if err := rel.DecodeSpec(&relSpec); err != nil {
		return nil, 0, nil, err
	}
	app, err := tx.Get(ctx, "Application", spec.App)
	if err != nil {
		return nil, 0, nil, err
	}
	var appSpec application.Spec
	if err := app.DecodeSpec(&appSpec); err != nil {
		return nil, 0, nil, err
	}
	ev, err := LoadEvidence(ctx, tx, spec.Release)
	if err != nil {
		return nil, 0, nil, err
	}
	wins, err := window.Load(ctx, tx)
	if err != nil {
		return nil, 0, nil, err
	}
	votes, err := loadApprovals(ctx, tx, Name(spec.Release, spec.To))
	if err != nil {
		return nil, 0, nil, err
	}
	overdue, err := overdueReviews(ctx, tx, spec.App)
	if err != nil {
		return nil, 0, nil, err
	}
	changes, err := change.Load(ctx, tx, spec.App, spec.Version, spec.To)
	if err != nil {
		return nil, 0, nil, err
	}
	in := &gate.Input{
		App: spec.App, AppSpec: appSpec, Release: relSpec,
		From: spec.From, To: spec.To, ToTier: envSpec.Tier,
		Evidence: ev, Emergency: spec.Emergency != nil, Now: tx.Now(),
		RequestedBy: spec.RequestedBy, PolicyRevision: pipe.Metadata.Revision,
		Extra: map[string]any{window.GateType: wins, approval.GateType: votes, ReviewsGateType: overdue, change.GateType: changes},
	}
	return in, pipe.Metadata.Revision, gates, nil
}

// EmergencyGate is the name of the approvals gate an emergency promotion
// gets when its transition declares none: an emergency always needs one
// approval by an emergency approver.
const EmergencyGate = "emergency-approval"

// withEmergencyApproval adds the emergency approvals gate to an emergency
// promotion's gates when they have no approvals gate of their own.
func withEmergencyApproval(specs []gate.Spec, emergency bool) []gate.Spec {
	if !emergency || slices.ContainsFunc(specs, func(g gate.Spec) bool { return g.Type == approval.GateType }) {
		return specs
	}
	return append(slices.Clip(specs), gate.Spec{Name: EmergencyGate, Type: approval.GateType, Require: map[string]int{approval.EmergencyRole: 1}})
}

// loadApprovals returns the votes recorded on a promotion, for the
// approvals gate.
func loadApprovals(ctx context.Context, r store.Reader, promo string) ([]approval.Approval, error) {
	objs, err := r.List(ctx, approval.Kind, resource.Selector{{Key: "promotion", Op: resource.Equals, Values: []string{promo}}})
	if err != nil {
		return nil, fmt.Errorf("list approvals of %s: %w", promo, err)
	}
	out := make([]approval.Approval, 0, len(objs))
	for _, o := range objs {
		a := approval.Approval{Name: o.Metadata.Name, CreatedAt: o.Metadata.CreatedAt}
		if err := o.DecodeSpec(&a.Spec); err != nil {
			return nil, fmt.Errorf("approval %s: %w", o.Metadata.Name, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// LoadEvidence returns every piece of evidence bound to a release, as gates
// see it, with the findings of scanner reports read from their blobs.
func LoadEvidence(ctx context.Context, r store.Reader, releaseName string) ([]gate.Evidence, error) {
	objs, err := r.List(ctx, evidence.Kind, resource.Selector{{Key: "release", Op: resource.Equals, Values: []string{releaseName}}})
	if err != nil {
		return nil, fmt.Errorf("list evidence of %s: %w", releaseName, err)
	}
	// In the order they were stored: gates let the later of two pieces with
	// the same submission time win, so revision order makes "latest" exact.
	slices.SortFunc(objs, func(a, b *resource.Object) int { return cmp.Compare(a.Metadata.Revision, b.Metadata.Revision) })
	out := make([]gate.Evidence, 0, len(objs))
	for _, o := range objs {
		var rec evidence.Record
		if err := o.DecodeSpec(&rec); err != nil {
			return nil, fmt.Errorf("decode %s: %w", o.Ref(), err)
		}
		rep := evidence.Report{Type: rec.Type, Format: rec.Format, Facts: rec.Facts, Subjects: rec.Subjects}
		if rec.FindingsDigest != "" {
			data, err := r.Blob(ctx, rec.FindingsDigest)
			if err != nil {
				return nil, fmt.Errorf("findings of %s: %w", o.Ref(), err)
			}
			if err := json.Unmarshal(data, &rep.Findings); err != nil {
				return nil, fmt.Errorf("findings of %s: %w", o.Ref(), err)
			}
		}
		out = append(out, gate.Evidence{
			Digest: rec.Digest, Type: rec.Type, Suite: rec.Suite, Name: rec.Name, Report: rep,
			Trusted: rec.Trusted, Signer: rec.Signer, SubmittedBy: rec.SubmittedBy, SubmittedAt: o.Metadata.CreatedAt,
		})
	}
	return out, nil
}

func phaseOf(results []gate.Result) (Phase, string) {
	var failed, pending, waived, final []string
	approvals := false
	for _, r := range results {
		switch r.Status {
		case gate.StatusFail:
			failed = append(failed, r.Gate)
			if r.Final {
				final = append(final, r.Reasons...)
			}
		case gate.StatusPending:
			pending = append(pending, r.Gate)
			approvals = approvals || r.Type == approval.GateType
		case gate.StatusWaived:
			waived = append(waived, r.Gate)
		}
	}
	switch {
	case len(final) > 0:
		return Rejected, strings.Join(final, "; ")
	case len(failed) > 0:
		return Blocked, fmt.Sprintf("blocked by %d gate(s): %s", len(failed), strings.Join(failed, ", "))
	case len(pending) > 0 && approvals && len(pending) == 1:
		return Pending, fmt.Sprintf("waiting for approvals: %s", pending[0])
	case len(pending) > 0 && approvals:
		return Pending, fmt.Sprintf("waiting for evidence and approvals: %s", strings.Join(pending, ", "))
	case len(pending) > 0:
		return Pending, fmt.Sprintf("waiting for evidence: %s", strings.Join(pending, ", "))
	case len(waived) > 0:
		return Succeeded, fmt.Sprintf("emergency: promoted with %d gate(s) waived (%s); review due in 24h", len(waived), strings.Join(waived, ", "))
	default:
		return Succeeded, fmt.Sprintf("all %d gate(s) passed", len(results))
	}
}

func sameResults(a, b []gate.Result) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// admit records the release as having entered the environment and queues
// the promotion.succeeded marker.
func admit(ctx context.Context, tx store.Tx, spec Spec, promo string, now time.Time) error {
	rel, err := tx.Get(ctx, "Release", spec.Release)
	if err != nil {
		return err
	}
	var st release.Status
	if err := rel.DecodeStatus(&st); err != nil {
		return err
	}
	if st.Environments == nil {
		st.Environments = map[string]release.Admission{}
	}
	st.Environments[spec.To] = release.Admission{Promotion: promo, At: now, Emergency: spec.Emergency != nil}
	if err := rel.SetStatus(st); err != nil {
		return err
	}
	rel.Metadata.Revision = 0
	if _, err := tx.Update(ctx, rel); err != nil {
		return err
	}
	// The deployment marker: the release is in the environment now.
	if _, err := notify.Enqueue(ctx, tx, notify.Event{Type: notify.PromotionSucceeded,
		Subject: fmt.Sprintf("%s %s promoted to %s", spec.App, spec.Version, spec.To),
		Data:    map[string]string{"promotion": promo, "app": spec.App, "environment": spec.To, "version": spec.Version, "phase": string(Succeeded)},
	}); err != nil {
		return fmt.Errorf("notify %s for %s: %w", notify.PromotionSucceeded, promo, err)
	}
	return nil
}

// ReevaluateOpen re-judges every promotion that is still Pending or
// Blocked, each release in its own write audited as actor. Gates that
// depend on time (a deployment window opening, a suppression expiring) are
// judged again this way without anyone asking. It returns how many
// releases it looked at; a promotion whose results did not change is not
// written.
func (s *Service) ReevaluateOpen(ctx context.Context, actor store.Actor) (int, error) {
	releases := map[string]bool{}
	for _, phase := range []Phase{Pending, Blocked} {
		objs, err := s.store.List(ctx, Kind, resource.Selector{{Key: PhaseLabel, Op: resource.Equals, Values: []string{string(phase)}}})
		if err != nil {
			return 0, err
		}
		for _, o := range objs {
			var spec Spec
			if err := o.DecodeSpec(&spec); err != nil {
				return 0, err
			}
			releases[spec.Release] = true
		}
	}
	for rel := range releases {
		if err := s.store.Write(ctx, actor, func(tx store.Tx) error { return s.Reevaluate(ctx, tx, rel) }); err != nil {
			return 0, fmt.Errorf("re-evaluate promotions of %s: %w", rel, err)
		}
	}
	return len(releases), nil
}

// notifyTransition queues the notifications for a promotion that has just
// moved from prev to st: only entering a state notifies, so re-evaluations
// that leave a promotion where it was stay quiet.
func notifyTransition(ctx context.Context, tx store.Tx, name string, spec Spec, prev, st Status) error {
	data := map[string]string{"promotion": name, "app": spec.App, "version": spec.Version, "environment": spec.To, "phase": string(st.Phase)}
	var ev *notify.Event
	switch {
	case st.Phase == Blocked && prev.Phase != Blocked:
		ev = &notify.Event{Type: notify.PromotionBlocked, Message: st.Message}
	case st.Phase == Succeeded && spec.Emergency != nil && prev.Phase != Succeeded:
		data["incident"], data["review"], data["requestedBy"] = spec.Emergency.Incident, st.Review, spec.RequestedBy
		ev = &notify.Event{Type: notify.PromotionEmergency, Message: st.Message + ": " + spec.Emergency.Reason}
	case awaitingApproval(st) && !awaitingApproval(prev):
		ev = &notify.Event{Type: notify.ApprovalRequested, Message: st.Message}
	default:
		return nil
	}
	ev.Subject = fmt.Sprintf("%s %s → %s: %s", spec.App, spec.Version, spec.To, ev.Type)
	ev.Data = data
	if _, err := notify.Enqueue(ctx, tx, *ev); err != nil {
		return fmt.Errorf("notify %s for %s: %w", ev.Type, name, err)
	}
	return nil
}

// awaitingApproval reports whether a promotion is Pending on an approvals gate.
func awaitingApproval(st Status) bool {
	if st.Phase != Pending {
		return false
	}
	for _, r := range st.Gates {
		if r.Type == approval.GateType && r.Status == gate.StatusPending {
			return true
		}
	}
	return false
}
