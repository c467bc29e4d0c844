// Package plan defines the FlagPlan kind: a progressive release plan that
// serves one variant of a feature flag to a growing audience, step by step:
// segments first (internal users, beta testers), then growing percentages
// of targeting keys (1%, 10%, 50%, 100%). A plan advances by time (every
// Advance.Every) or by hand, and pauses by itself when the application's
// analysis records a fail verdict for the flag's application and
// environment.
//
// Render is the pure step logic: the flag spec that serves a step. The
// Controller drives plans (it writes the flag through an ApplyFunc and the
// plan's status in one transaction); the Service is what people use to
// advance, pause, resume and cancel a plan.
package plan

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Kind is the kind this package owns.
const Kind = "FlagPlan"

// Limits, checked by Validate.
const (
	MaxSteps        = 20
	MaxStepSegments = 20
	MaxHistory      = 50
	// MinEvery is the shortest automatic advance interval.
	MinEvery = time.Minute
)

// RuleName is the name of the targeting rule a plan owns in its flag: it
// serves the plan's variant to every segment of the steps reached so far.
// Render puts it first and keeps the flag's other rules after it.
const RuleName = "plan-segments"

// Spec is a release plan as declared.
type Spec struct {
	// Flag is the name of the Flag object (APP.KEY.ENV) the plan releases.
	Flag string `json:"flag"`
	// Variant is the variant being released, e.g. "on". It must not be
	// the flag's default variant.
	Variant string `json:"variant"`
	// Steps are the audiences, in order. Segment steps accumulate: a
	// segment stays on in every later step.
	Steps []Step `json:"steps"`
	// Advance says when the plan moves to its next step by itself.
	Advance Advance `json:"advance,omitzero"`
	// PauseOnVerdict pauses the plan when a fail verdict for the flag's
	// application and environment appears; default true.
	PauseOnVerdict *bool `json:"pauseOnVerdict,omitempty"`
}

// Step is exactly one of: Segments (serve the variant to these segments)
// or Percent (serve it to this share of targeting keys, 0 < p ≤ 100, at
// most three decimals).
type Step struct {
	Segments []string `json:"segments,omitempty"`
	Percent  float64  `json:"percent,omitempty"`
}

// Advance is the plan's automatic schedule.
type Advance struct {
	// Every is how long each step lasts before the next one begins, a Go
	// duration of at least 1m (e.g. 24h). Empty: the plan advances only by
	// hand (airlock flags plan advance).
	Every string `json:"every,omitempty"`
}

// PausesOnVerdict reports whether a fail verdict pauses the plan.
func (s Spec) PausesOnVerdict() bool { return s.PauseOnVerdict == nil || *s.PauseOnVerdict }

// Every returns the automatic advance interval, 0 for "by hand only". It
// assumes the spec is valid.
func (s Spec) Every() time.Duration {
	d, err := time.ParseDuration(s.Advance.Every)
	if err != nil {
		return 0
	}
	return d
}

// Describe names step i for people: "10%" or "segments internal-users".
func (s Spec) Describe(i int) string {
	if i < 0 || i >= len(s.Steps) {
		return fmt.Sprintf("step %d", i)
	}
	st := s.Steps[i]
	if len(st.Segments) > 0 {
		return "segments " + strings.Join(st.Segments, ", ")
	}
	return formatPercent(st.Percent)
}

func formatPercent(p float64) string {
	return fmt.Sprintf("%s%%", trimFloat(p))
}

func trimFloat(p float64) string {
	s := fmt.Sprintf("%.3f", p)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Phase is where a plan stands.
type Phase string

// Phases. A newly applied plan is Pending (an empty phase reads as
// Pending) until the controller applies its first step; Running plans
// advance; Paused ones wait for a person to resume them; Completed and
// Cancelled are final.
const (
	Pending   Phase = "Pending"
	Running   Phase = "Running"
	Paused    Phase = "Paused"
	Completed Phase = "Completed"
	Cancelled Phase = "Cancelled"
)

// Final reports whether nothing more happens to a plan in phase p.
func (p Phase) Final() bool { return p == Completed || p == Cancelled }

// Status is what the system records about a plan.
type Status struct {
	Phase Phase `json:"phase,omitempty"`
	// Step is the index of the step the flag serves (the last one applied).
	Step int `json:"step"`
	// StepStartedAt is when Step was applied; nil before the first step.
	StepStartedAt *time.Time `json:"stepStartedAt,omitempty"`
	// ResumedAt is when a person last resumed the plan. Verdicts count
	// from the later of StepStartedAt and ResumedAt, and so does the next
	// automatic advance.
	ResumedAt *time.Time `json:"resumedAt,omitempty"`
	// NextAt is when the next automatic advance is due (nil when the plan
	// advances by hand only, or is not running).
	NextAt  *time.Time `json:"nextAt,omitempty"`
	Message string     `json:"message,omitempty"`
	// History holds the latest MaxHistory events, oldest first.
	History []Event `json:"history,omitempty"`
}

// Event is one thing that happened to a plan.
type Event struct {
	At      time.Time `json:"at"`
	Step    int       `json:"step"`
	Actor   string    `json:"actor"`
	Message string    `json:"message"`
}

// PhaseOf returns the phase, reading an empty one as Pending.
func (st Status) PhaseOf() Phase {
	if st.Phase == "" {
		return Pending
	}
	return st.Phase
}

// since is when the current step's observation began: the later of the
// step's start and the last resume.
func (st Status) since() time.Time {
	var t time.Time
	if st.StepStartedAt != nil {
		t = *st.StepStartedAt
	}
	if st.ResumedAt != nil && st.ResumedAt.After(t) {
		t = *st.ResumedAt
	}
	return t
}

// record appends an event, keeping the latest MaxHistory.
func (st *Status) record(e Event) {
	st.History = append(st.History, e)
	if n := len(st.History) - MaxHistory; n > 0 {
		st.History = append([]Event(nil), st.History[n:]...)
	}
}

// Register adds the FlagPlan kind to s.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    Kind,
		Plural:  "flagplans",
		Aliases: []string{"flagplan", "plan"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(_ *resource.Object, spec any) error {
			p, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("flagplan: spec has type %T, want *plan.Spec", spec)
			}
			return Validate(*p)
		},
		Declarative: true,
	})
}

var variantRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`)

// Validate checks a plan on its own and reports the field at fault as a
// *resource.PathError, e.g. spec.steps[2].percent. That the flag, its
// variant and the segments exist is checked when a step is rendered.
func Validate(s Spec) error {
	if err := resource.ValidateName(s.Flag); err != nil {
		return resource.Errorf("spec.flag", "flag %v", err)
	}
	if strings.Count(s.Flag, ".") < 2 {
		return resource.Errorf("spec.flag", "flag %q must name a Flag object, APP.KEY.ENV (e.g. shop.new-checkout.prod)", s.Flag)
	}
	if len(s.Variant) > 63 || !variantRE.MatchString(s.Variant) {
		return resource.Errorf("spec.variant", "variant %q must name one of the flag's variants (e.g. on): 1 to 63 lower-case letters, digits, '-' or '_'", s.Variant)
	}
	if len(s.Steps) == 0 {
		return resource.Errorf("spec.steps", "a plan needs at least one step, e.g. - segments: [internal-users] then - percent: 10")
	}
	if len(s.Steps) > MaxSteps {
		return resource.Errorf("spec.steps", "%d steps; the limit is %d", len(s.Steps), MaxSteps)
	}
	last, lastAt := 0.0, -1
	for i, st := range s.Steps {
		path := fmt.Sprintf("spec.steps[%d]", i)
		switch {
		case len(st.Segments) > 0 && st.Percent != 0:
			return resource.Errorf(path, "a step has segments or a percent, not both; split it into two steps")
		case len(st.Segments) > 0:
			if len(st.Segments) > MaxStepSegments {
				return resource.Errorf(path+".segments", "%d segments; the limit is %d per step", len(st.Segments), MaxStepSegments)
			}
			for j, g := range st.Segments {
				if err := resource.ValidateName(g); err != nil {
					return resource.Errorf(fmt.Sprintf("%s.segments[%d]", path, j), "segment %v", err)
				}
			}
		case st.Percent != 0:
			p := st.Percent
			w := p * 1000
			if math.IsNaN(p) || p <= 0 || p > 100 || math.Abs(w-math.Round(w)) > 1e-6 {
				return resource.Errorf(path+".percent", "percent %v must be above 0 and at most 100, with at most three decimals", p)
			}
			if lastAt >= 0 && p <= last {
				return resource.Errorf(path+".percent", "percent %v must be above step %d's %v: percentages only grow", p, lastAt, last)
			}
			last, lastAt = p, i
		default:
			return resource.Errorf(path, "a step needs segments (e.g. segments: [internal-users]) or a percent above 0 (e.g. percent: 10)")
		}
	}
	if s.Advance.Every != "" {
		d, err := time.ParseDuration(s.Advance.Every)
		if err != nil || d < MinEvery {
			return resource.Errorf("spec.advance.every", "every %q must be a Go duration of at least 1m, such as 24h; leave it out to advance by hand only", s.Advance.Every)
		}
	}
	return nil
}
