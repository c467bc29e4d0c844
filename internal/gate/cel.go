package gate

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/airlock-dev/airlock/internal/evidence"
)

// celCostLimit bounds the work one expression may do, so a pathological
// expression fails instead of stalling a promotion.
const celCostLimit = 1_000_000

// maxCachedPrograms bounds the program cache; past it the cache starts over.
const maxCachedPrograms = 4096

// celEnv is the one CEL environment every expression and condition is
// compiled in. The variables are documented in docs/gates.md.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	mapType := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable("facts", mapType),
		cel.Variable("evidence", cel.ListType(mapType)),
		cel.Variable("app", mapType),
		cel.Variable("release", mapType),
		cel.Variable("from", cel.StringType),
		cel.Variable("to", cel.StringType),
		cel.Variable("tier", cel.StringType),
		cel.Variable("emergency", cel.BoolType),
		cel.Variable("now", cel.TimestampType),
		cel.Function("declares",
			cel.MemberOverload("map_declares_string", []*cel.Type{mapType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(declares))),
	)
})

// declares implements app.declares(kind): whether kind is among the
// application's declared sign-offs.
func declares(app, kind ref.Val) ref.Val {
	m, ok := app.(traits.Mapper)
	if !ok {
		return types.NewErr("declares: receiver is not an application")
	}
	v, found := m.Find(types.String("signoffs"))
	if !found {
		return types.False
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return types.False
	}
	return l.Contains(kind)
}

// program is one compiled CEL expression.
type program struct {
	text string
	prg  cel.Program
}

var programs = struct {
	sync.Mutex
	m map[string]*program
}{m: map[string]*program{}}

// compileCEL compiles a boolean CEL expression, or returns the cached
// program for the same text.
func compileCEL(text string) (*program, error) {
	programs.Lock()
	p, ok := programs.m[text]
	programs.Unlock()
	if ok {
		return p, nil
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		return nil, fmt.Errorf("CEL: %s", strings.TrimSpace(iss.String()))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("CEL: the expression yields %s; it must yield a bool (true to pass)", t)
	}
	prg, err := env.Program(ast, cel.CostLimit(celCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("CEL: %w", err)
	}
	p = &program{text: text, prg: prg}
	programs.Lock()
	if len(programs.m) >= maxCachedPrograms {
		programs.m = map[string]*program{}
	}
	programs.m[text] = p
	programs.Unlock()
	return p, nil
}

// evalBool evaluates the program for in, with facts (merged from ev when
// nil). The facts and evidence variables are built only if the expression
// reads them.
func (p *program) evalBool(in *Input, ev []Evidence, facts map[string]any) (bool, error) {
	act := map[string]any{
		"facts": func() any {
			if facts == nil {
				return mergeFacts(ev)
			}
			return facts
		},
		"evidence":  func() any { return evidenceList(ev) },
		"app":       func() any { return appMap(in) },
		"release":   func() any { return releaseMap(in) },
		"from":      in.From,
		"to":        in.To,
		"tier":      string(in.ToTier),
		"emergency": in.Emergency,
		"now":       in.Now,
	}
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("it yielded %v (%s), not a bool", out.Value(), out.Type())
	}
	return b, nil
}

var noSuchKey = regexp.MustCompile(`^no such key: (.+)$`)

// missingKey reports whether err is a lookup of an absent map key, and
// which.
func missingKey(err error) (string, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if m := noSuchKey.FindStringSubmatch(e.Error()); m != nil {
			return m[1], true
		}
	}
	return "", false
}

func appMap(in *Input) map[string]any {
	signoffs := in.AppSpec.Signoffs
	if signoffs == nil {
		signoffs = []string{}
	}
	owners := in.AppSpec.Owners
	if owners == nil {
		owners = []string{}
	}
	return map[string]any{
		"name":       appName(in),
		"userFacing": in.AppSpec.UserFacing,
		"signoffs":   signoffs,
		"owners":     owners,
		"pipeline":   in.AppSpec.Pipeline,
	}
}

func releaseMap(in *Input) map[string]any {
	return map[string]any{
		"app":     in.Release.App,
		"version": in.Release.Version,
		"digest":  in.Release.Artifact.Digest,
		"commit":  in.Release.Commit,
		"creator": in.Release.Creator,
	}
}

func evidenceList(ev []Evidence) []any {
	out := make([]any, len(ev))
	for i, e := range ev {
		facts := e.Report.Facts
		if facts == nil {
			facts = map[string]any{}
		}
		out[i] = map[string]any{
			"digest":      e.Digest,
			"type":        string(e.Type),
			"suite":       string(e.Suite),
			"name":        e.Name,
			"format":      e.Report.Format,
			"trusted":     e.Trusted,
			"signer":      e.Signer,
			"submittedBy": e.SubmittedBy,
			"submittedAt": e.SubmittedAt,
			"facts":       facts,
		}
	}
	return out
}

// mergeFacts merges the facts of every piece into one map, so an
// expression can read them by name:
//   - counts (tests.total/passed/failed/skipped and <type>.count.*) add up;
//     tests facts are also kept per suite, as tests.<suite>.<fact>;
//   - percentages (names ending _percent) keep the lowest value, latencies
//     (_ms) and rates (_rate) the highest, max_severity the most severe:
//     the worst value counts;
//   - any other fact takes the value of the most recently submitted piece.
func mergeFacts(ev []Evidence) map[string]any {
	out := make(map[string]any, 16*len(ev))
	at := make(map[string]int, 16*len(ev)) // index into ev of the piece that set a "latest" fact
	for i, e := range ev {
		suite := ""
		if e.Type == evidence.Tests {
			suite = string(suiteOf(&ev[i]))
		}
		for k, val := range e.Report.Facts {
			mergeFact(out, at, ev, i, k, val)
			if suite != "" && strings.HasPrefix(k, "tests.") && k != "tests.suite" {
				mergeFact(out, at, ev, i, "tests."+suite+k[len("tests"):], val)
			}
		}
	}
	return out
}

func mergeFact(out map[string]any, at map[string]int, ev []Evidence, i int, k string, val any) {
	old, exists := out[k]
	if !exists {
		out[k] = val
		at[k] = i
		return
	}
	a, aok := old.(float64)
	b, bok := val.(float64)
	switch {
	case aok && bok && isCount(k):
		out[k] = a + b
	case aok && bok && strings.HasSuffix(k, "_percent"):
		out[k] = min(a, b)
	case aok && bok && (strings.HasSuffix(k, "_ms") || strings.HasSuffix(k, "_rate")):
		out[k] = max(a, b)
	case strings.HasSuffix(k, ".max_severity"):
		as, _ := old.(string)
		bs, _ := val.(string)
		if evidence.Severity(bs).Rank() > evidence.Severity(as).Rank() {
			out[k] = val
		}
	default:
		if !ev[at[k]].SubmittedAt.After(ev[i].SubmittedAt) {
			out[k] = val
			at[k] = i
		}
	}
}

func isCount(k string) bool {
	if strings.Contains(k, ".count.") {
		return true
	}
	if !strings.HasPrefix(k, "tests.") {
		return false
	}
	switch k[strings.LastIndexByte(k, '.')+1:] {
	case "total", "passed", "failed", "skipped", "errors":
		return true
	}
	return false
}

var factRef = regexp.MustCompile(`facts\[\s*(?:"([^"]+)"|'([^']+)')\s*\]`)

// referencedFacts lists the values of the facts an expression names, for
// its result: " (coverage.line_percent = 71.4, tests.failed = 0)".
func referencedFacts(expr string, facts map[string]any) string {
	var parts []string
	seen := map[string]bool{}
	for _, m := range factRef.FindAllStringSubmatch(expr, -1) {
		k := m[1] + m[2]
		if seen[k] {
			continue
		}
		seen[k] = true
		val, ok := facts[k]
		switch {
		case !ok:
			parts = append(parts, k+" absent")
		default:
			if f, isNum := val.(float64); isNum {
				parts = append(parts, k+" = "+numStr(f))
			} else {
				parts = append(parts, fmt.Sprintf("%s = %v", k, val))
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// Condition is a compiled `when` expression, for gate types registered
// outside this package: the same language and variables as the built-in
// gates' conditions.
type Condition struct {
	text string
	p    *program
}

// CompileCondition compiles a `when` expression.
func CompileCondition(text string) (*Condition, error) {
	p, err := compileCEL(text)
	if err != nil {
		return nil, err
	}
	return &Condition{text: text, p: p}, nil
}

// String returns the expression as written.
func (c *Condition) String() string { return c.text }

// Holds evaluates the condition for a promotion.
func (c *Condition) Holds(in *Input) (bool, error) {
	return c.p.evalBool(in, in.Evidence, nil)
}

// Applies decides whether a registered gate applies to a promotion. With
// no condition (c nil) or one that holds it returns true. Otherwise it
// fills r, skipped, or failed when the condition cannot be evaluated, and
// returns false: the gate is judged by its when condition alone.
func (c *Condition) Applies(in *Input, r *Result) bool {
	if c == nil {
		return true
	}
	ok, err := c.Holds(in)
	switch {
	case err != nil:
		r.Status, r.Reasons, r.Fix = StatusFail, []string{fmt.Sprintf("condition %s could not be evaluated: %v", c, err)}, "fix the gate's when condition in the pipeline"
	case !ok:
		r.Status, r.Reasons = StatusSkipped, []string{fmt.Sprintf("not required: condition %s is false for %s", c, in.App)}
	}
	return err == nil && ok
}
