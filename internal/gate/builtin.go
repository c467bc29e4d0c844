package gate

import (
	"fmt"
	"github.com/airlock-dev/airlock/internal/auth"
	"math"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/resource"
)

// builtinType describes one built-in gate type.
type builtinType struct {
	evidence evidence.Type // the evidence it reads; "" for expression (all)
	security bool          // still blocks in an emergency
	fields   []string      // type-specific spec fields that apply
	judge    func(g *builtinGate, in *Input, ev []Evidence) verdict
	file     string // example file name for the Fix command
}

var scannerFields = []string{"maxSeverity", "maxCounts", "suppressions"}

// builtins is the static table of built-in gate types.
var builtins = map[string]builtinType{
	TypeTests:         {evidence: evidence.Tests, fields: []string{"suite", "minCount"}, judge: judgeTests, file: "report.xml"},
	TypeCoverage:      {evidence: evidence.Coverage, fields: []string{"minPercent"}, judge: judgeCoverage, file: "cover.out"},
	TypeSAST:          {evidence: evidence.SAST, security: true, fields: scannerFields, judge: judgeScan, file: "sast.sarif"},
	TypeLint:          {evidence: evidence.Lint, fields: scannerFields, judge: judgeScan, file: "lint.sarif"},
	TypeIaC:           {evidence: evidence.IaC, fields: scannerFields, judge: judgeScan, file: "iac.sarif"},
	TypeSCA:           {evidence: evidence.SCA, security: true, fields: scannerFields, judge: judgeScan, file: "sca.json"},
	TypeContainerScan: {evidence: evidence.ContainerScan, security: true, fields: scannerFields, judge: judgeScan, file: "trivy.json"},
	TypeDAST:          {evidence: evidence.DAST, fields: scannerFields, judge: judgeScan, file: "zap.json"},
	TypeSBOM:          {evidence: evidence.SBOM, fields: []string{"format"}, judge: judgeSBOM, file: "sbom.cdx.json"},
	TypePerf:          {evidence: evidence.Perf, fields: []string{"maxP95Ms", "maxP99Ms", "maxErrorRate"}, judge: judgePerf, file: "k6-summary.json"},
	TypeSignature:     {evidence: evidence.Signature, security: true, judge: judgeSignature, file: "artifact.sigstore.json"},
	TypeSignoff:       {evidence: evidence.Signoff, fields: []string{"kind", "role"}, judge: judgeSignoff, file: "signoff.json"},
	TypeExpression:    {fields: []string{"expression"}, judge: judgeExpression},
}

var builtinOrder = []string{TypeTests, TypeCoverage, TypeSAST, TypeLint, TypeIaC, TypeSCA, TypeContainerScan,
	TypeDAST, TypeSBOM, TypePerf, TypeSignature, TypeSignoff, TypeExpression}

// SetFields lists the type-specific fields s sets, by JSON name, so a gate
// type can refuse the ones that do not apply to it.
func SetFields(s Spec) []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(s.Suite != "", "suite")
	add(s.MinCount != 0, "minCount")
	add(s.MinPercent != 0, "minPercent")
	add(s.MaxSeverity != "", "maxSeverity")
	add(len(s.MaxCounts) > 0, "maxCounts")
	add(len(s.Suppressions) > 0, "suppressions")
	add(s.Format != "", "format")
	add(s.MaxP95Ms != 0, "maxP95Ms")
	add(s.MaxP99Ms != 0, "maxP99Ms")
	add(s.MaxErrorRate != nil, "maxErrorRate")
	add(s.Kind != "", "kind")
	add(s.Role != "", "role")
	add(s.Expression != "", "expression")
	add(s.Require != nil, "require")
	add(s.SecurityPaths != nil, "securityPaths")
	add(s.MaxAge != "", "maxAge")
	return out
}

// builtinGate is a compiled built-in gate.
type builtinGate struct {
	spec  Spec
	typ   builtinType
	when  *program // nil without a When condition
	expr  *program // expression gates only
	maxSv evidence.Severity
}

func (g *builtinGate) Spec() Spec { return g.spec }

func compileBuiltin(s Spec, b builtinType) (Gate, error) {
	for _, f := range SetFields(s) {
		if !contains(b.fields, f) {
			applies := "no type-specific fields"
			if len(b.fields) > 0 {
				applies = "only " + strings.Join(b.fields, ", ")
			}
			return nil, &SpecError{Field: f, Msg: fmt.Sprintf("%s does not apply to a %s gate, which takes %s (besides name, requireTrusted, when and message)", f, s.Type, applies)}
		}
	}
	if s.Name != "" {
		if err := resource.ValidateName(s.Name); err != nil {
			return nil, &SpecError{Field: "name", Msg: "gate " + err.Error()}
		}
	}
	if s.Type == TypeSignature && s.RequireTrusted != nil && !*s.RequireTrusted {
		return nil, &SpecError{Field: "requireTrusted", Msg: "a signature gate always requires a signer registered with airlock key add; remove requireTrusted: false"}
	}
	g := &builtinGate{spec: s, typ: b}
	switch s.Type {
	case TypeTests:
		if s.Suite == "" {
			g.spec.Suite = string(evidence.Unit)
		} else if !contains(evidence.Suites, evidence.Suite(s.Suite)) {
			return nil, &SpecError{Field: "suite", Msg: fmt.Sprintf("unknown test suite %q; use one of: %s", s.Suite, joinStrings(evidence.Suites))}
		}
		if s.MinCount < 0 {
			return nil, &SpecError{Field: "minCount", Msg: fmt.Sprintf("minCount must be 0 or more, got %d", s.MinCount)}
		}
	case TypeCoverage:
		if s.MinPercent <= 0 || s.MinPercent > 100 || math.IsNaN(s.MinPercent) {
			return nil, &SpecError{Field: "minPercent", Msg: fmt.Sprintf("a coverage gate needs minPercent between 0 and 100 (e.g. 80), got %g", s.MinPercent)}
		}
	case TypeSAST, TypeLint, TypeIaC, TypeSCA, TypeContainerScan, TypeDAST:
		if err := compileScanner(g); err != nil {
			return nil, err
		}
	case TypeSBOM:
		switch s.Format {
		case "", "cyclonedx", "spdx":
		default:
			return nil, &SpecError{Field: "format", Msg: fmt.Sprintf("unknown SBOM format %q; use cyclonedx or spdx, or leave it out to accept either", s.Format)}
		}
	case TypePerf:
		if s.MaxP95Ms == 0 && s.MaxP99Ms == 0 && s.MaxErrorRate == nil {
			return nil, &SpecError{Msg: "a perf gate needs at least one threshold: maxP95Ms, maxP99Ms or maxErrorRate"}
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"maxP95Ms", s.MaxP95Ms}, {"maxP99Ms", s.MaxP99Ms}} {
			if f.v < 0 || math.IsNaN(f.v) {
				return nil, &SpecError{Field: f.name, Msg: fmt.Sprintf("%s must be a positive number of milliseconds, got %g", f.name, f.v)}
			}
		}
		if r := s.MaxErrorRate; r != nil && (*r < 0 || *r > 1 || math.IsNaN(*r)) {
			return nil, &SpecError{Field: "maxErrorRate", Msg: fmt.Sprintf("maxErrorRate is a fraction from 0 to 1 (0.01 is 1%%), got %g", *r)}
		}
	case TypeSignoff:
		if s.Kind == "" {
			return nil, &SpecError{Field: "kind", Msg: "a signoff gate needs the kind of sign-off it requires, e.g. uat, accessibility or compliance"}
		}
		if s.Role != "" {
			if _, err := auth.ParseRole(s.Role); err != nil {
				return nil, &SpecError{Field: "role", Msg: err.Error() + "; a sign-off counts only from someone holding that airlock role"}
			}
		}
	case TypeExpression:
		if s.Expression == "" {
			return nil, &SpecError{Field: "expression", Msg: `an expression gate needs a CEL expression over facts, e.g. facts["coverage.line_percent"] >= 80.0`}
		}
		p, err := compileCEL(s.Expression)
		if err != nil {
			return nil, &SpecError{Field: "expression", Msg: err.Error()}
		}
		g.expr = p
	}
	if s.When != "" {
		p, err := compileCEL(s.When)
		if err != nil {
			return nil, &SpecError{Field: "when", Msg: err.Error()}
		}
		g.when = p
	}
	if g.spec.Name == "" {
		g.spec.Name = g.spec.DefaultName()
	}
	return g, nil
}

func compileScanner(g *builtinGate) error {
	s := g.spec
	if s.MaxSeverity != "" {
		sv := evidence.Severity(strings.ToLower(s.MaxSeverity))
		if sv.Rank() < 0 {
			return &SpecError{Field: "maxSeverity", Msg: fmt.Sprintf("unknown severity %q; use one of: %s (the highest severity allowed: medium means no high or critical)", s.MaxSeverity, joinStrings(evidence.Severities))}
		}
		g.maxSv = sv
	} else if len(s.MaxCounts) == 0 {
		g.maxSv = evidence.None
	}
	for _, k := range sortedKeys(s.MaxCounts) {
		if k != "total" && evidence.Severity(k).Rank() < 0 {
			return &SpecError{Field: "maxCounts." + k, Msg: fmt.Sprintf("unknown severity %q; keys are %s or total", k, joinStrings(evidence.Severities))}
		}
		if s.MaxCounts[k] < 0 {
			return &SpecError{Field: "maxCounts." + k, Msg: fmt.Sprintf("a cap must be 0 or more, got %d", s.MaxCounts[k])}
		}
	}
	seen := map[string]int{}
	for i, sp := range s.Suppressions {
		path := fmt.Sprintf("suppressions[%d]", i)
		for _, f := range []struct{ name, v, example string }{
			{"id", sp.ID, "the finding's rule or vulnerability id, e.g. G401 or CVE-2024-1234"},
			{"reason", sp.Reason, "why the finding is accepted"},
			{"owner", sp.Owner, "who answers for the suppression"},
			{"expires", sp.Expires, "the date it must be reviewed by, e.g. 2026-06-30"},
		} {
			if strings.TrimSpace(f.v) == "" {
				return &SpecError{Field: path + "." + f.name, Msg: fmt.Sprintf("a suppression needs %s: %s", f.name, f.example)}
			}
		}
		if _, err := sp.ExpiresAt(); err != nil {
			return &SpecError{Field: path + ".expires", Msg: err.Error()}
		}
		if j, dup := seen[strings.ToLower(sp.ID)]; dup {
			return &SpecError{Field: path + ".id", Msg: fmt.Sprintf("finding %q is already suppressed by suppressions[%d]; keep one", sp.ID, j)}
		}
		seen[strings.ToLower(sp.ID)] = i
	}
	return nil
}

// verdict is what a judge decides; Evaluate turns it into a Result.
type verdict struct {
	status  Status
	reasons []string
	fix     string
	used    []Evidence
}

func (g *builtinGate) Evaluate(in *Input) Result {
	s := g.spec
	r := Result{Gate: s.Name, Type: s.Type, Security: g.typ.security}
	if g.when != nil {
		var ev []Evidence
		if strings.Contains(s.When, "facts") || strings.Contains(s.When, "evidence") {
			ev, _ = selectEvidence(in.Evidence, "", s, s.TrustRequired(in.ToTier))
		}
		ok, err := g.when.evalBool(in, ev, nil)
		if err != nil {
			r.Status = StatusFail
			r.Reasons = []string{fmt.Sprintf("condition %s could not be evaluated: %v", s.When, err)}
			r.Fix = "fix the gate's when condition in the pipeline"
			return r
		}
		if !ok {
			r.Status = StatusSkipped
			r.Reasons = []string{fmt.Sprintf("not required: condition %s is false for %s", s.When, appName(in))}
			return r
		}
	}
	trusted := s.TrustRequired(in.ToTier)
	ev, untrusted := selectEvidence(in.Evidence, g.typ.evidence, s, trusted)
	var v verdict
	if len(ev) == 0 && g.typ.evidence != "" && len(untrusted) > 0 {
		v = verdict{status: StatusFail,
			reasons: []string{fmt.Sprintf("%s evidence %s is not trusted, and this gate accepts only trusted evidence%s", g.describeEvidence(), digests(untrusted), trustWhy(s, in))},
			fix:     fmt.Sprintf("deliver the %s report from CI inside a DSSE envelope signed by a registered CI key (airlock key add registers one), for this release's artifact", g.typ.evidence)}
	} else {
		v = g.typ.judge(g, in, ev)
		if len(untrusted) > 0 {
			v.reasons = append(v.reasons, fmt.Sprintf("ignored untrusted evidence %s: this gate accepts only trusted evidence%s", digests(untrusted), trustWhy(s, in)))
		}
	}
	r.Status, r.Reasons, r.Fix = v.status, v.reasons, v.fix
	if r.Status == StatusPass {
		r.Fix = ""
	} else if s.Message != "" {
		r.Reasons = append([]string{s.Message}, r.Reasons...)
	}
	for _, e := range v.used {
		r.Evidence = append(r.Evidence, e.Digest)
	}
	return r
}

func (g *builtinGate) describeEvidence() string {
	if g.spec.Type == TypeTests {
		return g.spec.Suite + " " + string(evidence.Tests)
	}
	if g.typ.evidence == "" {
		return "the"
	}
	return string(g.typ.evidence)
}

func trustWhy(s Spec, in *Input) string {
	if s.RequireTrusted == nil && in.ToTier == "production" {
		return " (the default for promotions to production)"
	}
	return ""
}

// addCommand returns the CLI command that attaches evidence for this gate.
func (g *builtinGate) addCommand(in *Input) string {
	app, version := appName(in), in.Release.Version
	if version == "" {
		version = "VERSION"
	}
	suite := ""
	if g.spec.Type == TypeTests {
		suite = " --suite " + g.spec.Suite
	}
	return fmt.Sprintf("airlock evidence add %s %s --type %s%s %s", app, version, g.typ.evidence, suite, g.typ.file)
}

// pending is the verdict for absent evidence.
func (g *builtinGate) pending(in *Input, what string) verdict {
	return verdict{status: StatusPending,
		reasons: []string{fmt.Sprintf("no %s evidence is attached to %s %s", what, appName(in), in.Release.Version)},
		fix:     "attach it: " + g.addCommand(in)}
}

func appName(in *Input) string {
	if in.App != "" {
		return in.App
	}
	if in.Release.App != "" {
		return in.Release.App
	}
	return "APP"
}

// selectEvidence returns the pieces of type typ (and, for tests, the gate's
// suite) that count: the latest per (Type, Suite, Name), among trusted
// pieces only when trusted is set. untrusted lists the latest untrusted
// pieces ignored for that reason. typ "" selects every type.
func selectEvidence(all []Evidence, typ evidence.Type, s Spec, trusted bool) (ev, untrusted []Evidence) {
	type key struct {
		t evidence.Type
		s evidence.Suite
		n string
	}
	latest := map[key]int{}
	latestUntrusted := map[key]int{}
	var order, orderU []key
	for i := range all {
		e := &all[i]
		if typ != "" && e.Type != typ {
			continue
		}
		if s.Type == TypeTests && suiteOf(e) != evidence.Suite(s.Suite) {
			continue
		}
		k := key{e.Type, e.Suite, e.Name}
		m, ord := latest, &order
		if trusted && !e.Trusted {
			m, ord = latestUntrusted, &orderU
		}
		j, ok := m[k]
		if !ok {
			m[k] = i
			*ord = append(*ord, k)
		} else if !all[j].SubmittedAt.After(e.SubmittedAt) {
			m[k] = i // later, or as late and later in the list
		}
	}
	for _, k := range order {
		ev = append(ev, all[latest[k]])
	}
	for _, k := range orderU {
		untrusted = append(untrusted, all[latestUntrusted[k]])
	}
	return ev, untrusted
}

func suiteOf(e *Evidence) evidence.Suite {
	if e.Suite != "" {
		return e.Suite
	}
	if s, ok := e.Report.Facts["tests.suite"].(string); ok && s != "" {
		return evidence.Suite(s)
	}
	return evidence.Unit
}

// num reads a numeric fact.
func num(facts map[string]any, name string) (float64, bool) {
	switch v := facts[name].(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func str(facts map[string]any, name string) string {
	s, _ := facts[name].(string)
	return s
}

// short abbreviates a digest for messages: sha256: and 12 hex digits.
func short(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12] + "…"
	}
	return d
}

// digests lists the pieces' short digests for a message.
func digests(ev []Evidence) string {
	parts := make([]string, len(ev))
	for i, e := range ev {
		parts[i] = short(e.Digest)
		if e.Name != "" {
			parts[i] += " (" + e.Name + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// evidenceNote is the "(evidence ...)" suffix of a reason.
func evidenceNote(ev []Evidence) string {
	if len(ev) == 0 {
		return ""
	}
	return " (evidence " + digests(ev) + ")"
}

func pct(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0") + "%"
}

func numStr(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func joinStrings[T ~string](list []T) string {
	parts := make([]string, len(list))
	for i, x := range list {
		parts[i] = string(x)
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
