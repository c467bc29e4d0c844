package application_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/airlock-dev/airlock/internal/approval" // the approvals gate type the seed pipeline uses
	_ "github.com/airlock-dev/airlock/internal/change"   // the changeRequest gate type
	_ "github.com/airlock-dev/airlock/internal/rollout"  // the rollbackTested gate type
	_ "github.com/airlock-dev/airlock/internal/window"   // the window gate type

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/pipeline"
)

// TestSeedPipeline decodes examples/seed-pipeline.yaml as `airlock apply`
// would, runs every cross-object check on it, and checks that the pipeline
// reproduces the seeds' promotion table transition by transition.
func TestSeedPipeline(t *testing.T) {
	t.Parallel()
	ex := loadExample(t, "seed-pipeline.yaml")
	envs, pipes, apps := ex.envs, ex.pipes, ex.apps
	violations, err := environment.CheckSet(envs, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("CheckSet: %v", err)
	}
	for name, vs := range violations {
		for _, v := range vs {
			if name != "prod" || !v.Waived {
				t.Errorf("%s: unexpected violation %+v", name, v)
			}
		}
	}
	p, ok := pipes["cis-16-8"]
	if !ok || len(pipes) != 1 {
		t.Fatalf("pipelines %v, want exactly cis-16-8", pipes)
	}
	if err := pipeline.Check(p, envs); err != nil {
		t.Errorf("pipeline: %v", err)
	}
	if got := strings.Join(p.Environments(), ","); got != "dev,test,staging,uat,preprod,prod" || !p.Cumulative {
		t.Errorf("stages %s cumulative %v, want dev,test,staging,uat,preprod,prod cumulative", got, p.Cumulative)
	}
	a, ok := apps["payments"]
	if !ok {
		t.Fatal("no application payments")
	}
	if err := application.Check(a, pipes); err != nil {
		t.Errorf("application: %v", err)
	}
	if !a.UserFacing || strings.Join(a.Signoffs, ",") != "accessibility,compliance" || a.Pipeline != "cis-16-8" {
		t.Errorf("payments = %+v, want user-facing, signoffs accessibility and compliance, pipeline cis-16-8", a)
	}

	// Each transition's own gates, as "name[detail]", and what the
	// cumulative list adds up to.
	describe := func(g gate.Spec) string {
		d := g.Name
		if d == "" {
			d = g.DefaultName()
		}
		switch {
		case g.MinPercent != 0:
			d += fmt.Sprintf("[>=%g]", g.MinPercent)
		case g.MaxSeverity != "":
			d += "[<=" + g.MaxSeverity + "]"
		case g.Type == gate.TypePerf:
			d += fmt.Sprintf("[p95<=%g,p99<=%g,err<=%g]", g.MaxP95Ms, g.MaxP99Ms, *g.MaxErrorRate)
		case g.Role != "":
			d += "[" + g.Role + "]"
		}
		if g.When != "" {
			d += "?" + g.When
		}
		return d
	}
	own := map[string]string{
		"dev":     "",
		"test":    "tests-unit,coverage[>=80],sast[<=medium],sca[<=high],lint,sbom",
		"staging": "tests-integration,tests-contract,tests-e2e",
		"uat":     "dast[<=medium],perf[p95<=500,p99<=1000,err<=0.01],containerScan[<=medium],signature",
		"preprod": `signoff-uat[business-owner],signoff-accessibility[tech-lead]?app.declares("accessibility"),signoff-compliance[security]?app.declares("compliance")`,
		"prod":    `tests-smoke,skipped-tests,approvals,business-approval?app.userFacing,changeRequest,window,rollbackTested`,
	}
	var cumulative []string
	for i, st := range p.Stages {
		var got []string
		for _, g := range st.Gates {
			got = append(got, describe(g))
		}
		if strings.Join(got, ",") != own[st.Environment] {
			t.Errorf("gates into %s = %s\nwant %s", st.Environment, strings.Join(got, ","), own[st.Environment])
		}
		if own[st.Environment] != "" {
			cumulative = append(cumulative, own[st.Environment])
		}
		all, err := p.GatesFor(st.Environment)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range all {
			names = append(names, describe(g))
		}
		if strings.Join(names, ",") != strings.Join(cumulative, ",") {
			t.Errorf("GatesFor(%s) = %s\nwant %s", st.Environment, strings.Join(names, ","), strings.Join(cumulative, ","))
		}
		if _, err := gate.Compile(all); err != nil {
			t.Errorf("GatesFor(%s) does not compile: %v", st.Environment, err)
		}
		if prev, ok := p.Previous(st.Environment); ok != (i > 0) || (i > 0 && prev != p.Stages[i-1].Environment) {
			t.Errorf("Previous(%s) = %q, %v", st.Environment, prev, ok)
		}
	}
	prodGates, _ := p.GatesFor("prod")
	if len(prodGates) != 23 {
		t.Errorf("the prod transition has %d gates, want 23 (6 + 3 + 4 + 3 + 7)", len(prodGates))
	}
}
