package window

import (
	"fmt"
	"time"

	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/resource"
)

// GateType is the gate type this package registers.
const GateType = "window"

func init() {
	gate.Register(GateType, buildGate)
}

// windowGate judges gate.Input.Extra[GateType], a []Window, with Open for
// the promotion's application and target environment at Input.Now. It is
// not a security gate: an emergency promotion waives it.
type windowGate struct{ spec gate.Spec }

func buildGate(s gate.Spec) (gate.Gate, error) {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"requireTrusted", s.RequireTrusted != nil}, {"suite", s.Suite != ""}, {"minCount", s.MinCount != 0},
		{"minPercent", s.MinPercent != 0}, {"maxSeverity", s.MaxSeverity != ""}, {"maxCounts", s.MaxCounts != nil},
		{"suppressions", s.Suppressions != nil}, {"format", s.Format != ""}, {"maxP95Ms", s.MaxP95Ms != 0},
		{"maxP99Ms", s.MaxP99Ms != 0}, {"maxErrorRate", s.MaxErrorRate != nil}, {"kind", s.Kind != ""},
		{"role", s.Role != ""}, {"when", s.When != ""}, {"expression", s.Expression != ""},
		{"require", s.Require != nil}, {"securityPaths", s.SecurityPaths != nil},
	} {
		if f.set {
			return nil, &gate.FieldError{Field: f.name, Msg: f.name + " does not apply to a window gate, which takes only name and message; the windows themselves are Window resources"}
		}
	}
	if s.Name == "" {
		s.Name = s.DefaultName()
	} else if err := resource.ValidateName(s.Name); err != nil {
		return nil, &gate.FieldError{Field: "name", Msg: "gate " + err.Error()}
	}
	return windowGate{spec: s}, nil
}

func (g windowGate) Spec() gate.Spec { return g.spec }

func (g windowGate) Evaluate(in *gate.Input) gate.Result {
	r := gate.Result{Gate: g.spec.Name, Type: GateType}
	ws, ok := in.Extra[GateType].([]Window)
	if in.Extra[GateType] != nil && !ok {
		r.Status = gate.StatusFail
		r.Reasons = []string{fmt.Sprintf("the windows were handed to the gate as %T, not []window.Window", in.Extra[GateType])}
		r.Fix = "report this as a bug in airlock"
		return r
	}
	d, err := Decide(ws, in.App, in.To, in.Now)
	if err != nil {
		r.Status = gate.StatusFail
		r.Reasons = []string{err.Error()}
		r.Fix = "fix the window with airlock apply"
		return r
	}
	if d.Open {
		r.Status = gate.StatusPass
		r.Reasons = []string{fmt.Sprintf("%s at %s: %s", in.To, in.Now.Format(time.RFC3339), d.Why)}
		return r
	}
	r.Status = gate.StatusFail
	if g.spec.Message != "" {
		r.Reasons = append(r.Reasons, g.spec.Message)
	}
	if d.Next.IsZero() {
		r.Reasons = append(r.Reasons, fmt.Sprintf("%s: no opening for %s in %s within %d days", d.Why, in.App, in.To, int(Horizon.Hours()/24)))
		r.Fix = "change the windows that apply to " + in.To + ", or promote as an emergency"
		return r
	}
	next := d.Next
	r.Reasons = append(r.Reasons, fmt.Sprintf("%s until %s", d.Why, next.Format(time.RFC3339)))
	r.Fix = fmt.Sprintf("promote again at or after %s (the gate is re-judged on request), or promote as an emergency", next.Format(time.RFC3339))
	return r
}
