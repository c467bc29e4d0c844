// Package evidence turns the reports CI tools emit into normalized, typed
// facts that gates can judge: test results, coverage, static analysis, scans,
// SBOMs, DAST, performance, attestations, signatures, changesets and
// sign-offs. Parsers live in this package, one file per format; they read
// from an io.Reader, stream where the format allows it, never keep the raw
// document, and reject malformed input with an error that names the format
// and the problem.
package evidence

import (
	"fmt"
	"sort"
	"strings"
)

// Type is what a piece of evidence is about.
type Type string

// The evidence types.
const (
	Tests         Type = "tests"
	Coverage      Type = "coverage"
	SAST          Type = "sast"
	Lint          Type = "lint"
	IaC           Type = "iac"
	SCA           Type = "sca"
	ContainerScan Type = "container-scan"
	SBOM          Type = "sbom"
	DAST          Type = "dast"
	Perf          Type = "perf"
	Attestation   Type = "attestation"
	Signature     Type = "signature"
	Changeset     Type = "changeset"
	Signoff       Type = "signoff"
	// Rollback is recorded by airlock itself, from a rollback rehearsal
	// (airlock rollback --rehearsal); it cannot be uploaded.
	Rollback Type = "rollback"
)

// Types lists every evidence type in documentation order.
var Types = []Type{Tests, Coverage, SAST, Lint, IaC, SCA, ContainerScan, SBOM, DAST, Perf, Attestation, Signature, Changeset, Signoff}

// ParseType checks s names an evidence type.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return "", fmt.Errorf("unknown evidence type %q; types: %s", s, strings.Join(names, ", "))
}

// Suite is the kind of a test suite.
type Suite string

// Test suite kinds.
const (
	Unit        Suite = "unit"
	Integration Suite = "integration"
	Contract    Suite = "contract"
	E2E         Suite = "e2e"
	Smoke       Suite = "smoke"
)

// Suites lists every suite kind.
var Suites = []Suite{Unit, Integration, Contract, E2E, Smoke}

// Severity is a finding's normalized severity.
type Severity string

// Severities, weakest first. None is for findings a tool reports without
// any severity (a SARIF "note" or "none" level).
const (
	None     Severity = "none"
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

// Severities lists the severities weakest first.
var Severities = []Severity{None, Low, Medium, High, Critical}

// Rank orders severities: none 0 … critical 4; an unknown severity is -1.
func (s Severity) Rank() int {
	for i, x := range Severities {
		if x == s {
			return i
		}
	}
	return -1
}

// ParseSeverity reads a severity name, case-insensitively, accepting the
// synonyms tools use ("moderate" for medium, "negligible"/"info"/"unknown"
// for none, "error"/"warning"/"note" from SARIF levels).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return Critical, nil
	case "high", "error":
		return High, nil
	case "medium", "moderate", "warning":
		return Medium, nil
	case "low", "note":
		return Low, nil
	case "none", "info", "informational", "negligible", "unknown", "":
		return None, nil
	}
	return "", fmt.Errorf("unknown severity %q; use one of critical, high, medium, low, none", s)
}

// SeverityFromScore maps a CVSS-style score (SARIF's security-severity) to a
// severity, as GitHub code scanning does: >= 9 critical, >= 7 high, >= 4
// medium, > 0 low.
func SeverityFromScore(score float64) Severity {
	switch {
	case score >= 9:
		return Critical
	case score >= 7:
		return High
	case score >= 4:
		return Medium
	case score > 0:
		return Low
	}
	return None
}

// Finding is one problem a scanner reported, reduced to what gates and
// suppressions need.
type Finding struct {
	// ID names the finding for a suppression: the rule or vulnerability id
	// (e.g. "G401", "CVE-2024-1234").
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Location is a file:line, a package@version, or a URL.
	Location string `json:"location,omitempty"`
	Message  string `json:"message,omitempty"`
}

// MaxFindings bounds the findings a report keeps; counts stay exact beyond
// it, but only the most severe MaxFindings are kept for suppression checks.
const MaxFindings = 10000

// Report is the normalized result of parsing one document.
type Report struct {
	Type   Type   `json:"type"`
	Format string `json:"format"` // e.g. "junit", "go-test-json", "sarif-2.1.0", "cyclonedx-1.5"
	// Facts are the named values gates read, e.g. "tests.failed": 0,
	// "coverage.line_percent": 83.4. Values are float64, string, bool or
	// []string, so they map directly onto CEL.
	Facts map[string]any `json:"facts"`
	// Findings are kept for scanner types (sast, lint, iac, sca,
	// container-scan, dast), most severe first.
	Findings []Finding `json:"findings,omitempty"`
	// Subjects are artifact digests ("sha256:<hex>") the document says it
	// describes: an image digest, an attestation subject, an SBOM's own
	// component hash. When any is given, one must equal the release's.
	Subjects []string `json:"subjects,omitempty"`
}

// SortFindings orders findings most severe first, then by id and location,
// and keeps at most MaxFindings.
func (r *Report) SortFindings() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Severity.Rank() != b.Severity.Rank() {
			return a.Severity.Rank() > b.Severity.Rank()
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Location < b.Location
	})
	if len(r.Findings) > MaxFindings {
		r.Findings = r.Findings[:MaxFindings]
	}
}

// SetSeverityFacts records, under prefix (e.g. "sast"), the count of
// findings per severity ("sast.count.high"), the total ("sast.count.total")
// and the maximum severity ("sast.max_severity", "none" when there are no
// findings). counts must hold a count for every finding the tool reported,
// including any beyond MaxFindings.
func SetSeverityFacts(facts map[string]any, prefix string, counts map[Severity]int) {
	total := 0
	max := None
	for _, s := range Severities {
		n := counts[s]
		facts[prefix+".count."+string(s)] = float64(n)
		total += n
		if n > 0 {
			max = s
		}
	}
	facts[prefix+".count.total"] = float64(total)
	facts[prefix+".max_severity"] = string(max)
}

// FormatError is a document that is not what its type says, or is broken.
// It names the format and the problem.
type FormatError struct {
	Format string // the format the parser expected, e.g. "JUnit XML"
	Msg    string
}

func (e *FormatError) Error() string { return e.Format + ": " + e.Msg }

// Errorf returns a FormatError.
func Errorf(format, msg string, args ...any) error {
	return &FormatError{Format: format, Msg: fmt.Sprintf(msg, args...)}
}
