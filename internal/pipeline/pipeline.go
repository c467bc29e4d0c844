// Package pipeline defines the Pipeline kind: the ordered environments a
// release travels through on its way to production, and the gates of each
// transition between them.
//
// Validate checks a pipeline on its own; Check checks it against the
// environments it names. Both are pure.
package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/resource"
)

// MinStages is the fewest stages a pipeline may have: at least one
// environment that validates a release before production.
const MinStages = 2

// Spec is what a user declares about a pipeline.
type Spec struct {
	Stages      []Stage `json:"stages"`
	Description string  `json:"description,omitempty"`
	// Cumulative makes each transition also evaluate the gates of every
	// earlier transition ("all prior gates +"). A later gate with the same
	// name as an earlier one replaces it, so a transition can tighten a
	// gate it inherits.
	Cumulative bool `json:"cumulative,omitempty"`
}

// Stage is one step of a pipeline: an environment a release runs in.
type Stage struct {
	Environment string `json:"environment"`
	// Gates are the gates of the transition into this stage; on the first
	// stage they are entry gates, judged when a release enters the
	// pipeline.
	Gates []gate.Spec `json:"gates,omitempty"`
	// BlockOnOverdueReview makes an overdue post-emergency review of an
	// application block its non-emergency promotions into this stage (the
	// reviews gate, added without being declared). Default: true for a
	// production-tier environment, false otherwise.
	BlockOnOverdueReview *bool `json:"blockOnOverdueReview,omitempty"`
}

// Status is what the system records about a pipeline. It has no fields yet.
type Status struct{}

// Environments returns the stage environments in order.
func (s Spec) Environments() []string {
	out := make([]string, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = st.Environment
	}
	return out
}

// Index returns the position of env among the stages, or -1.
func (s Spec) Index(env string) int {
	for i, st := range s.Stages {
		if st.Environment == env {
			return i
		}
	}
	return -1
}

// Previous returns the stage before to, and false when to is the first
// stage or not a stage at all.
func (s Spec) Previous(to string) (string, bool) {
	i := s.Index(to)
	if i <= 0 {
		return "", false
	}
	return s.Stages[i-1].Environment, true
}

// GatesFor returns the gates of the transition into stage to: that stage's
// gates, and with Cumulative those of every earlier stage too, earliest
// first, a later gate replacing an earlier one of the same name in place.
// It fails when to is not a stage. The specs are as declared; pass them to
// gate.Compile to evaluate them.
func (s Spec) GatesFor(to string) ([]gate.Spec, error) {
	i := s.Index(to)
	if i < 0 {
		return nil, fmt.Errorf("environment %q is not a stage of this pipeline, whose stages are %s", to, strings.Join(s.Environments(), ", "))
	}
	if !s.Cumulative {
		return append([]gate.Spec(nil), s.Stages[i].Gates...), nil
	}
	var out []gate.Spec
	at := map[string]int{}
	for _, st := range s.Stages[:i+1] {
		for _, g := range st.Gates {
			name := g.Name
			if name == "" {
				name = g.DefaultName()
			}
			if j, ok := at[name]; ok {
				out[j] = g
				continue
			}
			at[name] = len(out)
			out = append(out, g)
		}
	}
	return out, nil
}

// Register adds the Pipeline kind to s.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    "Pipeline",
		Plural:  "pipelines",
		Aliases: []string{"pipe", "pipelines"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(_ *resource.Object, spec any) error {
			p, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("pipeline: spec has type %T, want *pipeline.Spec", spec)
			}
			return Validate(*p)
		},
		Declarative: true,
	})
}

// Validate checks a pipeline on its own: at least MinStages stages, each
// naming an environment by a valid name, none named twice, and every
// stage's gates compile (gate.Compile). The error is a *resource.PathError
// naming the field at fault, e.g. spec.stages[2].gates[0].maxSeverity.
func Validate(p Spec) error {
	if len(p.Stages) < MinStages {
		return resource.Errorf("spec.stages",
			"a pipeline needs at least %d stages (got %d): list one or more non-production environments, then production, e.g. dev, staging, prod", MinStages, len(p.Stages))
	}
	seen := make(map[string]int, len(p.Stages))
	for i, st := range p.Stages {
		path := fmt.Sprintf("spec.stages[%d].environment", i)
		if st.Environment == "" {
			return resource.Errorf(path, "stage %d names no environment; set environment to the name of an Environment", i+1)
		}
		if err := resource.ValidateName(st.Environment); err != nil {
			return resource.Errorf(path, "environment %v", err)
		}
		if j, dup := seen[st.Environment]; dup {
			return resource.Errorf(path, "environment %q is already stage %d; a release passes through each environment once, so remove one of them", st.Environment, j+1)
		}
		seen[st.Environment] = i
		if _, err := gate.Compile(st.Gates); err != nil {
			var se *gate.SpecError
			if errors.As(err, &se) {
				return resource.Errorf(se.Path(fmt.Sprintf("spec.stages[%d].gates", i)), "%s", se.Msg)
			}
			return resource.Errorf(fmt.Sprintf("spec.stages[%d].gates", i), "%v", err)
		}
	}
	return nil
}

// Check checks a pipeline against the environments that exist (keyed by
// name): every stage names one of them, the pipeline ends in a
// production-tier environment, and production comes only at the end, after
// at least one non-production environment. The error is a
// *resource.PathError naming the stage at fault.
func Check(p Spec, envs map[string]environment.Spec) error {
	for i, st := range p.Stages {
		if _, ok := envs[st.Environment]; !ok {
			return resource.Errorf(fmt.Sprintf("spec.stages[%d].environment", i),
				"environment %q does not exist; known environments: %s (create it first, or fix the name)", st.Environment, known(envs))
		}
	}
	if len(p.Stages) == 0 {
		return resource.Errorf("spec.stages", "a pipeline needs stages ending in a production environment")
	}
	for i, st := range p.Stages {
		if !envs[st.Environment].IsProduction() {
			continue
		}
		if i == 0 {
			return resource.Errorf("spec.stages[0].environment",
				"the pipeline starts in production environment %q; put at least one non-production environment before it, so every release is validated before it reaches production", st.Environment)
		}
		if i < len(p.Stages)-1 {
			return resource.Errorf(fmt.Sprintf("spec.stages[%d].environment", i),
				"production environment %q is stage %d of %d; production may only be the last stage, so move it to the end or remove the stages after it", st.Environment, i+1, len(p.Stages))
		}
	}
	last := len(p.Stages) - 1
	if e := envs[p.Stages[last].Environment]; !e.IsProduction() {
		return resource.Errorf(fmt.Sprintf("spec.stages[%d].environment", last),
			"the pipeline must end in a production-tier environment, but its last stage %q is %s; add a production environment as the last stage", p.Stages[last].Environment, e.Tier)
	}
	return nil
}

func known(envs map[string]environment.Spec) string {
	if len(envs) == 0 {
		return "none"
	}
	names := make([]string, 0, len(envs))
	for n := range envs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
