package rollout

import (
	"fmt"

	"github.com/airlock-dev/airlock/internal/evidence"
	"github.com/airlock-dev/airlock/internal/gate"
)

// RollbackTestedGate requires a successful rollback rehearsal of this very
// release in a non-production environment (airlock rollback APP --env ENV
// --rehearsal), declared on the transition into production.
const RollbackTestedGate = "rollbackTested"

func init() {
	gate.Register(RollbackTestedGate, func(s gate.Spec) (gate.Gate, error) {
		for _, f := range gate.SetFields(s) {
			return nil, &gate.FieldError{Field: f, Msg: f + " does not apply to a rollbackTested gate, which takes only name, message and when"}
		}
		if s.RequireTrusted != nil {
			return nil, &gate.FieldError{Field: "requireTrusted", Msg: "a rollback rehearsal is always recorded by airlock itself; remove requireTrusted"}
		}
		g := &rollbackGate{spec: s}
		if g.spec.Name == "" {
			g.spec.Name = s.DefaultName()
		}
		if s.When != "" {
			c, err := gate.CompileCondition(s.When)
			if err != nil {
				return nil, &gate.FieldError{Field: "when", Msg: err.Error()}
			}
			g.when = c
		}
		return g, nil
	})
}

type rollbackGate struct {
	spec gate.Spec
	when *gate.Condition
}

func (g *rollbackGate) Spec() gate.Spec { return g.spec }

func (g *rollbackGate) Evaluate(in *gate.Input) gate.Result {
	r := gate.Result{Gate: g.spec.Name, Type: RollbackTestedGate}
	if !g.when.Applies(in, &r) {
		return r
	}
	fix := fmt.Sprintf("rehearse it in a non-production environment where %s %s serves: airlock rollback %s --env staging --rehearsal", in.App, in.Release.Version, in.App)
	var failed []string
	for _, e := range in.Evidence {
		if e.Type != evidence.Rollback || !e.Trusted {
			continue
		}
		env, _ := e.Report.Facts["rollback.environment"].(string)
		tier, _ := e.Report.Facts["rollback.tier"].(string)
		if tier == "production" {
			continue
		}
		if passed, _ := e.Report.Facts["rollback.passed"].(bool); passed {
			prev, _ := e.Report.Facts["rollback.previous"].(string)
			ms, _ := e.Report.Facts["rollback.ms"].(float64)
			r.Status = gate.StatusPass
			r.Reasons = []string{fmt.Sprintf("rollback rehearsed in %s on %s: back to %s in %.0f ms, then restored", env, e.SubmittedAt.UTC().Format("2006-01-02 15:04"), prev, ms)}
			r.Evidence = []string{e.Digest}
			return r
		}
		failed = append(failed, fmt.Sprintf("the rollback rehearsal in %s on %s failed (see evidence %s)", env, e.SubmittedAt.UTC().Format("2006-01-02 15:04"), e.Digest))
	}
	if g.spec.Message != "" {
		r.Reasons = append(r.Reasons, g.spec.Message)
	}
	r.Fix = fix
	if len(failed) > 0 {
		r.Status = gate.StatusFail
		r.Reasons = append(r.Reasons, failed...)
		return r
	}
	r.Status = gate.StatusPending
	r.Reasons = append(r.Reasons, fmt.Sprintf("no rollback rehearsal of %s %s yet", in.App, in.Release.Version))
	return r
}
