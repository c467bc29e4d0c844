package application_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	_ "github.com/airlock-dev/airlock/internal/approval" // the approvals gate of prod
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
)

// TestQuickstart decodes examples/quickstart.yaml as `airlock apply` would
// and runs every cross-object check on it: the example must apply cleanly
// and leave exactly one waived violation, on prod.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	ex := loadExample(t, "quickstart.yaml")
	envs, pipes, apps := ex.envs, ex.pipes, ex.apps
	if len(envs) != 3 || len(pipes) != 1 || len(apps) != 1 {
		t.Fatalf("got %d environments, %d pipelines, %d applications; want 3, 1, 1", len(envs), len(pipes), len(apps))
	}

	violations, err := environment.CheckSet(envs, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("CheckSet: %v", err)
	}
	var total int
	for name, vs := range violations {
		for _, v := range vs {
			total++
			if name != "prod" || v.Rule != environment.RuleProductionIsolation || !v.Waived {
				t.Errorf("%s: unexpected violation %+v", name, v)
			}
		}
	}
	if total != 1 {
		t.Errorf("got %d violations, want exactly one (waived, on prod): %v", total, violations)
	}
	for name, p := range pipes {
		if err := pipeline.Check(p, envs); err != nil {
			t.Errorf("pipeline %s: %v", name, err)
		}
	}
	for name, a := range apps {
		if err := application.Check(a, pipes); err != nil {
			t.Errorf("application %s: %v", name, err)
		}
		if !a.UserFacing || len(a.Owners) == 0 {
			t.Errorf("application %s = %+v, want user-facing with owners", name, a)
		}
	}
}

// TestDocsExamples decodes every complete object in docs/resources.md, so
// the reference cannot drift from what the decoder accepts.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/resources.md")
	if err != nil {
		t.Fatal(err)
	}
	s := resource.NewScheme()
	environment.Register(s)
	pipeline.Register(s)
	application.Register(s)
	release.Register(s)
	blocks := strings.Split(string(data), "```yaml\n")
	n := 0
	for _, b := range blocks[1:] {
		b, _, _ = strings.Cut(b, "```")
		if !strings.HasPrefix(b, "apiVersion: airlock.dev/v1\nkind:") {
			continue // a fragment
		}
		n++
		if _, err := s.Decode("docs/resources.md", []byte(b)); err != nil {
			t.Errorf("example %d does not decode: %v\n%s", n, err, b)
		}
	}
	if n < 4 {
		t.Errorf("found %d complete examples in docs/resources.md, want one per kind at least", n)
	}
}
