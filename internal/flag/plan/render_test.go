package plan_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/resource"
)

func checkoutFlag() flag.Spec {
	return flag.Spec{App: "shop", Environment: "prod", Key: "new-checkout", Type: flag.Boolean,
		Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "off", Enabled: false,
		Targeting: []flag.Rule{{Name: "blocked-country", When: &flag.Condition{Attribute: "country", Op: "equals", Value: "xx"}, Variant: "off"}},
		// A split the plan replaces.
		Fractional: []flag.Split{{Variant: "on", Weight: 25}, {Variant: "off", Weight: 75}},
	}
}

func checkoutPlan() plan.Spec {
	return plan.Spec{Flag: "shop.new-checkout.prod", Variant: "on", Steps: []plan.Step{
		{Segments: []string{"internal-users"}}, {Percent: 1}, {Segments: []string{"beta"}}, {Percent: 10}, {Percent: 50}, {Percent: 100},
	}, Advance: plan.Advance{Every: "24h"}}
}

var segments = map[string]flag.SegmentSpec{
	"internal-users": {When: flag.Condition{Attribute: "email", Op: "endsWith", Value: "@shop.example"}},
	"beta":           {When: flag.Condition{Attribute: "beta", Op: "equals", Value: true}},
}

func render(t *testing.T, p plan.Spec, step int, f flag.Spec) (flag.Spec, *flag.Evaluator) {
	t.Helper()
	out, err := plan.Render(p, step, f)
	if err != nil {
		t.Fatalf("Render step %d: %v", step, err)
	}
	e, err := flag.Compile(out, segments)
	if err != nil {
		t.Fatalf("Compile step %d: %v", step, err)
	}
	return out, e
}

func TestRenderSteps(t *testing.T) {
	t.Parallel()
	p, f := checkoutPlan(), checkoutFlag()
	staff := flag.Context{TargetingKey: "ana", Attributes: map[string]any{"email": "ana@shop.example"}}
	tester := flag.Context{TargetingKey: "bo", Attributes: map[string]any{"beta": true}}
	blockedStaff := flag.Context{TargetingKey: "cy", Attributes: map[string]any{"email": "cy@shop.example", "country": "xx"}}
	tests := []struct {
		step       int
		segments   string // the plan rule's segments, comma-separated
		percent    float64
		staff      string
		tester     string
		anyoneElse string // a key far beyond every percentage but 100
	}{
		{0, "internal-users", 0, "on", "off", "off"},
		{1, "internal-users", 1, "on", "off", "off"},
		{2, "internal-users,beta", 1, "on", "on", "off"},
		{3, "internal-users,beta", 10, "on", "on", "off"},
		{5, "internal-users,beta", 100, "on", "on", "on"},
	}
	// A key in a bucket above 50%, so only step 5 serves it the variant.
	other := ""
	for i := 0; other == ""; i++ {
		k := "user-" + strconv.Itoa(i)
		if flag.Bucket(f.Key, k) >= 60_000 {
			other = k
		}
	}
	for _, tt := range tests {
		out, e := render(t, p, tt.step, f)
		if !out.Enabled {
			t.Errorf("step %d: the flag is not enabled", tt.step)
		}
		if len(out.Targeting) != 2 || out.Targeting[0].Name != plan.RuleName || out.Targeting[1].Name != "blocked-country" {
			t.Fatalf("step %d: rules %+v, want %s first and blocked-country after it", tt.step, out.Targeting, plan.RuleName)
		}
		var got []string
		for _, c := range out.Targeting[0].When.Any {
			got = append(got, c.Segment)
		}
		if strings.Join(got, ",") != tt.segments || out.Targeting[0].Variant != "on" {
			t.Errorf("step %d: plan rule serves %q to %v, want on to %s", tt.step, out.Targeting[0].Variant, got, tt.segments)
		}
		switch {
		case tt.percent == 0 && out.Fractional != nil:
			t.Errorf("step %d: fractional %+v, want none before the first percent step", tt.step, out.Fractional)
		case tt.percent > 0 && (len(out.Fractional) != 2 || out.Fractional[0] != flag.Split{Variant: "on", Weight: tt.percent} ||
			out.Fractional[1] != flag.Split{Variant: "off", Weight: 100 - tt.percent}):
			t.Errorf("step %d: fractional %+v, want on %v then off %v", tt.step, out.Fractional, tt.percent, 100-tt.percent)
		}
		for who, want := range map[string]struct {
			c    flag.Context
			want string
		}{"staff": {staff, tt.staff}, "tester": {tester, tt.tester}, "other": {flag.Context{TargetingKey: other}, tt.anyoneElse}} {
			if got := e.Evaluate(want.c).Variant; got != want.want {
				t.Errorf("step %d: %s gets %s, want %s", tt.step, who, got, want.want)
			}
		}
		if got := e.Evaluate(blockedStaff).Variant; got != "on" {
			t.Errorf("step %d: staff in a blocked country get %s, want on (the plan rule comes first)", tt.step, got)
		}
	}
	if len(f.Targeting) != 1 || f.Enabled || f.Fractional[0].Weight != 25 {
		t.Errorf("Render modified its input: %+v", f)
	}
}

func TestRenderReplacesItsOwnRule(t *testing.T) {
	t.Parallel()
	p, f := checkoutPlan(), checkoutFlag()
	once, _ := render(t, p, 2, f)
	twice, _ := render(t, p, 3, once)
	if len(twice.Targeting) != 2 {
		t.Fatalf("rendering over a rendered flag gives %d rules, want 2 (the plan rule replaced, not added)", len(twice.Targeting))
	}
}

func TestRenderRefuses(t *testing.T) {
	t.Parallel()
	f := checkoutFlag()
	tests := []struct {
		name string
		p    func(*plan.Spec)
		step int
		want string
	}{
		{"default variant", func(p *plan.Spec) { p.Variant = "off" }, 0, "default variant"},
		{"unknown variant", func(p *plan.Spec) { p.Variant = "maybe" }, 0, "no variant"},
		{"step past the end", func(*plan.Spec) {}, 6, "not step 6"},
		{"negative step", func(*plan.Spec) {}, -1, "not step -1"},
	}
	for _, tt := range tests {
		p := checkoutPlan()
		tt.p(&p)
		if _, err := plan.Render(p, tt.step, f); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Render = %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

// TestRenderOnlyGrows steps a plan through 1%, 10%, 50% and 100% and
// evaluates 100,000 targeting keys with the real bucketing at each step: a
// key served the variant must stay served it at every later step, and each
// step's share must be close to its percentage.
func TestRenderOnlyGrows(t *testing.T) {
	t.Parallel()
	p := plan.Spec{Flag: "shop.new-checkout.prod", Variant: "on", Steps: []plan.Step{{Percent: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}}
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	on := make([]bool, n)
	for step, pct := range []float64{1, 10, 50, 100} {
		_, e := render(t, p, step, checkoutFlag())
		count, flipped := 0, 0
		for i, k := range keys {
			got := e.Evaluate(flag.Context{TargetingKey: k}).Variant == "on"
			if on[i] && !got {
				flipped++
			}
			if got {
				count++
			}
			on[i] = got
		}
		if flipped > 0 {
			t.Errorf("at %v%%, %d keys that were served on went back to off", pct, flipped)
		}
		if share := 100 * float64(count) / n; share < pct-0.5 || share > pct+0.5 {
			t.Errorf("at %v%%, %.2f%% of keys are served on", pct, share)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	no := false
	tests := []struct {
		name   string
		change func(*plan.Spec)
		path   string
	}{
		{"valid", func(*plan.Spec) {}, ""},
		{"by hand only", func(p *plan.Spec) { p.Advance.Every = "" }, ""},
		{"no verdict pause", func(p *plan.Spec) { p.PauseOnVerdict = &no }, ""},
		{"three decimals", func(p *plan.Spec) { p.Steps[1].Percent = 0.125 }, ""},
		{"no flag", func(p *plan.Spec) { p.Flag = "" }, "spec.flag"},
		{"flag not APP.KEY.ENV", func(p *plan.Spec) { p.Flag = "new-checkout" }, "spec.flag"},
		{"no variant", func(p *plan.Spec) { p.Variant = "" }, "spec.variant"},
		{"bad variant", func(p *plan.Spec) { p.Variant = "On!" }, "spec.variant"},
		{"no steps", func(p *plan.Spec) { p.Steps = nil }, "spec.steps"},
		{"21 steps", func(p *plan.Spec) {
			p.Steps = nil
			for i := 1; i <= 21; i++ {
				p.Steps = append(p.Steps, plan.Step{Percent: float64(i)})
			}
		}, "spec.steps"},
		{"20 steps", func(p *plan.Spec) {
			p.Steps = nil
			for i := 1; i <= 20; i++ {
				p.Steps = append(p.Steps, plan.Step{Percent: float64(i)})
			}
		}, ""},
		{"empty step", func(p *plan.Spec) { p.Steps[2] = plan.Step{} }, "spec.steps[2]"},
		{"both", func(p *plan.Spec) { p.Steps[2].Percent = 5 }, "spec.steps[2]"},
		{"bad segment", func(p *plan.Spec) { p.Steps[2].Segments = []string{"beta", "Beta Testers"} }, "spec.steps[2].segments[1]"},
		{"percent over 100", func(p *plan.Spec) { p.Steps[5].Percent = 101 }, "spec.steps[5].percent"},
		{"negative percent", func(p *plan.Spec) { p.Steps[1].Percent = -1 }, "spec.steps[1].percent"},
		{"four decimals", func(p *plan.Spec) { p.Steps[1].Percent = 0.0001 }, "spec.steps[1].percent"},
		{"not increasing", func(p *plan.Spec) { p.Steps[4].Percent = 10 }, "spec.steps[4].percent"},
		{"decreasing", func(p *plan.Spec) { p.Steps[3].Percent = 0.5 }, "spec.steps[3].percent"},
		{"every too short", func(p *plan.Spec) { p.Advance.Every = "30s" }, "spec.advance.every"},
		{"every not a duration", func(p *plan.Spec) { p.Advance.Every = "daily" }, "spec.advance.every"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := checkoutPlan()
			tt.change(&p)
			err := plan.Validate(p)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var pe *resource.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate = %v, want a *resource.PathError at %s", err, tt.path)
			}
			if pe.Path != tt.path {
				t.Errorf("path = %s, want %s (%v)", pe.Path, tt.path, err)
			}
		})
	}
}

func TestRegisterDecodesYAML(t *testing.T) {
	t.Parallel()
	s := resource.NewScheme()
	flag.Register(s)
	plan.Register(s)
	doc := `apiVersion: airlock.dev/v1
kind: FlagPlan
metadata: {name: shop.new-checkout.prod}
spec:
  flag: shop.new-checkout.prod
  variant: "on"
  steps:
    - segments: [internal-users]
    - percent: 1
    - percent: 10
    - percent: 5
  advance: {every: 24h}
`
	_, err := s.DecodeObject("plan.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "spec.steps[3].percent") {
		t.Fatalf("DecodeObject = %v, want an error at spec.steps[3].percent", err)
	}
	for _, w := range []string{"flagplan", "flagplans", "plan", "FlagPlan"} {
		if k, ok := s.Lookup(w); !ok || k.Name != plan.Kind || !k.Declarative {
			t.Errorf("Lookup(%q) = %v, %v; want the declarative FlagPlan kind", w, k, ok)
		}
	}
}

// TestDocExample decodes the plan in docs/flag-plans.md, so the example a
// user copies is one apply accepts.
func TestDocExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../docs/flag-plans.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\n")
	if start < 0 {
		t.Fatal("docs/flag-plans.md has no yaml example")
	}
	doc = doc[start+len("```yaml\n"):]
	doc = doc[:strings.Index(doc, "```")]
	s := resource.NewScheme()
	plan.Register(s)
	o, err := s.DecodeObject("docs/flag-plans.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Spec
	if err := o.DecodeSpec(&p); err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 5 || p.Every() != 24*time.Hour || !p.PausesOnVerdict() {
		t.Errorf("the example is %+v; the page describes five steps a day apart that pause on verdicts", p)
	}
	if _, err := plan.Render(p, 4, checkoutFlag()); err != nil {
		t.Errorf("the example's last step does not render onto the flag of docs/flags.md: %v", err)
	}
}
