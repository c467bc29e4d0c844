package gate

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/release"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// ev builds one piece of evidence; n numbers it (digest and submission
// order), facts alternate name, value.
func ev(n int, typ evidence.Type, trusted bool, facts ...any) Evidence {
	f := map[string]any{}
	for i := 0; i+1 < len(facts); i += 2 {
		f[facts[i].(string)] = facts[i+1]
	}
	e := Evidence{Digest: digest(n), Type: typ, Name: fmt.Sprintf("doc%d", n), Report: evidence.Report{Type: typ, Facts: f},
		Trusted: trusted, SubmittedBy: "ci", SubmittedAt: t0.Add(time.Duration(n) * time.Minute)}
	if trusted {
		e.Signer = "ci-key"
	}
	return e
}

func named(e Evidence, name string) Evidence { e.Name = name; return e }

func suite(e Evidence, s evidence.Suite) Evidence { e.Suite = s; return e }

func findings(e Evidence, fs ...evidence.Finding) Evidence { e.Report.Findings = fs; return e }

func tests(n int, trusted bool, total, failed float64) Evidence {
	return suite(ev(n, evidence.Tests, trusted, "tests.total", total, "tests.passed", total-failed, "tests.failed", failed, "tests.skipped", 0.0), evidence.Unit)
}

func scan(n int, typ evidence.Type, counts map[evidence.Severity]int) Evidence {
	e := ev(n, typ, false)
	sc := map[evidence.Severity]int{}
	for sv, c := range counts {
		sc[sv] = c
	}
	evidence.SetSeverityFacts(e.Report.Facts, string(typ), sc)
	return e
}

func input(tier environment.Tier, evs ...Evidence) *Input {
	return &Input{
		App:     "payments",
		AppSpec: application.Spec{Owners: []string{"team-payments"}, Pipeline: "cis-16-8", UserFacing: true, Signoffs: []string{"accessibility"}},
		Release: release.Spec{App: "payments", Version: "1.4.0", Commit: "abcdef1", Creator: "dev-dana",
			Artifact: release.Artifact{Digest: digest(999)}},
		From: "preprod", To: "prod", ToTier: tier, Evidence: evs, Now: t0.Add(24 * time.Hour),
	}
}

func ptr[T any](v T) *T { return &v }

func mustCompile(t testing.TB, specs ...Spec) []Gate {
	t.Helper()
	gs, err := Compile(specs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return gs
}

// check is one expected outcome: status, and substrings of the joined
// reasons, the fix and the used digests.
type check struct {
	status    Status
	reasons   []string
	noReasons []string
	fix       []string
	used      []int
}

func (c check) verify(t *testing.T, r Result) {
	t.Helper()
	if r.Status != c.status {
		t.Errorf("status = %s, want %s; reasons %q", r.Status, c.status, r.Reasons)
	}
	all := strings.Join(r.Reasons, "\n")
	for _, s := range c.reasons {
		if !strings.Contains(all, s) {
			t.Errorf("reasons %q do not contain %q", r.Reasons, s)
		}
	}
	for _, s := range c.noReasons {
		if strings.Contains(all, s) {
			t.Errorf("reasons %q contain %q", r.Reasons, s)
		}
	}
	for _, s := range c.fix {
		if !strings.Contains(r.Fix, s) {
			t.Errorf("fix %q does not contain %q", r.Fix, s)
		}
	}
	if r.Status == StatusPass && r.Fix != "" {
		t.Errorf("a passing gate has fix %q", r.Fix)
	}
	if c.used != nil {
		want := make([]string, len(c.used))
		for i, n := range c.used {
			want[i] = digest(n)
		}
		if strings.Join(r.Evidence, ",") != strings.Join(want, ",") {
			t.Errorf("evidence used = %v, want %v", r.Evidence, want)
		}
	}
}

func TestBuiltinGates(t *testing.T) {
	t.Parallel()
	const dev, prod = environment.TierTesting, environment.TierProduction
	sevFinding := func(id string, sv evidence.Severity) evidence.Finding {
		return evidence.Finding{ID: id, Severity: sv, Location: "main.go:12"}
	}
	expired := []Suppression{{ID: "G401", Reason: "md5 for cache keys only", Owner: "alice", Expires: "2026-02-28"}}
	active := []Suppression{{ID: "G401", Reason: "md5 for cache keys only", Owner: "alice", Expires: "2026-03-02"}}
	tt := []struct {
		name string
		spec Spec
		in   *Input
		want check
	}{
		// tests
		{"tests pass", Spec{Type: "tests"}, input(dev, tests(1, false, 120, 0)),
			check{status: StatusPass, reasons: []string{"unit tests: 120 passed, 0 failed"}, used: []int{1}}},
		{"tests failed", Spec{Type: "tests"}, input(dev, tests(1, false, 120, 3)),
			check{status: StatusFail, reasons: []string{"unit tests: 3 of 120 failed (evidence sha256:000000000000… (doc1))"},
				fix: []string{"fix the failing unit tests", "airlock evidence add payments 1.4.0 --type tests --suite unit"}}},
		{"failed tests named", Spec{Type: "tests"}, input(dev, func() Evidence {
			e := tests(1, false, 120, 4)
			e.Report.Facts["tests.failed_names"] = []string{"TestA", "TestB", "TestC", "TestD"}
			return e
		}()),
			check{status: StatusFail, reasons: []string{"unit tests: 4 of 120 failed: TestA, TestB, TestC, … (evidence"}}},
		{"tests below minimum count", Spec{Type: "tests", MinCount: 200}, input(dev, tests(1, false, 120, 0)),
			check{status: StatusFail, reasons: []string{"unit tests: 120 ran; the gate requires at least 200"}}},
		{"empty suite fails by default", Spec{Type: "tests"}, input(dev, tests(1, false, 0, 0)),
			check{status: StatusFail, reasons: []string{"0 ran; the gate requires at least 1"}}},
		{"tests absent", Spec{Type: "tests", Suite: "e2e"}, input(dev, tests(1, false, 120, 0)),
			check{status: StatusPending, reasons: []string{"no e2e test evidence is attached to payments 1.4.0"}, fix: []string{"--type tests --suite e2e"}}},
		{"distinct names add up", Spec{Type: "tests", MinCount: 150}, input(dev, named(tests(1, false, 100, 0), "a.xml"), named(tests(2, false, 60, 0), "b.xml")),
			check{status: StatusPass, reasons: []string{"160 passed", "across 2 reports"}, used: []int{1, 2}}},
		{"only the latest per name counts", Spec{Type: "tests"}, input(dev, named(tests(1, false, 100, 4), "a.xml"), named(tests(2, false, 100, 0), "a.xml")),
			check{status: StatusPass, used: []int{2}}},
		{"a later failing report supersedes a pass", Spec{Type: "tests"}, input(dev, named(tests(2, false, 100, 1), "a.xml"), named(tests(1, false, 100, 0), "a.xml")),
			check{status: StatusFail, used: []int{2}}},
		{"suite from facts", Spec{Type: "tests", Suite: "smoke"}, input(dev, ev(1, evidence.Tests, false, "tests.suite", "smoke", "tests.total", 5.0, "tests.failed", 0.0, "tests.passed", 5.0)),
			check{status: StatusPass, reasons: []string{"smoke tests: 5 passed"}}},

		// coverage
		{"coverage below", Spec{Type: "coverage", MinPercent: 80}, input(dev, ev(1, evidence.Coverage, false, "coverage.line_percent", 71.4)),
			check{status: StatusFail, reasons: []string{"line coverage 71.4% is below the required 80% (evidence sha256:000000000000…"},
				fix: []string{"add tests until line coverage reaches 80%", "--type coverage cover.out"}}},
		{"coverage exactly the minimum passes", Spec{Type: "coverage", MinPercent: 80}, input(dev, ev(1, evidence.Coverage, false, "coverage.line_percent", 80.0)),
			check{status: StatusPass, reasons: []string{"line coverage 80% meets the required 80%"}}},
		{"lowest of several coverage reports", Spec{Type: "coverage", MinPercent: 80}, input(dev, ev(1, evidence.Coverage, false, "coverage.line_percent", 91.0), ev(2, evidence.Coverage, false, "coverage.line_percent", 79.9)),
			check{status: StatusFail, reasons: []string{"79.9% (the lowest of 2 reports)"}}},
		{"coverage absent", Spec{Type: "coverage", MinPercent: 80}, input(dev),
			check{status: StatusPending, fix: []string{"airlock evidence add payments 1.4.0 --type coverage"}}},

		// scanners
		{"sast high above medium", Spec{Type: "sast", MaxSeverity: "medium"},
			input(dev, findings(scan(1, evidence.SAST, map[evidence.Severity]int{evidence.High: 2, evidence.Medium: 5}), sevFinding("G401", evidence.High), sevFinding("G402", evidence.High))),
			check{status: StatusFail, reasons: []string{"sast: 2 high findings, and the gate allows nothing above medium; e.g. G401 at main.go:12 (high)"}, fix: []string{"suppression", "--type sast"}}},
		{"sast medium only passes", Spec{Type: "sast", MaxSeverity: "medium"}, input(dev, scan(1, evidence.SAST, map[evidence.Severity]int{evidence.Medium: 5})),
			check{status: StatusPass, reasons: []string{"sast: 5 medium, nothing above medium"}}},
		{"sca default is clean", Spec{Type: "sca"}, input(dev, scan(1, evidence.SCA, map[evidence.Severity]int{evidence.Low: 1})),
			check{status: StatusFail, reasons: []string{"1 low findings, and the gate allows nothing above none"}}},
		{"container scan reads container-scan facts", Spec{Type: "containerScan", MaxSeverity: "high"}, input(dev, scan(1, evidence.ContainerScan, map[evidence.Severity]int{evidence.Critical: 1})),
			check{status: StatusFail, reasons: []string{"container-scan: 1 critical findings"}}},
		{"counted from findings without facts", Spec{Type: "dast", MaxSeverity: "medium"}, input(dev, findings(ev(1, evidence.DAST, false), sevFinding("10038", evidence.High))),
			check{status: StatusFail, reasons: []string{"dast: 1 high findings"}}},
		{"active suppression", Spec{Type: "sast", MaxSeverity: "medium", Suppressions: active},
			input(dev, findings(scan(1, evidence.SAST, map[evidence.Severity]int{evidence.High: 2}), sevFinding("G401", evidence.High), sevFinding("g401", evidence.High))),
			check{status: StatusPass, reasons: []string{"2 findings suppressed: G401 ×2 (owner alice, until 2026-03-02: md5 for cache keys only)"}}},
		{"suppression of another id does not help", Spec{Type: "sast", MaxSeverity: "medium", Suppressions: active},
			input(dev, findings(scan(1, evidence.SAST, map[evidence.Severity]int{evidence.High: 2}), sevFinding("G401", evidence.High), sevFinding("G402", evidence.High))),
			check{status: StatusFail, reasons: []string{"1 high findings", "e.g. G402", "1 findings suppressed"}}},
		{"expired suppression", Spec{Type: "sast", MaxSeverity: "medium", Suppressions: expired},
			input(dev, findings(scan(1, evidence.SAST, map[evidence.Severity]int{evidence.High: 1}), sevFinding("G401", evidence.High))),
			check{status: StatusFail, reasons: []string{"suppression of G401 (owner alice: md5 for cache keys only) expired 2026-02-28 and no longer suppresses; its 1 findings count again"},
				noReasons: []string{"suppressed:"}}},
		{"suppression valid through its date", Spec{Type: "sast", MaxSeverity: "medium", Suppressions: []Suppression{{ID: "G401", Reason: "r", Owner: "o", Expires: "2026-03-02"}}},
			func() *Input {
				in := input(dev, findings(scan(1, evidence.SAST, map[evidence.Severity]int{evidence.High: 1}), sevFinding("G401", evidence.High)))
				in.Now = time.Date(2026, 3, 2, 23, 59, 0, 0, time.UTC)
				return in
			}(),
			check{status: StatusPass}},
		{"max counts", Spec{Type: "lint", MaxCounts: map[string]int{"medium": 3, "total": 10}}, input(dev, scan(1, evidence.Lint, map[evidence.Severity]int{evidence.Medium: 4, evidence.Low: 7})),
			check{status: StatusFail, reasons: []string{"lint: 4 medium findings exceed the cap of 3", "lint: 11 total findings exceed the cap of 10"}}},
		{"max counts within", Spec{Type: "iac", MaxCounts: map[string]int{"high": 0}}, input(dev, scan(1, evidence.IaC, map[evidence.Severity]int{evidence.Medium: 4})),
			check{status: StatusPass, reasons: []string{"iac: 4 medium, within the caps"}}},
		{"several scans add up", Spec{Type: "sca", MaxCounts: map[string]int{"high": 1}},
			input(dev, named(scan(1, evidence.SCA, map[evidence.Severity]int{evidence.High: 1}), "go"), named(scan(2, evidence.SCA, map[evidence.Severity]int{evidence.High: 1}), "npm")),
			check{status: StatusFail, reasons: []string{"2 high findings exceed the cap of 1"}}},

		// sbom
		{"sbom", Spec{Type: "sbom", Format: "cyclonedx"}, input(dev, ev(1, evidence.SBOM, false, "sbom.format", "cyclonedx-1.5", "sbom.components", 143.0)),
			check{status: StatusPass, reasons: []string{"lists 143 components"}}},
		{"sbom wrong format", Spec{Type: "sbom", Format: "cyclonedx"}, input(dev, ev(1, evidence.SBOM, false, "sbom.format", "spdx-2.3", "sbom.components", 143.0)),
			check{status: StatusFail, reasons: []string{"is spdx-2.3, and the gate requires cyclonedx"}, fix: []string{"a cyclonedx SBOM"}}},
		{"sbom empty", Spec{Type: "sbom"}, input(dev, ev(1, evidence.SBOM, false, "sbom.format", "spdx-2.3", "sbom.components", 0.0)),
			check{status: StatusFail, reasons: []string{"lists no components"}}},

		// perf
		{"perf within", Spec{Type: "perf", MaxP95Ms: 300, MaxErrorRate: ptr(0.01)}, input(dev, ev(1, evidence.Perf, false, "perf.p95_ms", 182.5, "perf.p99_ms", 900.0, "perf.error_rate", 0.002)),
			check{status: StatusPass, reasons: []string{"p95 latency 182.5 ms within 300 ms", "error rate 0.2% within 1%"}}},
		{"perf over", Spec{Type: "perf", MaxP99Ms: 500, MaxErrorRate: ptr(0.0)}, input(dev, ev(1, evidence.Perf, false, "perf.p99_ms", 900.0, "perf.error_rate", 0.002)),
			check{status: StatusFail, reasons: []string{"p99 latency 900 ms exceeds the threshold of 500 ms", "error rate 0.2% exceeds the threshold of 0%"}}},
		{"perf fact missing", Spec{Type: "perf", MaxP99Ms: 500}, input(dev, ev(1, evidence.Perf, false, "perf.p95_ms", 9.0)),
			check{status: StatusFail, reasons: []string{"has no p99 latency (fact perf.p99_ms)"}}},

		// signature
		{"signature trusted", Spec{Type: "signature"}, input(dev, ev(1, evidence.Signature, true, "signature.verified", true)),
			check{status: StatusPass, reasons: []string{"artifact signed by ci-key, verified"}}},
		{"signature not verified", Spec{Type: "signature"}, input(dev, ev(1, evidence.Signature, true, "signature.verified", false)),
			check{status: StatusFail, reasons: []string{"did not verify"}}},
		{"signature untrusted even outside production", Spec{Type: "signature"}, input(dev, ev(1, evidence.Signature, false, "signature.verified", true)),
			check{status: StatusFail, reasons: []string{"is not trusted"}, fix: []string{"signed by a registered CI key"}}},

		// signoff
		{"signoff", Spec{Type: "signoff", Kind: "uat", Role: "business-owner"}, input(prod, ev(1, evidence.Signoff, false, "signoff.kind", "uat", "signoff.role", "business-owner")),
			check{status: StatusPass, reasons: []string{"uat sign-off by ci as business-owner"}}},
		{"signoff by the wrong role", Spec{Type: "signoff", Kind: "uat", Role: "business-owner"}, input(prod, ev(1, evidence.Signoff, false, "signoff.kind", "uat", "signoff.role", "developer")),
			check{status: StatusPending, reasons: []string{"no uat sign-off is recorded", "as developer does not count: the gate requires role business-owner"}, fix: []string{"a person with role business-owner"}}},
		{"signoff by the release's creator", Spec{Type: "signoff", Kind: "uat"},
			func() *Input {
				e := ev(1, evidence.Signoff, false, "signoff.kind", "uat")
				e.SubmittedBy = "dev-dana"
				return input(prod, e)
			}(),
			check{status: StatusPending, reasons: []string{"dev-dana created this release"}}},
		{"signoff of another kind", Spec{Type: "signoff", Kind: "compliance"}, input(prod, ev(1, evidence.Signoff, false, "signoff.kind", "uat")),
			check{status: StatusPending, reasons: []string{"no compliance sign-off"}}},
		{"when true", Spec{Type: "signoff", Kind: "accessibility", When: `app.declares("accessibility")`}, input(prod),
			check{status: StatusPending}},
		{"when false skips", Spec{Type: "signoff", Kind: "compliance", When: `app.declares("compliance")`}, input(prod),
			check{status: StatusSkipped, reasons: []string{`not required: condition app.declares("compliance") is false for payments`}}},
		{"when on facts", Spec{Type: "coverage", MinPercent: 50, When: `facts["tests.total"] > 100.0`}, input(dev, tests(1, false, 10, 0)),
			check{status: StatusSkipped}},
		{"when on facts true", Spec{Type: "coverage", MinPercent: 50, When: `facts["tests.total"] > 100.0`}, input(dev, tests(1, false, 200, 0)),
			check{status: StatusPending}},
		{"when on a field", Spec{Type: "coverage", MinPercent: 50, When: `!app.userFacing`}, input(dev),
			check{status: StatusSkipped}},

		// trust
		{"untrusted fails in production", Spec{Type: "coverage", MinPercent: 80}, input(prod, ev(1, evidence.Coverage, false, "coverage.line_percent", 90.0)),
			check{status: StatusFail, reasons: []string{"coverage evidence sha256:000000000000… (doc1) is not trusted", "the default for promotions to production"},
				fix: []string{"DSSE envelope signed by a registered CI key"}}},
		{"trusted passes in production", Spec{Type: "coverage", MinPercent: 80}, input(prod, ev(1, evidence.Coverage, true, "coverage.line_percent", 90.0)),
			check{status: StatusPass, used: []int{1}}},
		{"a newer untrusted piece does not displace a trusted one", Spec{Type: "coverage", MinPercent: 80},
			input(prod, named(ev(1, evidence.Coverage, true, "coverage.line_percent", 90.0), "c"), named(ev(2, evidence.Coverage, false, "coverage.line_percent", 10.0), "c")),
			check{status: StatusPass, used: []int{1}, reasons: []string{"ignored untrusted evidence sha256:000000000000… (c)"}}},
		{"untrusted accepted when not required", Spec{Type: "coverage", MinPercent: 80, RequireTrusted: ptr(false)}, input(prod, ev(1, evidence.Coverage, false, "coverage.line_percent", 90.0)),
			check{status: StatusPass}},
		{"trust required outside production", Spec{Type: "tests", RequireTrusted: ptr(true)}, input(dev, tests(1, false, 10, 0)),
			check{status: StatusFail, reasons: []string{"unit tests evidence", "is not trusted"}, noReasons: []string{"the default"}}},
		{"untrusted accepted outside production", Spec{Type: "coverage", MinPercent: 80}, input(dev, ev(1, evidence.Coverage, false, "coverage.line_percent", 90.0)),
			check{status: StatusPass}},

		// message
		{"message first", Spec{Type: "coverage", MinPercent: 80, Message: "ask #payments-qa for help"}, input(dev, ev(1, evidence.Coverage, false, "coverage.line_percent", 10.0)),
			check{status: StatusFail, reasons: []string{"ask #payments-qa for help\nline coverage 10%"}}},
	}
	for _, tc := range tt {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gs := mustCompile(t, tc.spec)
			r := Evaluate(gs, tc.in)[0]
			if r.Gate != gs[0].Spec().Name || r.Type != tc.spec.Type {
				t.Errorf("result names gate %q type %q, want %q %q", r.Gate, r.Type, gs[0].Spec().Name, tc.spec.Type)
			}
			tc.want.verify(t, r)
		})
	}
}

func TestExpression(t *testing.T) {
	t.Parallel()
	const tier = environment.TierStaging
	cov := func(n int, p float64) Evidence { return ev(n, evidence.Coverage, false, "coverage.line_percent", p) }
	both := `facts["coverage.line_percent"] >= 80.0 && facts["tests.failed"] == 0.0`
	tt := []struct {
		name string
		spec Spec
		in   *Input
		want check
	}{
		{"true", Spec{Type: "expression", Name: "quality", Expression: both}, input(tier, cov(1, 85), tests(2, false, 10, 0)),
			check{status: StatusPass, reasons: []string{"is true (coverage.line_percent = 85, tests.failed = 0)"}, used: []int{1, 2}}},
		{"false with message", Spec{Type: "expression", Name: "quality", Expression: both, Message: "keep coverage at 80% with no failures"},
			input(tier, cov(1, 85), tests(2, false, 10, 1)),
			check{status: StatusFail, reasons: []string{"keep coverage at 80% with no failures", "is false (coverage.line_percent = 85, tests.failed = 1)"}, fix: []string{"keep coverage"}}},
		{"missing fact is pending", Spec{Type: "expression", Expression: both}, input(tier, tests(2, false, 10, 0)),
			check{status: StatusPending, reasons: []string{"needs fact coverage.line_percent"}, fix: []string{"--type coverage"}}},
		{"fact only untrusted fails in production", Spec{Type: "expression", Expression: both}, input(environment.TierProduction, cov(1, 85), func() Evidence { e := tests(2, false, 10, 0); e.Trusted = true; return e }()),
			check{status: StatusFail, reasons: []string{"fact coverage.line_percent comes only from untrusted evidence"}, fix: []string{"registered CI key"}}},
		{"counts add up across suites", Spec{Type: "expression", Expression: `facts["tests.total"] == 30.0 && facts["tests.e2e.total"] == 20.0`},
			input(tier, tests(1, false, 10, 0), suite(tests(2, false, 20, 0), evidence.E2E)),
			check{status: StatusPass}},
		{"worst value wins", Spec{Type: "expression", Expression: `facts["coverage.line_percent"] == 60.0 && facts["sast.max_severity"] == "high"`},
			input(tier, cov(1, 85), cov(2, 60), scan(3, evidence.SAST, map[evidence.Severity]int{evidence.High: 1}), scan(4, evidence.SAST, map[evidence.Severity]int{evidence.Low: 1})),
			check{status: StatusPass}},
		{"context variables", Spec{Type: "expression", Expression: `app.name == "payments" && release.version == "1.4.0" && to == "prod" && tier == "staging" && !emergency && "accessibility" in app.signoffs && now > timestamp("2026-01-01T00:00:00Z")`},
			input(tier), check{status: StatusPass}},
		{"evidence list", Spec{Type: "expression", Expression: `evidence.exists(e, e.type == "coverage" && e.facts["coverage.line_percent"] > 80.0)`},
			input(tier, cov(1, 85)), check{status: StatusPass}},
		{"ints and doubles compare", Spec{Type: "expression", Expression: `facts["tests.failed"] == 0 && facts["tests.total"] > 9`}, input(tier, tests(2, false, 10, 0)),
			check{status: StatusPass}},
		{"runtime error fails", Spec{Type: "expression", Expression: `facts["tests.suite"] > 1.0`}, input(tier, ev(2, evidence.Tests, false, "tests.suite", "unit")),
			check{status: StatusFail, reasons: []string{"could not be evaluated: no such overload"}, fix: []string{"correct the expression"}}},
	}
	for _, tc := range tt {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.want.verify(t, Evaluate(mustCompile(t, tc.spec), tc.in)[0])
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tt := []struct {
		name  string
		specs []Spec
		index int
		field string
		msg   []string
	}{
		{"no type", []Spec{{}}, 0, "type", []string{"type is required; one of: tests, coverage"}},
		{"unknown type", []Spec{{Type: "coverage", MinPercent: 1}, {Type: "container-scan"}}, 1, "type", []string{`unknown gate type "container-scan" (did you mean "containerScan"?)`, "known types: tests, coverage, sast, lint, iac, sca, containerScan, dast, sbom, perf, signature, signoff, expression"}},
		{"field of another type", []Spec{{Type: "tests", MaxSeverity: "high"}}, 0, "maxSeverity", []string{"maxSeverity does not apply to a tests gate, which takes only suite, minCount"}},
		{"bad suite", []Spec{{Type: "tests", Suite: "system"}}, 0, "suite", []string{`unknown test suite "system"`, "unit, integration, contract, e2e, smoke"}},
		{"coverage without minimum", []Spec{{Type: "coverage"}}, 0, "minPercent", []string{"needs minPercent between 0 and 100"}},
		{"bad severity", []Spec{{Type: "sast", MaxSeverity: "severe"}}, 0, "maxSeverity", []string{`unknown severity "severe"`}},
		{"bad count key", []Spec{{Type: "sca", MaxCounts: map[string]int{"hi": 1}}}, 0, "maxCounts.hi", []string{"keys are none, low, medium, high, critical or total"}},
		{"suppression without owner", []Spec{{Type: "sca", Suppressions: []Suppression{{ID: "CVE-1", Reason: "r", Owner: "o", Expires: "2026-01-01"}, {ID: "CVE-2", Reason: "r", Expires: "2026-01-01"}}}}, 0, "suppressions[1].owner", []string{"a suppression needs owner"}},
		{"suppression bad expiry", []Spec{{Type: "sca", Suppressions: []Suppression{{ID: "CVE-1", Reason: "r", Owner: "o", Expires: "next week"}}}}, 0, "suppressions[0].expires", []string{`"next week" is not a date`}},
		{"duplicate suppression", []Spec{{Type: "sca", Suppressions: []Suppression{{ID: "CVE-1", Reason: "r", Owner: "o", Expires: "2026-01-01"}, {ID: "cve-1", Reason: "r", Owner: "o", Expires: "2026-01-01"}}}}, 0, "suppressions[1].id", []string{"already suppressed"}},
		{"bad sbom format", []Spec{{Type: "sbom", Format: "swid"}}, 0, "format", []string{"use cyclonedx or spdx"}},
		{"perf without thresholds", []Spec{{Type: "perf"}}, 0, "", []string{"at least one threshold"}},
		{"perf error rate as percent", []Spec{{Type: "perf", MaxErrorRate: ptr(5.0)}}, 0, "maxErrorRate", []string{"a fraction from 0 to 1"}},
		{"signature without trust", []Spec{{Type: "signature", RequireTrusted: ptr(false)}}, 0, "requireTrusted", []string{"always requires"}},
		{"signoff without kind", []Spec{{Type: "signoff", Role: "qa"}}, 0, "kind", []string{"needs the kind"}},
		{"expression empty", []Spec{{Type: "expression"}}, 0, "expression", []string{"needs a CEL expression"}},
		{"bad CEL", []Spec{{Type: "expression", Expression: `fact["x"] > 1.0`}}, 0, "expression", []string{"CEL:", "undeclared reference to 'fact'"}},
		{"CEL not bool", []Spec{{Type: "expression", Expression: `1 + 2`}}, 0, "expression", []string{"yields int; it must yield a bool"}},
		{"bad when", []Spec{{Type: "sbom", When: `app.userFacing &&`}}, 0, "when", []string{"CEL:", "Syntax error"}},
		{"bad name", []Spec{{Type: "sbom", Name: "SBOM"}}, 0, "name", []string{`gate name "SBOM" is invalid`}},
		{"duplicate default name", []Spec{{Type: "tests"}, {Type: "tests", Suite: "unit"}}, 1, "type", []string{`gate name "tests-unit" is already used by gate 1`}},
		{"duplicate name", []Spec{{Type: "sbom", Name: "x"}, {Type: "lint", Name: "x"}}, 1, "name", []string{`"x" is already used`}},
	}
	for _, tc := range tt {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tc.specs)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Compile = %v, want a *SpecError", err)
			}
			if se.Index != tc.index || se.Field != tc.field {
				t.Errorf("error at gates[%d] field %q, want gates[%d] %q: %v", se.Index, se.Field, tc.index, tc.field, se)
			}
			for _, m := range tc.msg {
				if !strings.Contains(se.Msg, m) {
					t.Errorf("message %q does not contain %q", se.Msg, m)
				}
			}
		})
	}
}

func TestCompileDefaultsAndCache(t *testing.T) {
	t.Parallel()
	gs := mustCompile(t, Spec{Type: "tests"}, Spec{Type: "tests", Suite: "e2e"}, Spec{Type: "signoff", Kind: "uat"}, Spec{Type: "sast", Name: "semgrep"})
	var names []string
	for _, g := range gs {
		names = append(names, g.Spec().Name)
	}
	if got := strings.Join(names, ","); got != "tests-unit,tests-e2e,signoff-uat,semgrep" {
		t.Errorf("names = %s", got)
	}
	if gs[0].Spec().Suite != "unit" {
		t.Errorf("default suite = %q, want unit", gs[0].Spec().Suite)
	}
	expr := `facts["x"] == 1.0`
	a := mustCompile(t, Spec{Type: "expression", Expression: expr})[0].(*builtinGate)
	b := mustCompile(t, Spec{Type: "expression", Name: "other", Expression: expr, When: expr})[0].(*builtinGate)
	if a.expr != b.expr || b.when != a.expr {
		t.Error("the same expression text compiled twice; want one cached program")
	}
}

func TestEmergency(t *testing.T) {
	t.Parallel()
	gs := mustCompile(t,
		Spec{Type: "coverage", MinPercent: 80},
		Spec{Type: "tests", Suite: "smoke"},
		Spec{Type: "sast", MaxSeverity: "medium"},
		Spec{Type: "signature"},
		Spec{Type: "sbom"},
	)
	in := input(environment.TierStaging,
		ev(1, evidence.Coverage, false, "coverage.line_percent", 50.0),
		scan(2, evidence.SAST, map[evidence.Severity]int{evidence.Critical: 1}),
		ev(3, evidence.SBOM, false, "sbom.format", "spdx-2.3", "sbom.components", 3.0),
	)
	normal := Evaluate(gs, in)
	in.Emergency = true
	em := Evaluate(gs, in)
	want := []struct {
		normal, emergency Status
		security          bool
	}{
		{StatusFail, StatusWaived, false},
		{StatusPending, StatusWaived, false},
		{StatusFail, StatusFail, true},
		{StatusPending, StatusPending, true},
		{StatusPass, StatusPass, false},
	}
	for i, w := range want {
		if normal[i].Status != w.normal || em[i].Status != w.emergency || em[i].Security != w.security {
			t.Errorf("%s: normal %s emergency %s security %v; want %s %s %v", em[i].Gate, normal[i].Status, em[i].Status, em[i].Security, w.normal, w.emergency, w.security)
		}
	}
	if r := em[0]; !strings.Contains(strings.Join(r.Reasons, "\n"), "line coverage 50% is below the required 80%") ||
		!strings.Contains(strings.Join(r.Reasons, "\n"), "waived for this emergency promotion (the gate was fail)") {
		t.Errorf("waived coverage reasons = %q, want the failure kept and the waiver stated", r.Reasons)
	}
	if !Blocking(em) || !Blocking(normal) {
		t.Error("Blocking = false with a failing security gate")
	}
	if Blocking(em[:2]) {
		t.Error("Blocking = true with only waived gates")
	}
	if Blocking([]Result{{Status: StatusPass}, {Status: StatusSkipped}, {Status: StatusWaived}}) {
		t.Error("Blocking = true for pass, skipped and waived")
	}
}

// fakeGate is a registered gate type for the tests.
type fakeGate struct{ spec Spec }

func (f fakeGate) Spec() Spec { return f.spec }
func (f fakeGate) Evaluate(in *Input) Result {
	if f.spec.Role == "panic" {
		panic("boom")
	}
	st := StatusPending
	if in.To == f.spec.Kind {
		st = StatusPass
	}
	return Result{Gate: f.spec.Name, Type: f.spec.Type, Status: st}
}

// registerFake registers the fake type once per test binary, so -count=N
// does not register it twice.
var registerFake = sync.OnceFunc(func() {
	Register("test-window", func(s Spec) (Gate, error) {
		if s.Kind == "" {
			return nil, &FieldError{Field: "kind", Msg: "a window needs kind"}
		}
		if s.Name == "" {
			s.Name = "window"
		}
		return fakeGate{s}, nil
	})
})

func TestRegister(t *testing.T) {
	t.Parallel()
	registerFake()
	if !contains(Types(), "test-window") {
		t.Errorf("Types() = %v, want test-window listed", Types())
	}
	gs := mustCompile(t, Spec{Type: "test-window", Kind: "prod"}, Spec{Type: "test-window", Name: "p", Kind: "x", Role: "panic"})
	in := input(environment.TierProduction)
	rs := Evaluate(gs, in)
	if rs[0].Status != StatusPass || rs[0].Gate != "window" {
		t.Errorf("registered gate result %+v, want pass", rs[0])
	}
	if rs[1].Status != StatusFail || !strings.Contains(rs[1].Reasons[0], "boom") {
		t.Errorf("panicking gate result %+v, want fail naming the panic", rs[1])
	}
	in.Emergency = true
	if rs := Evaluate(gs[1:], in); rs[0].Status != StatusWaived {
		t.Errorf("non-security registered gate in an emergency = %s, want waived", rs[0].Status)
	}
	_, err := Compile([]Spec{{Type: "sbom"}, {Type: "test-window"}})
	var se *SpecError
	if !errors.As(err, &se) || se.Index != 1 || se.Field != "kind" {
		t.Errorf("Compile with a FieldError = %v, want gates[1].kind", err)
	}
	for _, typ := range []string{"test-window", "coverage"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) twice did not panic", typ)
				}
			}()
			Register(typ, func(Spec) (Gate, error) { return nil, nil })
		}()
	}
}

func TestSuppressionExpiresAt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"2026-06-30", "2026-07-01T00:00:00Z"},
		{"2026-06-30T17:00:00+02:00", "2026-06-30T15:00:00Z"},
	} {
		got, err := Suppression{Expires: tc.in}.ExpiresAt()
		if err != nil || got.UTC().Format(time.RFC3339) != tc.want {
			t.Errorf("ExpiresAt(%s) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestTrustRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec Spec
		tier environment.Tier
		want bool
	}{
		{Spec{Type: "tests"}, environment.TierProduction, true},
		{Spec{Type: "tests"}, environment.TierPreproduction, false},
		{Spec{Type: "tests", RequireTrusted: ptr(false)}, environment.TierProduction, false},
		{Spec{Type: "signoff"}, environment.TierProduction, false},
		{Spec{Type: "signoff", RequireTrusted: ptr(true)}, environment.TierDevelopment, true},
		{Spec{Type: "signature"}, environment.TierDevelopment, true},
	} {
		if got := tc.spec.TrustRequired(tc.tier); got != tc.want {
			t.Errorf("%+v TrustRequired(%s) = %v, want %v", tc.spec, tc.tier, got, tc.want)
		}
	}
}

// TestDocExamples compiles and runs the expression examples of
// docs/gates.md, so the page cannot drift from what CEL accepts.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	gs := mustCompile(t,
		Spec{Type: "expression", Name: "skipped-tests", Expression: `facts["tests.skipped"] <= facts["tests.total"] * 0.05`},
		Spec{Type: "expression", Name: "quality", Expression: `facts["coverage.line_percent"] >= 80.0 && facts["tests.failed"] == 0.0`},
		Spec{Type: "expression", Name: "signed-by-release-ci", Expression: `evidence.all(e, e.type != "tests" || e.signer == "ci-release")`},
		Spec{Type: "coverage", MinPercent: 90, When: `app.userFacing && to == "prod"`},
	)
	in := input(environment.TierStaging, tests(1, true, 100, 0), ev(2, evidence.Coverage, true, "coverage.line_percent", 92.0))
	in.Evidence[0].Signer = "ci-release"
	for _, r := range Evaluate(gs, in) {
		if r.Status != StatusPass {
			t.Errorf("%s = %s %q", r.Gate, r.Status, r.Reasons)
		}
	}
	in.Evidence[0].Signer = "laptop"
	if r := Evaluate(gs, in)[2]; r.Status != StatusFail {
		t.Errorf("signed-by-release-ci with another signer = %s, want fail", r.Status)
	}
}

func TestSignoffRoleMustBeAnAirlockRole(t *testing.T) {
	t.Parallel()
	_, err := Compile([]Spec{{Type: TypeSignoff, Kind: "uat", Role: "wizard"}})
	if err == nil || !strings.Contains(err.Error(), `unknown role "wizard"`) {
		t.Fatalf("Compile with role wizard: %v", err)
	}
	if _, err := Compile([]Spec{{Type: TypeSignoff, Kind: "uat", Role: "business-owner"}}); err != nil {
		t.Fatal(err)
	}
}
