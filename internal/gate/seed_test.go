package gate_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	_ "github.com/airlock-dev/airlock/internal/rollout" // the rollbackTested gate type
	_ "github.com/airlock-dev/airlock/internal/window"  // the window gate type the seed pipeline uses
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seedProdGates compiles the gates of examples/seed-pipeline.yaml's
// transition into prod, and returns payments' spec.
func seedProdGates(tb testing.TB) ([]gate.Gate, application.Spec) {
	tb.Helper()
	data, err := os.ReadFile("../../examples/seed-pipeline.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	s := resource.NewScheme()
	environment.Register(s)
	pipeline.Register(s)
	application.Register(s)
	objs, err := s.Decode("examples/seed-pipeline.yaml", data)
	if err != nil {
		tb.Fatal(err)
	}
	var p pipeline.Spec
	var app application.Spec
	for _, o := range objs {
		switch o.Ref() {
		case "Pipeline/cis-16-8":
			err = o.DecodeSpec(&p)
		case "Application/payments":
			err = o.DecodeSpec(&app)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	specs, err := p.GatesFor("prod")
	if err != nil {
		tb.Fatal(err)
	}
	gs, err := gate.Compile(specs)
	if err != nil {
		tb.Fatal(err)
	}
	return gs, app
}

// seedEvidence is 31 pieces of trusted evidence that satisfy every gate of
// the seed pipeline's prod transition, one of them superseded by a later
// report of the same name.
func seedEvidence() []gate.Evidence {
	var out []gate.Evidence
	n := 0
	add := func(typ evidence.Type, suite evidence.Suite, name string, facts map[string]any, fs []evidence.Finding) {
		n++
		out = append(out, gate.Evidence{
			Digest: fmt.Sprintf("sha256:%064x", n), Type: typ, Suite: suite, Name: name,
			Report:  evidence.Report{Type: typ, Format: "test", Facts: facts, Findings: fs},
			Trusted: typ != evidence.Signoff, Signer: "ci-github", SubmittedBy: "ci", SubmittedAt: now.Add(time.Duration(n) * time.Minute),
		})
	}
	tests := func(suite evidence.Suite, name string, total, failed, skipped float64) {
		add(evidence.Tests, suite, name, map[string]any{"tests.total": total, "tests.passed": total - failed - skipped,
			"tests.failed": failed, "tests.skipped": skipped, "tests.suite": string(suite)}, nil)
	}
	tests(evidence.Unit, "core.xml", 400, 2, 0) // superseded below
	for i, total := range []float64{400, 250, 120, 80} {
		tests(evidence.Unit, []string{"core.xml", "api.xml", "db.xml", "cli.xml"}[i], total, 0, 3)
	}
	for i := range 3 {
		tests(evidence.Integration, fmt.Sprintf("integration-%d.xml", i), 60, 0, 1)
	}
	for i := range 2 {
		tests(evidence.Contract, fmt.Sprintf("pact-%d.xml", i), 25, 0, 0)
	}
	for i := range 3 {
		tests(evidence.E2E, fmt.Sprintf("e2e-%d.xml", i), 40, 0, 2)
	}
	for i := range 2 {
		tests(evidence.Smoke, fmt.Sprintf("smoke-%d.xml", i), 12, 0, 0)
	}
	add(evidence.Coverage, "", "go", map[string]any{"coverage.line_percent": 84.2}, nil)
	add(evidence.Coverage, "", "web", map[string]any{"coverage.line_percent": 81.0}, nil)
	scan := func(typ evidence.Type, name string, counts map[evidence.Severity]int) {
		facts := map[string]any{}
		evidence.SetSeverityFacts(facts, string(typ), counts)
		var fs []evidence.Finding
		for _, sv := range []evidence.Severity{evidence.Critical, evidence.High, evidence.Medium, evidence.Low} {
			for i := range counts[sv] {
				fs = append(fs, evidence.Finding{ID: fmt.Sprintf("%s-%s-%d", typ, sv, i), Severity: sv, Location: fmt.Sprintf("pkg/file%d.go:%d", i, i*7)})
			}
		}
		add(typ, "", name, facts, fs)
	}
	scan(evidence.SAST, "gosec", map[evidence.Severity]int{evidence.Medium: 40, evidence.Low: 120})
	scan(evidence.SAST, "semgrep", map[evidence.Severity]int{evidence.Medium: 12})
	scan(evidence.SCA, "go", map[evidence.Severity]int{evidence.High: 2, evidence.Medium: 9})
	scan(evidence.SCA, "npm", map[evidence.Severity]int{evidence.High: 1, evidence.Low: 30})
	scan(evidence.Lint, "golangci-lint", map[evidence.Severity]int{})
	scan(evidence.DAST, "zap", map[evidence.Severity]int{evidence.Medium: 3, evidence.Low: 8})
	scan(evidence.ContainerScan, "trivy", map[evidence.Severity]int{evidence.Medium: 14, evidence.Low: 60})
	add(evidence.SBOM, "", "sbom", map[string]any{"sbom.format": "cyclonedx-1.5", "sbom.components": 212.0}, nil)
	add(evidence.Perf, "", "k6", map[string]any{"perf.p95_ms": 210.0, "perf.p99_ms": 480.0, "perf.error_rate": 0.002}, nil)
	add(evidence.Signature, "", "bundle", map[string]any{"signature.verified": true}, nil)
	add(evidence.Rollback, "", "rehearsal-preprod", map[string]any{"rollback.passed": true, "rollback.environment": "preprod", "rollback.tier": "preproduction", "rollback.previous": "1.3.9", "rollback.ms": 41.0}, nil)
	for _, s := range []struct{ kind, role, by string }{
		{"uat", "business-owner", "bob"}, {"accessibility", "tech-lead", "ana"}, {"compliance", "security", "carl"},
	} {
		add(evidence.Signoff, "", s.kind, map[string]any{"signoff.kind": s.kind, "signoff.role": s.role}, nil)
		out[len(out)-1].SubmittedBy = s.by
	}
	return out
}

func seedInput(app application.Spec) *gate.Input {
	return &gate.Input{
		App: "payments", AppSpec: app,
		Release: release.Spec{App: "payments", Version: "1.4.0", Commit: "abcdef1", Creator: "dana",
			Artifact: release.Artifact{Digest: "sha256:" + strings.Repeat("ab", 32)}},
		From: "preprod", To: "prod", ToTier: environment.TierProduction,
		Evidence: seedEvidence(), Now: now.Add(time.Hour), RequestedBy: "deployer",
		Extra: map[string]any{approval.GateType: seedApprovals(), change.GateType: []change.Request{{
			Name: "chg-20260301-001", CreatedAt: now,
			Spec:   change.Spec{App: "payments", Version: "1.4.0", Environment: "prod", Summary: "s", Risk: change.Low, RollbackPlan: "p", RaisedBy: "deployer"},
			Status: change.Status{Phase: change.Approved, Votes: []change.Vote{{Approver: "lena", Roles: []string{"tech-lead"}, Decision: change.Approve, Reason: "ok", At: now}}},
		}}},
	}
}

// seedApprovals is the full approval chain of the seed pipeline's prod
// transition: a tech lead, an SRE and the business owner, three people.
func seedApprovals() []approval.Approval {
	var out []approval.Approval
	for who, role := range map[string]string{"lena": "tech-lead", "sam": "sre", "bo": "business-owner"} {
		out = append(out, approval.Approval{Name: who, CreatedAt: now, Spec: approval.Spec{
			Promotion: "payments-1.4.0.to.prod", Digest: "sha256:" + strings.Repeat("ab", 32),
			Approver: who, Roles: []string{role}, Decision: approval.Approve, Reason: "reviewed",
		}})
	}
	return out
}

// TestSeedProdTransition judges the seed pipeline's prod transition on
// complete evidence (everything passes), then takes pieces away.
func TestSeedProdTransition(t *testing.T) {
	t.Parallel()
	gs, app := seedProdGates(t)
	in := seedInput(app)
	if len(in.Evidence) != 31 {
		t.Fatalf("%d pieces of evidence, want 31", len(in.Evidence))
	}
	rs := gate.Evaluate(gs, in)
	for _, r := range rs {
		if r.Status != gate.StatusPass {
			t.Errorf("%s: %s %q fix %q", r.Gate, r.Status, r.Reasons, r.Fix)
		}
	}
	if gate.Blocking(rs) {
		t.Error("Blocking on complete evidence")
	}

	// Without the compliance declaration, its sign-off is skipped.
	app2 := app
	app2.Signoffs = []string{"accessibility"}
	for _, r := range gate.Evaluate(gs, seedInput(app2)) {
		if want := gate.StatusPass; r.Gate == "signoff-compliance" {
			want = gate.StatusSkipped
			if r.Status != want {
				t.Errorf("%s = %s, want %s", r.Gate, r.Status, want)
			}
		}
	}

	// The same evidence delivered unsigned satisfies no CI gate of prod.
	in = seedInput(app)
	for i := range in.Evidence {
		in.Evidence[i].Trusted = false
	}
	byGate := map[string]gate.Result{}
	for _, r := range gate.Evaluate(gs, in) {
		byGate[r.Gate] = r
	}
	for _, g := range []string{"tests-unit", "coverage", "sast", "sca", "signature", "skipped-tests"} {
		if r := byGate[g]; r.Status != gate.StatusFail || !strings.Contains(strings.Join(r.Reasons, " "), "untrusted") && !strings.Contains(strings.Join(r.Reasons, " "), "not trusted") {
			t.Errorf("%s with untrusted evidence = %s %q, want fail naming the untrusted evidence", g, r.Status, r.Reasons)
		}
	}
	if r := byGate["signoff-uat"]; r.Status != gate.StatusPass {
		t.Errorf("signoff-uat = %s, want pass: sign-offs are a person's act, not CI evidence", r.Status)
	}
}

// BenchmarkEvaluate judges every gate of the seed pipeline's prod
// transition (18 gates, one a CEL expression) on 30 pieces of evidence.
// Target: under 5 ms per evaluation.
func BenchmarkEvaluate(b *testing.B) {
	gs, app := seedProdGates(b)
	in := seedInput(app)
	b.ReportAllocs()
	for b.Loop() {
		rs := gate.Evaluate(gs, in)
		if gate.Blocking(rs) {
			b.Fatal("blocked")
		}
	}
}
