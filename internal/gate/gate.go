// Package gate judges whether a release may cross one transition of its
// pipeline, from the evidence attached to it. Each gate declared on a
// pipeline stage is a Spec; Compile validates the specs and turns them into
// Gates; Evaluate judges every gate against one Input and returns a Result
// per gate, saying what was judged, on which evidence, and what would
// satisfy a gate that did not pass.
//
// Everything here is pure: no I/O, no clock (Input.Now is the time), and
// every Gate is safe for concurrent use. The built-in gate types are listed
// in Types; later gate kinds (approvals, windows, change requests, rollback
// rehearsals) plug in with Register.
package gate

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/release"
)

// The built-in gate types.
const (
	TypeTests         = "tests"
	TypeCoverage      = "coverage"
	TypeSAST          = "sast"
	TypeLint          = "lint"
	TypeIaC           = "iac"
	TypeSCA           = "sca"
	TypeContainerScan = "containerScan"
	TypeDAST          = "dast"
	TypeSBOM          = "sbom"
	TypePerf          = "perf"
	TypeSignature     = "signature"
	TypeSignoff       = "signoff"
	TypeExpression    = "expression"
)

// Spec is one gate as declared in a pipeline stage. It is a union: Type
// selects which of the other fields apply, and Compile rejects a field that
// does not apply to the type.
type Spec struct {
	// Name identifies the gate in results; default: derived from the type
	// ("tests-unit", "signoff-uat", "sast", ...). Names are unique within
	// the gates of one transition.
	Name string `json:"name,omitempty"`
	// Type is one of Types(), or a type added with Register.
	Type string `json:"type"`
	// RequireTrusted makes only trusted evidence (delivered signed by a
	// registered CI key) count. Default: true when the target environment
	// is production tier, except for signoff gates (a sign-off is a
	// person's act, accountable by their identity). A signature gate always
	// requires a trusted signer and may not set it to false.
	RequireTrusted *bool `json:"requireTrusted,omitempty"`

	// Suite is the kind of test suite a tests gate judges: unit (default),
	// integration, contract, e2e or smoke.
	Suite string `json:"suite,omitempty"`
	// MinCount is the fewest tests a tests gate accepts (default 1: an
	// empty suite proves nothing).
	MinCount int `json:"minCount,omitempty"`

	// MinPercent is the lowest line coverage a coverage gate accepts,
	// inclusive: 80 passes at exactly 80.0%.
	MinPercent float64 `json:"minPercent,omitempty"`

	// MaxSeverity is the highest finding severity a scanner gate (sast,
	// lint, iac, sca, containerScan, dast) allows: "medium" means no high
	// or critical findings. Default, when MaxCounts is also empty: "none",
	// i.e. the scan must be clean.
	MaxSeverity string `json:"maxSeverity,omitempty"`
	// MaxCounts caps the findings per severity (keys critical, high,
	// medium, low, none, or total); each cap counts findings of exactly
	// that severity.
	MaxCounts map[string]int `json:"maxCounts,omitempty"`
	// Suppressions exempt named findings from a scanner gate until they
	// expire.
	Suppressions []Suppression `json:"suppressions,omitempty"`

	// Format is the SBOM format an sbom gate requires: cyclonedx or spdx
	// (default: either).
	Format string `json:"format,omitempty"`

	// MaxP95Ms and MaxP99Ms cap a perf gate's 95th and 99th percentile
	// request latency in milliseconds (0: no cap).
	MaxP95Ms float64 `json:"maxP95Ms,omitempty"`
	MaxP99Ms float64 `json:"maxP99Ms,omitempty"`
	// MaxErrorRate caps a perf gate's failed-request rate, as a fraction
	// (0.01 is 1%); nil means no cap, 0 means no failed request at all.
	MaxErrorRate *float64 `json:"maxErrorRate,omitempty"`

	// Kind is the kind of sign-off a signoff gate requires (uat,
	// accessibility, compliance, security, ...).
	Kind string `json:"kind,omitempty"`
	// Role, when set, is the role the person who signed off must have had.
	Role string `json:"role,omitempty"`

	// When is a CEL condition (same variables as Expression) deciding
	// whether the gate applies, e.g. `app.userFacing` or
	// `app.declares("accessibility")`. A gate whose condition is false is
	// skipped.
	When string `json:"when,omitempty"`
	// Expression is the CEL expression of an expression gate; it must
	// yield a bool, true meaning pass.
	Expression string `json:"expression,omitempty"`
	// Message is shown first among the reasons when the gate does not
	// pass: what the user is told to do.
	Message string `json:"message,omitempty"`

	// Require is the approvals gate's policy: roles and counts, e.g.
	// {tech-lead: 1, sre: 1}. It applies to no other gate type.
	Require map[string]int `json:"require,omitempty"`
	// SecurityPaths are the approvals gate's patterns of security-relevant
	// paths ("**" spans directories, "*" and "?" stay within one). When the
	// release's changeset evidence names a matching path, one security
	// approval is added to Require. Default: approval.DefaultSecurityPaths;
	// an empty list turns detection off.
	SecurityPaths *[]string `json:"securityPaths,omitempty"`
	// MaxAge is how long an approval counts in an approvals gate, as a Go
	// duration (default 72h).
	MaxAge string `json:"maxAge,omitempty"`
}

// Suppression exempts the findings with one ID from a scanner gate. All
// fields are required. Expires is an RFC 3339 date ("2026-06-30", valid
// through the end of that day UTC) or date-time; once past, the
// suppression no longer suppresses and the gate's result says so.
type Suppression struct {
	ID      string `json:"id"`
	Reason  string `json:"reason"`
	Owner   string `json:"owner"`
	Expires string `json:"expires"`
}

// ExpiresAt returns the instant the suppression stops suppressing: for a
// date, midnight UTC at the end of that day.
func (s Suppression) ExpiresAt() (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s.Expires); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, s.Expires)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires %q is not a date (2026-06-30) or RFC 3339 time (2026-06-30T17:00:00Z)", s.Expires)
	}
	return d.AddDate(0, 0, 1), nil
}

// Evidence is one piece of evidence attached to the release, as the gates
// see it.
type Evidence struct {
	Digest      string // sha256 of the stored document, "sha256:<hex>"
	Type        evidence.Type
	Suite       evidence.Suite // tests only
	Name        string         // distinguishes several documents of one type and suite, e.g. a file name
	Report      evidence.Report
	Trusted     bool   // delivered signed by a registered CI key, for this release's artifact
	Signer      string // the registered key's name when Trusted
	SubmittedBy string
	SubmittedAt time.Time
}

// Input is everything a gate may judge.
type Input struct {
	App     string
	AppSpec application.Spec
	Release release.Spec
	From    string // the stage the release leaves ("" when entering the pipeline)
	To      string
	ToTier  environment.Tier
	// Evidence is everything attached to the release. For each (Type,
	// Suite, Name) only the most recently submitted piece counts (among
	// trusted pieces when a gate requires trust); pieces with distinct
	// names add up, e.g. several JUnit files of one suite sum their counts.
	Evidence  []Evidence
	Emergency bool
	Now       time.Time
	// RequestedBy is the identity that asked for the promotion.
	RequestedBy string
	// PolicyRevision is the revision of the pipeline the gates come from.
	PolicyRevision int64
	// Extra is data for registered gate types, keyed by type (e.g.
	// "window" holds the Window objects); nil when there is none. Gates
	// must treat it as read-only.
	Extra map[string]any
}

// Status is the outcome of one gate.
type Status string

// Gate outcomes. Fail and pending block a promotion.
const (
	StatusPass    Status = "pass"
	StatusFail    Status = "fail"
	StatusPending Status = "pending" // the evidence the gate needs is absent
	StatusWaived  Status = "waived"  // an emergency promotion: a non-security gate failed or was pending
	StatusSkipped Status = "skipped" // the gate's When condition is false for this promotion
)

// Result is the judgement of one gate.
type Result struct {
	Gate     string   `json:"gate"`
	Type     string   `json:"type"`
	Status   Status   `json:"status"`
	Reasons  []string `json:"reasons,omitempty"`  // what was judged, with the evidence it was judged on
	Fix      string   `json:"fix,omitempty"`      // what would satisfy the gate; empty when it passed
	Evidence []string `json:"evidence,omitempty"` // digests of the evidence used
	Security bool     `json:"security,omitempty"` // still blocks in an emergency
	// Final marks a failure nothing can cure for this promotion (a person
	// rejected it): the promotion ends instead of waiting.
	Final bool `json:"final,omitempty"`
}

// Gate evaluates one declared gate. Implementations are pure and safe for
// concurrent use. Evaluate does not apply the emergency rule; the package
// function Evaluate does.
type Gate interface {
	Spec() Spec
	Evaluate(in *Input) Result
}

// SpecError is a gate spec Compile rejects. Index is the gate's position in
// the list and Field the JSON path of the field at fault inside it (e.g.
// "maxSeverity", "suppressions[1].expires"; empty for the gate as a whole).
type SpecError struct {
	Index int
	Field string
	Msg   string
}

func (e *SpecError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("gates[%d]: %s", e.Index, e.Msg)
	}
	return fmt.Sprintf("gates[%d].%s: %s", e.Index, e.Field, e.Msg)
}

// Path returns the field's path under prefix, e.g.
// "spec.stages[2].gates[0].maxSeverity" for prefix "spec.stages[2].gates".
func (e *SpecError) Path(prefix string) string {
	p := fmt.Sprintf("%s[%d]", prefix, e.Index)
	if e.Field != "" {
		p += "." + e.Field
	}
	return p
}

// FieldError is what a Register'ed build function returns to point at one
// field of the spec; Compile turns it into a SpecError.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var registry = struct {
	sync.RWMutex
	m map[string]func(Spec) (Gate, error)
}{m: map[string]func(Spec) (Gate, error){}}

// Register adds a gate type. It panics if typ is empty, is already known
// (built in or registered), or build is nil, like database/sql.Register;
// call it from an init function or before the first Compile. build
// validates the spec (returning a *FieldError to name a field) and must
// return a Gate that is safe for concurrent use. A registered gate's
// Result.Security decides whether it still blocks in an emergency.
func Register(typ string, build func(Spec) (Gate, error)) {
	if typ == "" || build == nil {
		panic("gate: Register needs a type name and a build function")
	}
	if _, ok := builtins[typ]; ok {
		panic(fmt.Sprintf("gate: Register of built-in type %q", typ))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[typ]; dup {
		panic(fmt.Sprintf("gate: Register called twice for type %q", typ))
	}
	registry.m[typ] = build
}

// Types lists the known gate types: the built-ins in documentation order,
// then registered types in alphabetical order.
func Types() []string {
	out := slices.Clone(builtinOrder)
	registry.RLock()
	extra := make([]string, 0, len(registry.m))
	for t := range registry.m {
		extra = append(extra, t)
	}
	registry.RUnlock()
	sort.Strings(extra)
	return append(out, extra...)
}

// Compile validates specs and builds their Gates, in order. The error is a
// *SpecError for the first spec at fault: an unknown type lists the known
// ones, a field that does not apply to the type is named, and a CEL
// expression that does not compile shows the CEL error. Names must be
// unique. CEL programs are compiled once per expression text and shared.
func Compile(specs []Spec) ([]Gate, error) {
	gates := make([]Gate, 0, len(specs))
	names := make(map[string]int, len(specs))
	for i, s := range specs {
		g, err := compileOne(s)
		if err != nil {
			if se, ok := err.(*SpecError); ok {
				se.Index = i
				return nil, se
			}
			if fe, ok := err.(*FieldError); ok {
				return nil, &SpecError{Index: i, Field: fe.Field, Msg: fe.Msg}
			}
			return nil, &SpecError{Index: i, Msg: err.Error()}
		}
		name := g.Spec().Name
		if j, dup := names[name]; dup {
			field := "name"
			if s.Name == "" {
				field = "type"
			}
			return nil, &SpecError{Index: i, Field: field, Msg: fmt.Sprintf(
				"gate name %q is already used by gate %d of this transition; give one of them a distinct name", name, j+1)}
		}
		names[name] = i
		gates = append(gates, g)
	}
	return gates, nil
}

func compileOne(s Spec) (Gate, error) {
	if s.Type == "" {
		return nil, &SpecError{Field: "type", Msg: "type is required; one of: " + strings.Join(Types(), ", ")}
	}
	if b, ok := builtins[s.Type]; ok {
		return compileBuiltin(s, b)
	}
	registry.RLock()
	build, ok := registry.m[s.Type]
	registry.RUnlock()
	if !ok {
		hint := ""
		for _, t := range Types() {
			if strings.EqualFold(t, s.Type) || strings.EqualFold(strings.ReplaceAll(t, "-", ""), strings.ReplaceAll(s.Type, "-", "")) {
				hint = fmt.Sprintf(" (did you mean %q?)", t)
			}
		}
		return nil, &SpecError{Field: "type", Msg: fmt.Sprintf("unknown gate type %q%s; known types: %s", s.Type, hint, strings.Join(Types(), ", "))}
	}
	return build(s)
}

// Evaluate judges every gate against in and returns their results in the
// same order. In an emergency (in.Emergency), a gate that is not a security
// gate and did not pass becomes StatusWaived, keeping its reasons; security
// gates (sast, sca, containerScan, signature) block as usual. A gate that
// panics yields a failing result rather than crashing the caller.
func Evaluate(gates []Gate, in *Input) []Result {
	out := make([]Result, len(gates))
	for i, g := range gates {
		r := safeEvaluate(g, in)
		if in.Emergency && !r.Security && (r.Status == StatusFail || r.Status == StatusPending) {
			r.Reasons = append(r.Reasons, fmt.Sprintf("waived for this emergency promotion (the gate was %s); it will be listed in the post-emergency review", r.Status))
			r.Status = StatusWaived
		}
		out[i] = r
	}
	return out
}

func safeEvaluate(g Gate, in *Input) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			s := g.Spec()
			r = Result{Gate: s.Name, Type: s.Type, Status: StatusFail, Security: isSecurity(s.Type),
				Reasons: []string{fmt.Sprintf("the gate could not be evaluated: %v", p)},
				Fix:     "report this as a bug in the gate type " + s.Type}
		}
	}()
	return g.Evaluate(in)
}

// Blocking reports whether any result fails or is pending.
func Blocking(results []Result) bool {
	for _, r := range results {
		if r.Status == StatusFail || r.Status == StatusPending {
			return true
		}
	}
	return false
}

// TrustRequired reports whether gate s accepts only trusted evidence when
// promoting to an environment of tier.
func (s Spec) TrustRequired(tier environment.Tier) bool {
	if s.Type == TypeSignature {
		return true
	}
	if s.RequireTrusted != nil {
		return *s.RequireTrusted
	}
	if s.Type == TypeSignoff {
		return false
	}
	return tier == environment.TierProduction
}

// DefaultName returns the name a gate gets when its spec leaves Name out:
// "tests-<suite>" for tests, "signoff-<kind>" for signoff, the type
// otherwise.
func (s Spec) DefaultName() string {
	switch s.Type {
	case TypeTests:
		suite := s.Suite
		if suite == "" {
			suite = string(evidence.Unit)
		}
		return "tests-" + suite
	case TypeSignoff:
		if s.Kind != "" {
			return "signoff-" + s.Kind
		}
	}
	return s.Type
}

func isSecurity(typ string) bool {
	b, ok := builtins[typ]
	return ok && b.security
}
