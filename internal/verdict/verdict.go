// Package verdict defines the Verdict kind: the recorded judgement of the
// application's analysis (or of a person) on something that changed in one
// application and environment, such as a rollout or a flag's release plan.
//
// The analysis creates verdicts; other parts of airlock read them. A
// progressive flag release plan, for example, pauses when a fail verdict for
// its application and environment appears (LatestBad). A verdict's outcome
// may be overridden afterwards (Status.Override); Effective is the outcome
// that counts.
//
// Verdicts carry the labels app, environment and outcome (New sets them), so
// that readers can select them without decoding every verdict.
package verdict

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Kind is the kind this package owns.
const Kind = "Verdict"

// Label keys every verdict carries.
const (
	AppLabel         = "app"
	EnvironmentLabel = "environment"
	OutcomeLabel     = "outcome"
)

// Limits on free text, checked by Validate.
const (
	MaxSummary  = 500
	MaxReasons  = 50
	MaxReason   = 500
	MaxJudge    = 200
	MaxKindName = 63
	MaxSignals  = 50
	MaxSignal   = 100 // characters of a signal's name
)

// Outcome is what the judge concluded.
type Outcome string

// Outcomes.
const (
	Pass         Outcome = "pass"
	Fail         Outcome = "fail"
	Inconclusive Outcome = "inconclusive"
)

// Valid reports whether o is one of the outcomes.
func (o Outcome) Valid() bool { return o == Pass || o == Fail || o == Inconclusive }

// Subject names what was judged, e.g. {Rollout, shop-prod-1.4.0} or
// {FlagPlan, shop.new-checkout.prod}.
type Subject struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Spec is the judgement as recorded.
type Spec struct {
	App         string `json:"app"`
	Environment string `json:"environment"`
	// Version is the version judged (a rollout's candidate), when there is one.
	Version string   `json:"version,omitempty"`
	Subject Subject  `json:"subject"`
	Outcome Outcome  `json:"outcome"`
	Summary string   `json:"summary"`
	Reasons []string `json:"reasons,omitempty"`
	// Signals are the per-signal results the outcome was drawn from (error
	// rate, latency p99, a log pattern, ...). Overrides are counted per
	// signal name (OverrideCounts).
	Signals []Signal `json:"signals,omitempty"`
	// Judge is who or what judged, e.g. analysis/error-rate or a user.
	Judge string `json:"judge"`
	// Action is what the judge recommends: continue, extend, pause,
	// rollback-canary or rollback (empty for verdicts that recommend
	// nothing). Automatic says whether the environment's policy let it run
	// without a person; when not, it waits for airlock verdict accept.
	Action    string `json:"action,omitempty"`
	Automatic bool   `json:"automatic,omitempty"`
	// Confidence is how sure the judge is of the outcome, from 0 to 1.
	Confidence float64 `json:"confidence,omitempty"`
	// Step is the rollout step judged (a canary step's index or a rolling
	// update's replaced instances).
	Step int `json:"step,omitempty"`
	// Score is the 0–100 score of the metric comparison, when there was one.
	Score *float64 `json:"score,omitempty"`
}

// Signal is one signal's result within a verdict.
type Signal struct {
	Name    string  `json:"name"` // e.g. error-rate, latency-p99, log-patterns
	Outcome Outcome `json:"outcome"`
	Detail  string  `json:"detail,omitempty"` // e.g. "7.9% vs 1.1% baseline over 1,240 requests, p < 0.001"
}

// Override is a person's correction of a verdict's outcome.
type Override struct {
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	Outcome Outcome   `json:"outcome"`
}

// Acceptance is a person's agreement with a verdict as the judge made it.
type Acceptance struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Status is what airlock records about a verdict after it was made: at
// most one person's decision, an acceptance or an override.
type Status struct {
	Override *Override   `json:"override,omitempty"`
	Accepted *Acceptance `json:"accepted,omitempty"`
	// Executed is the action that was carried out on the verdict, by
	// airlock (automatic) or after a person's decision.
	Executed *Execution `json:"executed,omitempty"`
}

// Execution is an action carried out on a verdict.
type Execution struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Verdict is a decoded Verdict object.
type Verdict struct {
	Name      string
	Spec      Spec
	Status    Status
	CreatedAt time.Time
	Revision  int64
}

// Effective is the outcome that counts: the override's when there is one,
// otherwise the judge's.
func (v Verdict) Effective() Outcome {
	if v.Status.Override != nil && v.Status.Override.Outcome.Valid() {
		return v.Status.Override.Outcome
	}
	return v.Spec.Outcome
}

// Register adds the Verdict kind to s. Verdicts are recorded by the system,
// not applied.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    Kind,
		Plural:  "verdicts",
		Aliases: []string{"verdict"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(obj *resource.Object, spec any) error {
			v, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("verdict: spec has type %T, want *verdict.Spec", spec)
			}
			return Validate(*v)
		},
	})
}

// Validate checks a verdict's spec and reports the field at fault as a
// *resource.PathError.
func Validate(s Spec) error {
	if err := resource.ValidateName(s.App); err != nil {
		return resource.Errorf("spec.app", "application %v", err)
	}
	if err := resource.ValidateName(s.Environment); err != nil {
		return resource.Errorf("spec.environment", "environment %v", err)
	}
	if s.Subject.Kind == "" || len(s.Subject.Kind) > MaxKindName {
		return resource.Errorf("spec.subject.kind", "the kind of what was judged is required (at most %d characters), e.g. Rollout or FlagPlan", MaxKindName)
	}
	if err := resource.ValidateName(s.Subject.Name); err != nil {
		return resource.Errorf("spec.subject.name", "subject %v", err)
	}
	if !s.Outcome.Valid() {
		return resource.Errorf("spec.outcome", "outcome %q is not pass, fail or inconclusive", s.Outcome)
	}
	if len(s.Summary) > MaxSummary {
		return resource.Errorf("spec.summary", "the summary is %d characters; at most %d are allowed", len(s.Summary), MaxSummary)
	}
	if len(s.Reasons) > MaxReasons {
		return resource.Errorf("spec.reasons", "%d reasons; at most %d are allowed", len(s.Reasons), MaxReasons)
	}
	for i, r := range s.Reasons {
		if len(r) > MaxReason {
			return resource.Errorf(fmt.Sprintf("spec.reasons[%d]", i), "the reason is %d characters; at most %d are allowed", len(r), MaxReason)
		}
	}
	if len(s.Version) > MaxSignal {
		return resource.Errorf("spec.version", "the version is %d characters; at most %d are allowed", len(s.Version), MaxSignal)
	}
	if len(s.Signals) > MaxSignals {
		return resource.Errorf("spec.signals", "%d signals; at most %d are allowed", len(s.Signals), MaxSignals)
	}
	seen := map[string]bool{}
	for i, sg := range s.Signals {
		at := fmt.Sprintf("spec.signals[%d]", i)
		switch {
		case strings.TrimSpace(sg.Name) == "" || len(sg.Name) > MaxSignal:
			return resource.Errorf(at+".name", "a signal needs a name of at most %d characters, e.g. error-rate", MaxSignal)
		case seen[sg.Name]:
			return resource.Errorf(at+".name", "signal %q is listed twice", sg.Name)
		case !sg.Outcome.Valid():
			return resource.Errorf(at+".outcome", "outcome %q is not pass, fail or inconclusive", sg.Outcome)
		case len(sg.Detail) > MaxReason:
			return resource.Errorf(at+".detail", "the detail is %d characters; at most %d are allowed", len(sg.Detail), MaxReason)
		}
		seen[sg.Name] = true
	}
	if s.Action != "" && !slices.Contains(application.Actions, s.Action) {
		return resource.Errorf("spec.action", "action %q is not one of %s", s.Action, strings.Join(application.Actions, ", "))
	}
	if !(s.Confidence >= 0 && s.Confidence <= 1) {
		return resource.Errorf("spec.confidence", "confidence %v is not between 0 and 1", s.Confidence)
	}
	if s.Score != nil && !(*s.Score >= 0 && *s.Score <= 100) {
		return resource.Errorf("spec.score", "score %v is not between 0 and 100", *s.Score)
	}
	if strings.TrimSpace(s.Judge) == "" || len(s.Judge) > MaxJudge {
		return resource.Errorf("spec.judge", "who or what judged is required (at most %d characters), e.g. analysis/error-rate", MaxJudge)
	}
	return nil
}

// New returns a Verdict object named name for spec, with the labels app,
// environment and outcome set. It validates spec.
func New(name string, spec Spec) (*resource.Object, error) {
	if err := resource.ValidateName(name); err != nil {
		return nil, resource.Errorf("metadata.name", "verdict %v", err)
	}
	if err := Validate(spec); err != nil {
		return nil, err
	}
	o := &resource.Object{APIVersion: resource.APIVersion, Kind: Kind, Metadata: resource.Metadata{Name: name, Labels: map[string]string{
		AppLabel: spec.App, EnvironmentLabel: spec.Environment, OutcomeLabel: string(spec.Outcome),
	}}}
	if err := o.SetSpec(spec); err != nil {
		return nil, err
	}
	return o, nil
}

// SetOverride records a person's override on verdict object o (a copy the
// caller then stores) and sets its outcome label to the new outcome. It
// refuses an override without a person, a reason or a valid outcome.
func SetOverride(o *resource.Object, ov Override) error {
	switch {
	case !ov.Outcome.Valid():
		return resource.Errorf("status.override.outcome", "outcome %q is not pass, fail or inconclusive", ov.Outcome)
	case strings.TrimSpace(ov.By) == "":
		return resource.Errorf("status.override.by", "an override names who made it")
	case strings.TrimSpace(ov.Reason) == "" || len(ov.Reason) > MaxReason:
		return resource.Errorf("status.override.reason", "an override needs a reason of at most %d characters", MaxReason)
	}
	var st Status
	if err := o.DecodeStatus(&st); err != nil {
		return fmt.Errorf("decode status of %s: %w", o.Ref(), err)
	}
	st.Override = &ov
	if err := o.SetStatus(st); err != nil {
		return err
	}
	if o.Metadata.Labels == nil {
		o.Metadata.Labels = map[string]string{}
	}
	o.Metadata.Labels[OutcomeLabel] = string(ov.Outcome)
	return nil
}

// Decode reads a Verdict object.
func Decode(o *resource.Object) (Verdict, error) {
	v := Verdict{Name: o.Metadata.Name, CreatedAt: o.Metadata.CreatedAt, Revision: o.Metadata.Revision}
	if err := o.DecodeSpec(&v.Spec); err != nil {
		return Verdict{}, fmt.Errorf("decode %s: %w", o.Ref(), err)
	}
	if err := o.DecodeStatus(&v.Status); err != nil {
		return Verdict{}, fmt.Errorf("decode status of %s: %w", o.Ref(), err)
	}
	return v, nil
}

// LatestBad returns the newest verdict for app in env whose effective
// outcome is fail and that was created after since, or nil when there is
// none. It selects verdicts by their app and environment labels (New sets
// them) and checks the spec as well, so a mislabelled verdict of another
// application does not count. The outcome label is not trusted: an
// override may have changed the outcome since.
func LatestBad(ctx context.Context, r store.Reader, app, env string, since time.Time) (*resource.Object, error) {
	objs, err := r.List(ctx, Kind, resource.Selector{
		{Key: AppLabel, Op: resource.Equals, Values: []string{app}},
		{Key: EnvironmentLabel, Op: resource.Equals, Values: []string{env}},
	})
	if err != nil {
		return nil, fmt.Errorf("list verdicts of %s in %s: %w", app, env, err)
	}
	var best *resource.Object
	for _, o := range objs {
		if !o.Metadata.CreatedAt.After(since) {
			continue
		}
		v, err := Decode(o)
		if err != nil {
			return nil, err
		}
		if v.Spec.App != app || v.Spec.Environment != env || v.Effective() != Fail {
			continue
		}
		if best == nil || o.Metadata.CreatedAt.After(best.Metadata.CreatedAt) ||
			(o.Metadata.CreatedAt.Equal(best.Metadata.CreatedAt) && o.Metadata.Revision > best.Metadata.Revision) {
			best = o
		}
	}
	return best, nil
}
