// Package pipeline defines the Pipeline kind: the ordered environments a
// release travels through on its way to production.
//
// Validate checks a pipeline on its own; Check checks it against the
// environments it names. Both are pure.
package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/resource"
)

// MinStages is the fewest stages a pipeline may have: at least one
// environment that validates a release before production.
const MinStages = 2

// Spec is what a user declares about a pipeline.
type Spec struct {
	Stages      []Stage `json:"stages"`
	Description string  `json:"description,omitempty"`
}

// Stage is one step of a pipeline: an environment a release runs in.
type Stage struct {
	Environment string `json:"environment"`
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
// naming an environment by a valid name, none named twice. The error is a
// *resource.PathError naming the field at fault.
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
