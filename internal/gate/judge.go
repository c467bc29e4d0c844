package gate

import (
	"fmt"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/evidence"
)

func judgeTests(g *builtinGate, in *Input, ev []Evidence) verdict {
	suite := g.spec.Suite
	if len(ev) == 0 {
		return g.pending(in, suite+" test")
	}
	var total, passed, failed, skipped float64
	var failing []Evidence
	var names []string // of failed tests, when the parser kept them
	for _, e := range ev {
		f := e.Report.Facts
		p, _ := num(f, "tests.passed")
		fl, _ := num(f, "tests.failed")
		sk, _ := num(f, "tests.skipped")
		t, ok := num(f, "tests.total")
		if !ok {
			t = p + fl + sk
		}
		total, passed, failed, skipped = total+t, passed+p, failed+fl, skipped+sk
		if fl > 0 {
			failing = append(failing, e)
			if fn, ok := f["tests.failed_names"].([]string); ok {
				names = append(names, fn...)
			}
		}
	}
	min := g.spec.MinCount
	if min == 0 {
		min = 1
	}
	across := ""
	if len(ev) > 1 {
		across = fmt.Sprintf(" across %d reports", len(ev))
	}
	v := verdict{status: StatusPass, used: ev}
	if failed > 0 {
		v.status = StatusFail
		eg := ""
		if len(names) > 0 {
			if len(names) > 3 {
				names = append(names[:3], "…")
			}
			eg = ": " + strings.Join(names, ", ")
		}
		v.reasons = append(v.reasons, fmt.Sprintf("%s tests: %s of %s failed%s%s", suite, numStr(failed), numStr(total), eg, evidenceNote(failing)))
		v.fix = fmt.Sprintf("fix the failing %s tests, then attach the new report: %s", suite, g.addCommand(in))
	}
	if total < float64(min) {
		v.status = StatusFail
		v.reasons = append(v.reasons, fmt.Sprintf("%s tests: %s ran%s; the gate requires at least %d%s", suite, numStr(total), across, min, evidenceNote(ev)))
		if v.fix == "" {
			v.fix = fmt.Sprintf("run at least %d %s tests and attach all their reports: %s", min, suite, g.addCommand(in))
		}
	}
	if v.status == StatusPass {
		v.reasons = append(v.reasons, fmt.Sprintf("%s tests: %s passed, 0 failed, %s skipped%s; at least %d required%s",
			suite, numStr(passed), numStr(skipped), across, min, evidenceNote(ev)))
	}
	return v
}

func judgeCoverage(g *builtinGate, in *Input, ev []Evidence) verdict {
	if len(ev) == 0 {
		return g.pending(in, "coverage")
	}
	min := g.spec.MinPercent
	v := verdict{status: StatusPass, used: ev}
	worst, worstSet := 0.0, false
	var worstEv Evidence
	for _, e := range ev {
		p, ok := num(e.Report.Facts, "coverage.line_percent")
		if !ok {
			v.status = StatusFail
			v.reasons = append(v.reasons, fmt.Sprintf("coverage evidence %s has no coverage.line_percent fact", digests([]Evidence{e})))
			continue
		}
		if !worstSet || p < worst {
			worst, worstEv, worstSet = p, e, true
		}
	}
	of := ""
	if len(ev) > 1 {
		of = fmt.Sprintf(" (the lowest of %d reports)", len(ev))
	}
	switch {
	case worstSet && worst < min:
		v.status = StatusFail
		v.reasons = append(v.reasons, fmt.Sprintf("line coverage %s%s is below the required %s%s", pct(worst), of, pct(min), evidenceNote([]Evidence{worstEv})))
		v.fix = fmt.Sprintf("add tests until line coverage reaches %s, then attach the new profile: %s", pct(min), g.addCommand(in))
	case v.status == StatusFail:
		v.fix = "attach a coverage report the parser reads a line percentage from: " + g.addCommand(in)
	default:
		v.reasons = append(v.reasons, fmt.Sprintf("line coverage %s%s meets the required %s%s", pct(worst), of, pct(min), evidenceNote(ev)))
	}
	return v
}

// severityCounts are findings per severity.
type severityCounts [5]int

func (c *severityCounts) add(s evidence.Severity, n int) {
	r := s.Rank()
	if r < 0 {
		r = 0
	}
	c[r] += n
	if c[r] < 0 {
		c[r] = 0
	}
}

func (c severityCounts) total() int {
	t := 0
	for _, n := range c {
		t += n
	}
	return t
}

func (c severityCounts) max() evidence.Severity {
	for r := len(c) - 1; r > 0; r-- {
		if c[r] > 0 {
			return evidence.Severities[r]
		}
	}
	return evidence.None
}

// above describes the findings above sv, e.g. "2 critical and 3 high".
func (c severityCounts) above(sv evidence.Severity) string {
	var parts []string
	for r := len(c) - 1; r > sv.Rank(); r-- {
		if c[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[r], evidence.Severities[r]))
		}
	}
	return strings.Join(parts, " and ")
}

func (c severityCounts) String() string {
	var parts []string
	for r := len(c) - 1; r >= 0; r-- {
		if c[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[r], evidence.Severities[r]))
		}
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

func judgeScan(g *builtinGate, in *Input, ev []Evidence) verdict {
	prefix := string(g.typ.evidence)
	if len(ev) == 0 {
		return g.pending(in, prefix)
	}
	type supState struct {
		Suppression
		until  time.Time
		active bool
		hits   int
	}
	sups := make(map[string]*supState, len(g.spec.Suppressions))
	order := make([]*supState, 0, len(g.spec.Suppressions))
	for _, sp := range g.spec.Suppressions {
		until, _ := sp.ExpiresAt() // validated by Compile
		st := &supState{Suppression: sp, until: until, active: in.Now.Before(until)}
		sups[strings.ToLower(sp.ID)] = st
		order = append(order, st)
	}

	var counts severityCounts
	var examples []evidence.Finding // unsuppressed findings, most severe first
	suppressed := 0
	for _, e := range ev {
		var c severityCounts
		f := e.Report.Facts
		if _, ok := num(f, prefix+".count.total"); ok {
			for _, sv := range evidence.Severities {
				n, _ := num(f, prefix+".count."+string(sv))
				c.add(sv, int(n))
			}
		} else {
			for _, fd := range e.Report.Findings {
				c.add(fd.Severity, 1)
			}
		}
		for _, fd := range e.Report.Findings {
			st := sups[strings.ToLower(fd.ID)]
			if st != nil {
				st.hits++
				if st.active {
					c.add(fd.Severity, -1)
					suppressed++
					continue
				}
			}
			if len(examples) < 3 && fd.Severity.Rank() > g.maxSv.Rank() {
				examples = append(examples, fd)
			}
		}
		for r, n := range c {
			counts[r] += n
		}
	}

	v := verdict{status: StatusPass, used: ev}
	note := evidenceNote(ev)
	if g.spec.MaxSeverity != "" || len(g.spec.MaxCounts) == 0 {
		if m := counts.max(); m.Rank() > g.maxSv.Rank() {
			v.status = StatusFail
			eg := ""
			if len(examples) > 0 {
				parts := make([]string, len(examples))
				for i, fd := range examples {
					parts[i] = fd.ID
					if fd.Location != "" {
						parts[i] += " at " + fd.Location
					}
					parts[i] += " (" + string(fd.Severity) + ")"
				}
				eg = "; e.g. " + strings.Join(parts, ", ")
			}
			v.reasons = append(v.reasons, fmt.Sprintf("%s: %s findings, and the gate allows nothing above %s%s%s",
				prefix, counts.above(g.maxSv), g.maxSv, eg, note))
		}
	}
	for _, k := range sortedKeys(g.spec.MaxCounts) {
		limit := g.spec.MaxCounts[k]
		n := counts.total()
		if k != "total" {
			n = counts[evidence.Severity(k).Rank()]
		}
		if n > limit {
			v.status = StatusFail
			v.reasons = append(v.reasons, fmt.Sprintf("%s: %d %s findings exceed the cap of %d%s", prefix, n, k, limit, note))
		}
	}
	if v.status == StatusPass {
		allowed := "within the caps"
		if g.spec.MaxSeverity != "" || len(g.spec.MaxCounts) == 0 {
			allowed = "nothing above " + string(g.maxSv)
		}
		v.reasons = append(v.reasons, fmt.Sprintf("%s: %s, %s%s", prefix, counts, allowed, note))
	} else {
		v.fix = fmt.Sprintf("fix the findings (or, for one that is accepted, add a suppression with id, reason, owner and expires to the gate), then attach a new %s report: %s", prefix, g.addCommand(in))
	}
	if suppressed > 0 {
		var parts []string
		for _, st := range order {
			if st.active && st.hits > 0 {
				parts = append(parts, fmt.Sprintf("%s ×%d (owner %s, until %s: %s)", st.ID, st.hits, st.Owner, st.Expires, st.Reason))
			}
		}
		v.reasons = append(v.reasons, fmt.Sprintf("%d findings suppressed: %s", suppressed, strings.Join(parts, "; ")))
	}
	for _, st := range order {
		if st.active {
			continue
		}
		hits := "it matches no finding in this evidence"
		if st.hits > 0 {
			hits = fmt.Sprintf("its %d findings count again", st.hits)
		}
		v.reasons = append(v.reasons, fmt.Sprintf("suppression of %s (owner %s: %s) expired %s and no longer suppresses; %s — fix the finding or renew the suppression with a new expiry",
			st.ID, st.Owner, st.Reason, st.Expires, hits))
	}
	return v
}

func judgeSBOM(g *builtinGate, in *Input, ev []Evidence) verdict {
	if len(ev) == 0 {
		return g.pending(in, "SBOM")
	}
	want := g.spec.Format
	var problems []string
	for _, e := range ev {
		format := str(e.Report.Facts, "sbom.format")
		if format == "" {
			format = e.Report.Format
		}
		comps, _ := num(e.Report.Facts, "sbom.components")
		switch {
		case want != "" && !strings.HasPrefix(strings.ToLower(format), want):
			problems = append(problems, fmt.Sprintf("SBOM %s is %s, and the gate requires %s", digests([]Evidence{e}), orUnknown(format), want))
		case comps <= 0:
			problems = append(problems, fmt.Sprintf("SBOM %s lists no components", digests([]Evidence{e})))
		default:
			return verdict{status: StatusPass, used: []Evidence{e},
				reasons: []string{fmt.Sprintf("SBOM %s (%s) lists %s components", digests([]Evidence{e}), orUnknown(format), numStr(comps))}}
		}
	}
	format := "an SBOM"
	if want != "" {
		format = "a " + want + " SBOM"
	}
	return verdict{status: StatusFail, used: ev, reasons: problems,
		fix: fmt.Sprintf("generate %s of the artifact's components (e.g. cyclonedx-gomod, syft) and attach it: %s", format, g.addCommand(in))}
}

func orUnknown(s string) string {
	if s == "" {
		return "of unknown format"
	}
	return s
}

func judgePerf(g *builtinGate, in *Input, ev []Evidence) verdict {
	if len(ev) == 0 {
		return g.pending(in, "perf")
	}
	s := g.spec
	type check struct {
		fact, label string
		max         float64
		set         bool
		show        func(float64) string
	}
	ms := func(f float64) string { return numStr(f) + " ms" }
	rate := func(f float64) string { return numStr(f*100) + "%" }
	checks := []check{
		{"perf.p95_ms", "p95 latency", s.MaxP95Ms, s.MaxP95Ms > 0, ms},
		{"perf.p99_ms", "p99 latency", s.MaxP99Ms, s.MaxP99Ms > 0, ms},
		{"perf.error_rate", "error rate", 0, s.MaxErrorRate != nil, rate},
	}
	if s.MaxErrorRate != nil {
		checks[2].max = *s.MaxErrorRate
	}
	v := verdict{status: StatusPass, used: ev}
	var ok []string
	for _, e := range ev {
		note := evidenceNote([]Evidence{e})
		for _, c := range checks {
			if !c.set {
				continue
			}
			got, present := num(e.Report.Facts, c.fact)
			switch {
			case !present:
				v.status = StatusFail
				v.reasons = append(v.reasons, fmt.Sprintf("the perf report has no %s (fact %s)%s", c.label, c.fact, note))
			case got > c.max:
				v.status = StatusFail
				v.reasons = append(v.reasons, fmt.Sprintf("%s %s exceeds the threshold of %s%s", c.label, c.show(got), c.show(c.max), note))
			default:
				ok = append(ok, fmt.Sprintf("%s %s within %s", c.label, c.show(got), c.show(c.max)))
			}
		}
	}
	if v.status == StatusPass {
		v.reasons = append(v.reasons, "perf: "+strings.Join(ok, ", ")+evidenceNote(ev))
	} else {
		v.fix = fmt.Sprintf("bring the service within the thresholds (or correct the test), rerun the k6 test with --summary-export and attach it: %s", g.addCommand(in))
	}
	return v
}

func judgeSignature(g *builtinGate, in *Input, ev []Evidence) verdict {
	if len(ev) == 0 {
		return g.pending(in, "signature")
	}
	var problems []string
	for _, e := range ev {
		verified, _ := e.Report.Facts["signature.verified"].(bool)
		switch {
		case !verified:
			problems = append(problems, fmt.Sprintf("signature %s did not verify against the artifact", digests([]Evidence{e})))
		case !e.Trusted || e.Signer == "":
			problems = append(problems, fmt.Sprintf("signature %s is not from a registered key", digests([]Evidence{e})))
		default:
			return verdict{status: StatusPass, used: []Evidence{e},
				reasons: []string{fmt.Sprintf("artifact signed by %s, verified (evidence %s)", e.Signer, digests([]Evidence{e}))}}
		}
	}
	return verdict{status: StatusFail, used: ev, reasons: problems,
		fix: fmt.Sprintf("sign the artifact in CI with a key registered by airlock key add, and attach the Sigstore bundle: %s", g.addCommand(in))}
}

func judgeSignoff(g *builtinGate, in *Input, ev []Evidence) verdict {
	s := g.spec
	var other []string
	var used []Evidence
	for _, e := range ev {
		kind, role := str(e.Report.Facts, "signoff.kind"), str(e.Report.Facts, "signoff.role")
		by := e.SubmittedBy
		if by == "" {
			by = str(e.Report.Facts, "signoff.by")
		}
		if !strings.EqualFold(kind, s.Kind) {
			continue
		}
		used = append(used, e)
		switch {
		case s.Role != "" && !strings.EqualFold(role, s.Role):
			other = append(other, fmt.Sprintf("%s sign-off by %s as %s does not count: the gate requires role %s%s", kind, orSomeone(by), orNoRole(role), s.Role, evidenceNote([]Evidence{e})))
		case by != "" && by == in.Release.Creator:
			other = append(other, fmt.Sprintf("%s sign-off by %s does not count: %s created this release, and nobody signs off their own change%s", kind, by, by, evidenceNote([]Evidence{e})))
		default:
			as := ""
			if role != "" {
				as = " as " + role
			}
			return verdict{status: StatusPass, used: []Evidence{e},
				reasons: []string{fmt.Sprintf("%s sign-off by %s%s%s", kind, orSomeone(by), as, evidenceNote([]Evidence{e}))}}
		}
	}
	who := "someone"
	if s.Role != "" {
		who = "a person with role " + s.Role
	}
	reasons := append([]string{fmt.Sprintf("no %s sign-off is recorded for %s %s", s.Kind, appName(in), in.Release.Version)}, other...)
	return verdict{status: StatusPending, used: used, reasons: reasons,
		fix: fmt.Sprintf("%s (not the release's creator) records a %s sign-off: %s", who, s.Kind, g.addCommand(in))}
}

func orSomeone(s string) string {
	if s == "" {
		return "an unknown person"
	}
	return s
}

func orNoRole(s string) string {
	if s == "" {
		return "no role"
	}
	return s
}

func judgeExpression(g *builtinGate, in *Input, ev []Evidence) verdict {
	facts := mergeFacts(ev)
	ok, err := g.expr.evalBool(in, ev, facts)
	v := verdict{used: ev}
	if err != nil {
		if key, missing := missingKey(err); missing {
			_, untrusted := selectEvidence(in.Evidence, "", g.spec, g.spec.TrustRequired(in.ToTier))
			for _, e := range untrusted {
				if _, has := e.Report.Facts[key]; has {
					v.status = StatusFail
					v.reasons = []string{fmt.Sprintf("fact %s comes only from untrusted evidence %s, and this gate accepts only trusted evidence", key, digests([]Evidence{e}))}
					v.fix = "deliver that report from CI inside a DSSE envelope signed by a registered CI key (airlock key add registers one)"
					return v
				}
			}
			v.status = StatusPending
			v.reasons = []string{fmt.Sprintf("expression %s needs fact %s, which no attached evidence provides", g.spec.Expression, key)}
			v.fix = fmt.Sprintf("attach the %s evidence that provides %s: airlock evidence add %s %s --type %s FILE",
				factType(key), key, appName(in), in.Release.Version, factType(key))
			return v
		}
		v.status = StatusFail
		v.reasons = []string{fmt.Sprintf("expression %s could not be evaluated: %v", g.spec.Expression, err)}
		v.fix = "correct the expression in the pipeline: facts holds numbers, strings, bools and lists of strings (see docs/gates.md)"
		return v
	}
	vals := referencedFacts(g.spec.Expression, facts)
	if ok {
		v.status = StatusPass
		v.reasons = []string{fmt.Sprintf("expression %s is true%s", g.spec.Expression, vals)}
		return v
	}
	v.status = StatusFail
	v.reasons = []string{fmt.Sprintf("expression %s is false%s", g.spec.Expression, vals)}
	v.fix = "attach evidence that satisfies the expression: " + g.spec.Expression
	if g.spec.Message != "" {
		v.fix = g.spec.Message
	}
	return v
}

// factType guesses the evidence type a fact comes from by its first
// segment.
func factType(key string) string {
	t, _, _ := strings.Cut(key, ".")
	if _, err := evidence.ParseType(t); err == nil {
		return t
	}
	return "TYPE"
}
