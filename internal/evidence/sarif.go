package evidence

import (
	"encoding/json"
	"io"
	"sort"
	"strconv"
)

// SARIF 2.1.0, as written by gosec, Semgrep, CodeQL, golangci-lint, Trivy
// and most other static analysers, for the types sast, lint, iac, sca and
// container-scan.
//
// The log is streamed: each run's tool (with its rules, which are small) is
// decoded whole, and each result is decoded on its own into a compact
// record, so memory stays proportional to the rules and the kept findings,
// not to the document. A run may list its results before its tool; those
// results wait, compact, until the run ends and the rules are known.

const (
	sarifFormat     = "sarif-2.1.0"
	sarifName       = "SARIF 2.1.0"
	sarifVersion    = "2.1.0"
	sarifMaxRuleIDs = 1000 // <p>.rules keeps at most this many ids
	sarifMaxTools   = 100
	sarifMaxMessage = 300 // runes of a finding's message
	sarifMaxRules   = 100000
	// A run whose results come before its tool keeps them until the tool
	// arrives: sarifMaxPending in full, then only a count per rule and
	// level, for at most sarifMaxGroups distinct ones.
	sarifMaxPending = 4 * MaxFindings
	sarifMaxGroups  = 100000
)

// sarifParser returns the SARIF parser for evidence type t; t is also the
// prefix of the facts ("sast.count.high").
func sarifParser(t Type) Parser {
	return func(r io.Reader, _ Options) (*Report, error) { return parseSARIF(t, r) }
}

// sniffSARIF recognises a SARIF log from the start of a document. Key order
// varies between tools (Semgrep writes "version" last), so it looks for
// "runs" and any member every run has near its start.
func sniffSARIF(head []byte) bool {
	return scanSniff(head, "runs") && scanSniffAny(head, "version", "driver", "results")
}

var (
	_ = register(SAST, sarifFormat, sniffSARIF, sarifParser(SAST))
	_ = register(Lint, sarifFormat, sniffSARIF, sarifParser(Lint))
	_ = register(IaC, sarifFormat, sniffSARIF, sarifParser(IaC))
	_ = register(SCA, sarifFormat, sniffSARIF, sarifParser(SCA))
	_ = register(ContainerScan, sarifFormat, sniffSARIF, sarifParser(ContainerScan))
)

type sarifRule struct {
	ID                   string `json:"id"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	ShortDescription struct {
		Text string `json:"text"`
	} `json:"shortDescription"`
	Properties struct {
		SecuritySeverity scanText `json:"security-severity"`
	} `json:"properties"`
}

type sarifComponent struct {
	Name  string
	Rules []sarifRule
}

type sarifTool struct {
	Driver     sarifComponent
	Extensions []sarifComponent
}

type sarifResult struct {
	RuleID    string `json:"ruleId"`
	RuleIndex *int   `json:"ruleIndex"`
	Rule      *struct {
		ID            string `json:"id"`
		Index         *int   `json:"index"`
		ToolComponent *struct {
			Name  string `json:"name"`
			Index *int   `json:"index"`
		} `json:"toolComponent"`
	} `json:"rule"`
	Kind          string `json:"kind"`
	Level         string `json:"level"`
	BaselineState string `json:"baselineState"`
	Message       struct {
		Text string `json:"text"`
	} `json:"message"`
	// Locations is parsed only for the results that are kept.
	Locations    json.RawMessage `json:"locations"`
	Suppressions sarifSuppressed `json:"suppressions"`
}

// sarifSuppressed reads a result's suppressions: true when one of them is
// accepted or has no status (which SARIF defines as accepted).
type sarifSuppressed bool

func (s *sarifSuppressed) UnmarshalJSON(b []byte) error {
	*s = false
	return scanEachElement(b, func(dec *json.Decoder, _ int) error {
		var sup struct {
			Status string `json:"status"`
		}
		if err := dec.Decode(&sup); err != nil {
			return err
		}
		if sup.Status == "" || sup.Status == "accepted" {
			*s = true
		}
		return nil
	})
}

// sarifPending is what a result keeps until its severity can be resolved.
// sarifLocation is the part of a SARIF location a finding shows.
type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

// sarifFirstLocation renders the first of a result's locations as
// file:line (or file), "" when there is none.
func sarifFirstLocation(raw json.RawMessage, n int) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var locs scanFirst[sarifLocation]
	if err := locs.UnmarshalJSON(raw); err != nil {
		return "", Errorf(sarifName, "result %d: locations: %v", n, err)
	}
	if locs.First == nil {
		return "", nil
	}
	pl := locs.First.PhysicalLocation
	loc := scanClip(pl.ArtifactLocation.URI, 500)
	if pl.Region.StartLine > 0 {
		loc += ":" + strconv.Itoa(pl.Region.StartLine)
	}
	return loc, nil
}

type sarifPending struct {
	ruleID    string
	ruleIndex int // -1 when absent
	component int // -1 for the driver, else an extension index
	compName  string
	level     string // "" when the result has none
	location  string
	message   string
}

// sarifRun accumulates one run.
type sarifRun struct {
	tool    *sarifTool
	byID    map[string]*sarifRule
	pending []sarifPending
	// overflow counts the results beyond sarifMaxPending that wait for
	// the tool, by everything but their location and message.
	overflow map[sarifPending]int
}

type sarifState struct {
	t          Type
	findings   *scanFindings
	tools      *scanSet
	rules      *scanSet
	nResults   int
	sawRuns    bool
	version    string
	sawVersion bool
	foreign    string
}

func parseSARIF(t Type, r io.Reader) (*Report, error) {
	st := &sarifState{
		t:        t,
		findings: newScanFindings(),
		tools:    newScanSet(sarifMaxTools),
		rules:    newScanSet(sarifMaxRuleIDs),
	}
	dec := scanDecoder(r, sarifName)
	if err := scanExpectDelim(dec, sarifName, '{', "the document"); err != nil {
		return nil, err
	}
	err := scanObject(dec, sarifName, func(key string) error {
		switch key {
		case "version":
			var v any
			if err := scanDecode(dec, sarifName, "version", &v); err != nil {
				return err
			}
			s, _ := v.(string)
			if s != sarifVersion && st.foreign != "" {
				return Errorf(sarifName, "not a SARIF log (version %s); this looks like %s", scanShortJSON(v), st.foreign)
			}
			if s != sarifVersion {
				return Errorf(sarifName, "unsupported version %s; supported: %s", scanShortJSON(v), sarifVersion)
			}
			st.version, st.sawVersion = s, true
			return nil
		case "runs":
			st.sawRuns = true
			return scanArray(dec, sarifName, "runs", func() error { return st.run(dec) })
		}
		if f := scanForeignFormat(key); f != "" && st.foreign == "" {
			st.foreign = f
		}
		return scanSkip(dec, sarifName)
	})
	if err != nil {
		return nil, err
	}
	if err := scanExpectEnd(dec, sarifName); err != nil {
		return nil, err
	}
	if !st.sawVersion || !st.sawRuns {
		missing := `"version"`
		if st.sawVersion {
			missing = `"runs"`
		} else if !st.sawRuns {
			missing = `"version" and "runs"`
		}
		if st.foreign != "" {
			return nil, Errorf(sarifName, "not a SARIF log: no %s; this looks like %s", missing, st.foreign)
		}
		return nil, Errorf(sarifName, "not a SARIF log: no %s", missing)
	}
	facts := map[string]any{}
	p := string(t)
	rep := &Report{Type: t, Format: sarifFormat, Facts: facts}
	rep.Findings = st.findings.finish(facts, p)
	facts[p+".tools"] = st.tools.sorted()
	facts[p+".rules"] = st.rules.sorted()
	return rep, nil
}

// run reads one run object.
func (st *sarifState) run(dec *json.Decoder) error {
	if err := scanExpectDelim(dec, sarifName, '{', "runs[] element"); err != nil {
		return err
	}
	run := &sarifRun{}
	err := scanObject(dec, sarifName, func(key string) error {
		switch key {
		case "tool":
			tool, err := st.tool(dec)
			if err != nil {
				return err
			}
			run.setTool(tool)
			st.tools.add(scanClip(tool.Driver.Name, 100))
			for _, p := range run.pending {
				if err := st.resolve(run, p, nil); err != nil {
					return err
				}
			}
			run.pending = nil
			if err := st.resolveOverflow(run); err != nil {
				return err
			}
			return nil
		case "results":
			return scanArray(dec, sarifName, "runs[].results", func() error {
				var res sarifResult
				if err := scanDecode(dec, sarifName, "runs[].results[]", &res); err != nil {
					return err
				}
				st.nResults++
				return st.result(run, &res)
			})
		}
		return scanSkip(dec, sarifName)
	})
	if err != nil {
		return err
	}
	if run.tool == nil {
		return Errorf(sarifName, "runs[] element has no \"tool\"")
	}
	return nil
}

// tool streams a run's tool, keeping each component's name and rules, at
// most sarifMaxRules rules in all.
func (st *sarifState) tool(dec *json.Decoder) (*sarifTool, error) {
	tool := &sarifTool{}
	rules := 0
	component := func(what string, c *sarifComponent) error {
		if err := scanExpectDelim(dec, sarifName, '{', what); err != nil {
			return err
		}
		return scanObject(dec, sarifName, func(key string) error {
			switch key {
			case "name":
				return scanDecode(dec, sarifName, what+".name", &c.Name)
			case "rules":
				return scanArray(dec, sarifName, what+".rules", func() error {
					if rules++; rules > sarifMaxRules {
						return Errorf(sarifName, "%s: more than %d rules", what, sarifMaxRules)
					}
					var r sarifRule
					if err := scanDecode(dec, sarifName, what+".rules[]", &r); err != nil {
						return err
					}
					c.Rules = append(c.Rules, r)
					return nil
				})
			}
			return scanSkip(dec, sarifName)
		})
	}
	if err := scanExpectDelim(dec, sarifName, '{', "runs[].tool"); err != nil {
		return nil, err
	}
	err := scanObject(dec, sarifName, func(key string) error {
		switch key {
		case "driver":
			return component("runs[].tool.driver", &tool.Driver)
		case "extensions":
			return scanArray(dec, sarifName, "runs[].tool.extensions", func() error {
				if len(tool.Extensions) >= sarifMaxRules {
					return Errorf(sarifName, "runs[].tool: more than %d extensions", sarifMaxRules)
				}
				tool.Extensions = append(tool.Extensions, sarifComponent{})
				return component("runs[].tool.extensions[]", &tool.Extensions[len(tool.Extensions)-1])
			})
		}
		return scanSkip(dec, sarifName)
	})
	return tool, err
}

func (run *sarifRun) setTool(t *sarifTool) {
	run.tool = t
	run.byID = map[string]*sarifRule{}
	add := func(c *sarifComponent) {
		for i := range c.Rules {
			if _, ok := run.byID[c.Rules[i].ID]; !ok && c.Rules[i].ID != "" {
				run.byID[c.Rules[i].ID] = &c.Rules[i]
			}
		}
	}
	add(&t.Driver)
	for i := range t.Extensions {
		add(&t.Extensions[i])
	}
}

// result compacts one result, skipping those that are not open findings,
// and resolves it now if the run's rules are known.
func (st *sarifState) result(run *sarifRun, res *sarifResult) error {
	switch res.Kind {
	case "", "fail":
	case "pass", "notApplicable":
		return nil // not a finding
	case "open", "review", "informational":
		if res.Level == "" {
			res.Level = "none"
		}
	default:
		return Errorf(sarifName, "result %d: unknown kind %q", st.nResults, res.Kind)
	}
	if res.BaselineState == "absent" {
		return nil // fixed since the baseline
	}
	if res.Suppressions {
		return nil
	}
	switch res.Level {
	case "", "error", "warning", "note", "none":
	default:
		return Errorf(sarifName, "result %d: unknown level %q; levels: error, warning, note, none", st.nResults, res.Level)
	}
	p := sarifPending{ruleID: res.RuleID, ruleIndex: -1, component: -1, level: res.Level}
	if res.RuleIndex != nil {
		p.ruleIndex = *res.RuleIndex
	}
	if res.Rule != nil {
		if p.ruleID == "" {
			p.ruleID = res.Rule.ID
		}
		if p.ruleIndex < 0 && res.Rule.Index != nil {
			p.ruleIndex = *res.Rule.Index
		}
		if tc := res.Rule.ToolComponent; tc != nil {
			if tc.Index != nil {
				p.component = *tc.Index
			}
			p.compName = tc.Name
		}
	}
	p.message = scanClip(res.Message.Text, sarifMaxMessage)
	if run.tool == nil {
		if len(run.pending) < sarifMaxPending {
			loc, err := sarifFirstLocation(res.Locations, st.nResults)
			if err != nil {
				return err
			}
			p.location = loc
			run.pending = append(run.pending, p)
			return nil
		}
		key := p
		key.location, key.message = "", ""
		if _, ok := run.overflow[key]; !ok && len(run.overflow) >= sarifMaxGroups {
			return Errorf(sarifName, "more than %d distinct rules among the results before the run's tool", sarifMaxGroups)
		}
		if run.overflow == nil {
			run.overflow = map[sarifPending]int{}
		}
		run.overflow[key]++
		return nil
	}
	return st.resolve(run, p, res.Locations)
}

// classify finds a result's rule id and severity.
func (st *sarifState) classify(run *sarifRun, p sarifPending) (id string, sev Severity, rule *sarifRule, err error) {
	rule = run.lookup(p)
	id = p.ruleID
	if id == "" && rule != nil {
		id = rule.ID
	}
	level := p.level
	if level == "" && rule != nil {
		level = rule.DefaultConfiguration.Level
	}
	switch level {
	case "", "warning":
		sev = Medium
	case "error":
		sev = High
	case "note":
		sev = Low
	case "none":
		sev = None
	default:
		return "", "", nil, Errorf(sarifName, "rule %q: unknown default level %q; levels: error, warning, note, none", scanClip(id, 100), scanClip(level, 20))
	}
	if rule != nil && rule.Properties.SecuritySeverity != "" {
		if score, ok := rule.Properties.SecuritySeverity.float(); ok && score >= 0 && score <= 10 {
			sev = SeverityFromScore(score)
		}
	}
	return scanClip(id, 200), sev, rule, nil
}

// resolve records a result as a finding. locations, when not nil, are
// the result's raw locations, parsed only if the finding is kept.
func (st *sarifState) resolve(run *sarifRun, p sarifPending, locations json.RawMessage) error {
	id, sev, rule, err := st.classify(run, p)
	if err != nil {
		return err
	}
	st.rules.add(id)
	if !st.findings.wants(sev) {
		st.findings.count(sev)
		return nil
	}
	if locations != nil {
		if p.location, err = sarifFirstLocation(locations, st.nResults); err != nil {
			return err
		}
	}
	msg := p.message
	if msg == "" && rule != nil {
		msg = scanClip(rule.ShortDescription.Text, sarifMaxMessage)
	}
	st.findings.add(Finding{ID: id, Severity: sev, Location: p.location, Message: msg})
	return nil
}

// resolveOverflow counts the results that waited for their tool beyond
// sarifMaxPending; they are counted but not kept as findings.
func (st *sarifState) resolveOverflow(run *sarifRun) error {
	keys := make([]sarifPending, 0, len(run.overflow))
	for k := range run.overflow {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ruleID < keys[j].ruleID })
	for _, k := range keys {
		id, sev, _, err := st.classify(run, k)
		if err != nil {
			return err
		}
		st.rules.add(id)
		st.findings.counts[sev] += run.overflow[k]
	}
	run.overflow = nil
	return nil
}

// lookup finds the rule a result refers to: by index into the named tool
// component, else by id across the driver and its extensions.
func (run *sarifRun) lookup(p sarifPending) *sarifRule {
	comp := &run.tool.Driver
	if p.component >= 0 {
		if p.component < len(run.tool.Extensions) {
			comp = &run.tool.Extensions[p.component]
		} else {
			comp = nil
		}
	} else if p.compName != "" && p.compName != run.tool.Driver.Name {
		comp = nil
		for i := range run.tool.Extensions {
			if run.tool.Extensions[i].Name == p.compName {
				comp = &run.tool.Extensions[i]
				break
			}
		}
	}
	if comp != nil && p.ruleIndex >= 0 && p.ruleIndex < len(comp.Rules) {
		r := &comp.Rules[p.ruleIndex]
		if p.ruleID == "" || r.ID == p.ruleID || r.ID == "" {
			return r
		}
	}
	if p.ruleID != "" {
		return run.byID[p.ruleID]
	}
	return nil
}

// scanShortJSON renders a decoded JSON scalar for an error message.
func scanShortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return scanClip(string(b), 40)
}

// scanForeignFormat names the format a distinctive top-level member belongs to,
// so a document given to the wrong parser gets a helpful error.
func scanForeignFormat(key string) string {
	switch key {
	case "runs":
		return "a SARIF log"
	case "bomFormat":
		return "a CycloneDX SBOM"
	case "spdxVersion":
		return "an SPDX document"
	case "SchemaVersion", "ArtifactName":
		return "a Trivy JSON report"
	case "matches", "descriptor":
		return "a Grype JSON report"
	case "@version", "site":
		return "an OWASP ZAP report"
	case "metrics", "root_group":
		return "a k6 summary"
	case "payloadType":
		return "a DSSE envelope"
	case "_type", "predicateType":
		return "an in-toto statement"
	}
	return ""
}
