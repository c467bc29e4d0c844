package approval

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/resource"
)

// GateType is the gate type this package registers.
const GateType = "approvals"

func init() {
	gate.Register(GateType, buildGate)
}

// approvalsGate judges gate.Input.Extra[GateType], an []Approval, against
// the roles and counts in Spec.Require. It reports Security: an emergency
// does not waive it; it asks for one approval by an emergency approver
// instead.
type approvalsGate struct {
	spec   gate.Spec
	maxAge time.Duration
	when   *gate.Condition // nil: always applies
}

func buildGate(s gate.Spec) (gate.Gate, error) {
	for _, f := range gate.SetFields(s) {
		if f != "require" && f != "securityPaths" && f != "maxAge" {
			return nil, &gate.FieldError{Field: f, Msg: f + " does not apply to an approvals gate, which takes only name, message, require, securityPaths, maxAge and when"}
		}
	}
	if s.RequireTrusted != nil {
		return nil, &gate.FieldError{Field: "requireTrusted", Msg: "requireTrusted does not apply to an approvals gate: approvals are given in airlock by authenticated people"}
	}
	maxAge := MaxAge
	if s.MaxAge != "" {
		d, err := time.ParseDuration(s.MaxAge)
		if err != nil || d < MinMaxAge || d > MaxMaxAge {
			return nil, &gate.FieldError{Field: "maxAge", Msg: fmt.Sprintf("maxAge %q must be a duration from %s to %s, e.g. 72h", s.MaxAge, MinMaxAge, "720h")}
		}
		maxAge = d
	}
	if s.SecurityPaths != nil {
		if err := ValidatePaths(*s.SecurityPaths); err != nil {
			return nil, &gate.FieldError{Field: "securityPaths", Msg: err.Error()}
		}
	}
	if len(s.Require) == 0 {
		return nil, &gate.FieldError{Field: "require", Msg: "an approvals gate needs the roles and counts it requires, e.g. require: {tech-lead: 1, sre: 1}"}
	}
	total := 0
	for role, n := range s.Require {
		if err := resource.ValidateName(role); err != nil {
			return nil, &gate.FieldError{Field: "require." + role, Msg: "role " + err.Error()}
		}
		if n < 1 || n > 10 {
			return nil, &gate.FieldError{Field: "require." + role, Msg: fmt.Sprintf("the count of %s approvals must be from 1 to 10, got %d", role, n)}
		}
		total += n
	}
	if total > 20 {
		return nil, &gate.FieldError{Field: "require", Msg: fmt.Sprintf("at most 20 approvals in all may be required, got %d", total)}
	}
	if s.Name == "" {
		s.Name = s.DefaultName()
	} else if err := resource.ValidateName(s.Name); err != nil {
		return nil, &gate.FieldError{Field: "name", Msg: "gate " + err.Error()}
	}
	g := approvalsGate{spec: s, maxAge: maxAge}
	if s.When != "" {
		c, err := gate.CompileCondition(s.When)
		if err != nil {
			return nil, &gate.FieldError{Field: "when", Msg: err.Error()}
		}
		g.when = c
	}
	return g, nil
}

func (g approvalsGate) Spec() gate.Spec { return g.spec }

func (g approvalsGate) Evaluate(in *gate.Input) (r gate.Result) {
	r = gate.Result{Gate: g.spec.Name, Type: GateType, Security: true}
	if !g.when.Applies(in, &r) {
		return r
	}
	votes, ok := in.Extra[GateType].([]Approval)
	if in.Extra[GateType] != nil && !ok {
		r.Status = gate.StatusFail
		r.Reasons = []string{fmt.Sprintf("the approvals were handed to the gate as %T, not []approval.Approval", in.Extra[GateType])}
		r.Fix = "report this as a bug in airlock"
		return r
	}
	require, security := EffectiveRequire(g.spec, in.Evidence)
	p := Policy{Require: require, MaxAge: g.maxAge}
	if in.Emergency {
		p, security = p.ForEmergency(), ""
	}
	v := Judge(p, in, votes)
	if security != "" {
		defer func() { r.Reasons = append([]string{security}, r.Reasons...) }()
	}
	switch {
	case len(v.Rejections) > 0:
		r.Status = gate.StatusFail
		r.Final = true // a person said no: only a new release can answer that
		if g.spec.Message != "" {
			r.Reasons = append(r.Reasons, g.spec.Message)
		}
		r.Reasons = append(r.Reasons, v.Rejections...)
		r.Fix = "build a new release that answers the rejection and promote it"
	case v.Missing == "":
		r.Status = gate.StatusPass
		r.Reasons = []string{"approved by " + v.Have}
	default:
		r.Status = gate.StatusPending
		if g.spec.Message != "" {
			r.Reasons = append(r.Reasons, g.spec.Message)
		}
		have := v.Have
		if have == "" {
			have = "none"
		}
		r.Reasons = append(r.Reasons, fmt.Sprintf("needs %s; have: %s", v.Missing, have))
		r.Reasons = append(r.Reasons, v.Ignored...)
		r.Fix = "airlock approve <promotion> --reason TEXT"
	}
	return r
}

// Verdict is what the approvals amount to.
type Verdict struct {
	Rejections []string // one line per valid rejection: who and why
	Missing    string   // e.g. "1 sre approval"; empty when satisfied
	Have       string   // e.g. "tech-lead alice"
	Ignored    []string // votes that do not count, and why
}

// Judge counts votes against p for the promotion described by in. A vote
// counts when it binds to the release's current digest and in's policy
// revision, is at most p.MaxAge old (MaxAge when zero), and comes from
// neither the release's creator, an author of its commit, nor the
// promotion's requester. Each person fills at most one required role slot,
// whatever roles they hold; slots are assigned by maximum bipartite
// matching. The latest vote of each person counts.
func Judge(p Policy, in *gate.Input, votes []Approval) Verdict {
	var v Verdict
	require, maxAge := p.Require, p.MaxAge
	if maxAge <= 0 {
		maxAge = MaxAge
	}
	latest := map[string]Approval{}
	for _, a := range votes {
		if prev, ok := latest[a.Spec.Approver]; !ok || !a.CreatedAt.Before(prev.CreatedAt) {
			latest[a.Spec.Approver] = a
		}
	}
	people := make([]string, 0, len(latest))
	for p := range latest {
		people = append(people, p)
	}
	sort.Strings(people)

	roles := make([]string, 0, len(require))
	for role := range require {
		roles = append(roles, role)
	}
	sort.Strings(roles)

	var approvers []Holder
	for _, p := range people {
		a := latest[p].Spec
		switch {
		case a.Digest != in.Release.Artifact.Digest:
			v.Ignored = append(v.Ignored, fmt.Sprintf("the vote of %s was for another artifact (%s)", p, a.Digest))
			continue
		case a.PolicyRevision != in.PolicyRevision:
			v.Ignored = append(v.Ignored, fmt.Sprintf("the vote of %s was under policy revision %d, not %d", p, a.PolicyRevision, in.PolicyRevision))
			continue
		case in.Now.Sub(latest[p].CreatedAt) > maxAge:
			v.Ignored = append(v.Ignored, fmt.Sprintf("the vote of %s expired (given %s, valid %s)", p, latest[p].CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), maxAge))
			continue
		case p == in.Release.Creator:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s created the release and may not approve it", p))
			continue
		case slices.Contains(in.Release.Authors, p):
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s authored the release's commit and may not approve it", p))
			continue
		case p == in.RequestedBy:
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s requested the promotion and may not approve it", p))
			continue
		}
		var held []string
		for _, role := range a.Roles {
			if _, ok := require[role]; ok && !slices.Contains(held, role) {
				held = append(held, role)
			}
		}
		if len(held) == 0 {
			v.Ignored = append(v.Ignored, fmt.Sprintf("%s holds none of the required roles (%s) for %s", p, strings.Join(roles, ", "), in.To))
			continue
		}
		if a.Decision == Reject {
			v.Rejections = append(v.Rejections, fmt.Sprintf("rejected by %s (%s): %s", p, strings.Join(held, ", "), a.Reason))
			continue
		}
		approvers = append(approvers, Holder{Name: p, Roles: held})
	}

	have, missing := Match(require, approvers)
	v.Have, v.Missing = strings.Join(have, ", "), DescribeMissing(missing)
	if in.Emergency && v.Missing != "" {
		v.Missing += " (emergency)"
	}
	return v
}

// Holder is a person and the required roles they hold.
type Holder struct {
	Name  string
	Roles []string
}

// Match fills the slots require asks for (one per required approval) with
// distinct holders, by maximum bipartite matching, so one person counts
// once whatever roles they hold and no greedy choice wastes a person who
// could fill a scarcer role. It returns the filled slots as "role name",
// in role order, and the count still missing per role.
func Match(require map[string]int, holders []Holder) (have []string, missing map[string]int) {
	roles := make([]string, 0, len(require))
	for role := range require {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	var slots []string
	for _, role := range roles {
		for range require[role] {
			slots = append(slots, role)
		}
	}
	owner := make([]int, len(slots)) // holder index filling each slot, -1 when none
	for i := range owner {
		owner[i] = -1
	}
	var augment func(h int, seen []bool) bool
	augment = func(h int, seen []bool) bool {
		for s, slot := range slots {
			if seen[s] || !slices.Contains(holders[h].Roles, slot) {
				continue
			}
			seen[s] = true
			if owner[s] < 0 || augment(owner[s], seen) {
				owner[s] = h
				return true
			}
		}
		return false
	}
	for h := range holders {
		augment(h, make([]bool, len(slots)))
	}
	missing = map[string]int{}
	for s, slot := range slots {
		if owner[s] < 0 {
			missing[slot]++
			continue
		}
		have = append(have, slot+" "+holders[owner[s]].Name)
	}
	return have, missing
}

// Describe renders roles and counts for people, in role order:
// "1 sre, 1 tech-lead". Roles with a count of 0 are left out.
func Describe(m map[string]int) string {
	roles := make([]string, 0, len(m))
	for r, n := range m {
		if n > 0 {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = fmt.Sprintf("%d %s", m[r], r)
	}
	return strings.Join(parts, ", ")
}

// DescribeMissing renders the approvals still missing, in role order:
// "1 sre approval, 1 tech-lead approval". Roles with a count of 0 are left
// out; nothing missing is "".
func DescribeMissing(m map[string]int) string {
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(m)) {
		if m[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s approval", m[r], r))
		}
	}
	return strings.Join(parts, ", ")
}

// Held returns the roles among roles that require asks for, sorted and
// without repeats: the roles a vote counts for.
func Held(roles []string, require map[string]int) []string {
	var out []string
	for _, r := range roles {
		if require[r] > 0 && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}
