package flag_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/resource"
)

// base returns a valid flag with a rule and a split, for tests to break.
func base() flag.Spec {
	return flag.Spec{
		App: "shop", Environment: "prod", Key: "new-checkout", Type: flag.Boolean,
		Variants:       map[string]any{"on": true, "off": false},
		DefaultVariant: "off", Enabled: true,
		Targeting: []flag.Rule{
			{Name: "internal", When: &flag.Condition{Attribute: "email", Op: flag.OpEndsWith, Value: "@shop.example"}, Variant: "on"},
			{Name: "new-app", When: &flag.Condition{All: []flag.Condition{
				{Attribute: "appVersion", Op: flag.OpSemverGte, Value: "2.0.0"},
				{Attribute: "country", Op: flag.OpIn, Values: []any{"SE", "NO"}},
			}}, Fractional: []flag.Split{{Variant: "on", Weight: 50}, {Variant: "off", Weight: 50}}},
		},
		Fractional: []flag.Split{{Variant: "on", Weight: 25}, {Variant: "off", Weight: 75}},
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		mutate func(s *flag.Spec)
		path   string // "" means valid
		msg    string
	}{
		{"valid", func(s *flag.Spec) {}, "", ""},
		{"static flag", func(s *flag.Spec) { s.Targeting, s.Fractional = nil, nil }, "", ""},
		{"string flag", func(s *flag.Spec) {
			s.Type = flag.String
			s.Variants = map[string]any{"on": "blue", "off": "green"}
		}, "", ""},
		{"number flag", func(s *flag.Spec) {
			s.Type = flag.Number
			s.Variants = map[string]any{"on": 2.5, "off": 1}
		}, "", ""},
		{"object flag", func(s *flag.Spec) {
			s.Type = flag.Object
			s.Variants = map[string]any{"on": map[string]any{"a": 1.0}, "off": map[string]any{}}
		}, "", ""},
		{"weights with decimals", func(s *flag.Spec) {
			s.Fractional = []flag.Split{{Variant: "on", Weight: 0.125}, {Variant: "off", Weight: 99.875}}
		}, "", ""},
		{"bad app", func(s *flag.Spec) { s.App = "Shop" }, "spec.app", "invalid"},
		{"no environment", func(s *flag.Spec) { s.Environment = "" }, "spec.environment", "required"},
		{"bad key", func(s *flag.Spec) { s.Key = "new.checkout" }, "spec.key", "lower-case"},
		{"bad type", func(s *flag.Spec) { s.Type = "bool" }, "spec.type", `"bool"`},
		{"no variants", func(s *flag.Spec) { s.Variants = nil }, "spec.variants", "at least one"},
		{"variant of wrong type", func(s *flag.Spec) { s.Variants["on"] = "true" }, "spec.variants.on", "not a boolean"},
		{"number variant not a number", func(s *flag.Spec) {
			s.Type = flag.Number
			s.Variants = map[string]any{"on": 1.0, "off": "0"}
		}, "spec.variants.off", "not a number"},
		{"object variant a list", func(s *flag.Spec) {
			s.Type = flag.Object
			s.Variants = map[string]any{"on": []any{}, "off": map[string]any{}}
		}, "spec.variants.on", "not an object"},
		{"huge variant", func(s *flag.Spec) {
			s.Type = flag.String
			s.Variants = map[string]any{"on": strings.Repeat("x", flag.MaxVariantBytes), "off": ""}
		}, "spec.variants.on", "limit"},
		{"bad variant name", func(s *flag.Spec) { s.Variants["On Now"] = true }, "spec.variants.On Now", "variant name"},
		{"no default", func(s *flag.Spec) { s.DefaultVariant = "" }, "spec.defaultVariant", "required"},
		{"unknown default", func(s *flag.Spec) { s.DefaultVariant = "maybe" }, "spec.defaultVariant", `unknown variant "maybe"`},
		{"bad lifecycle", func(s *flag.Spec) { s.Lifecycle = "forever" }, "spec.lifecycle", "forever"},
		{"bad lifetime", func(s *flag.Spec) { s.Lifetime = "40d" }, "spec.lifetime", "Go duration"},
		{"unknown rule variant", func(s *flag.Spec) { s.Targeting[0].Variant = "maybe" }, "spec.targeting[0].variant", `unknown variant "maybe"`},
		{"rule with variant and split", func(s *flag.Spec) { s.Targeting[1].Variant = "on" }, "spec.targeting[1]", "not both"},
		{"rule with neither", func(s *flag.Spec) { s.Targeting[0].Variant = "" }, "spec.targeting[0]", "needs a variant"},
		{"rule without name", func(s *flag.Spec) { s.Targeting[1].Name = "" }, "spec.targeting[1].name", "needs a name"},
		{"duplicate rule names", func(s *flag.Spec) { s.Targeting[1].Name = "internal" }, "spec.targeting[1].name", "already used by spec.targeting[0]"},
		{"too many rules", func(s *flag.Spec) {
			for i := 0; i <= flag.MaxRules; i++ {
				s.Targeting = append(s.Targeting, flag.Rule{Name: "r" + strings.Repeat("x", i%50) + string(rune('a'+i%26)), Variant: "on"})
			}
		}, "spec.targeting", "limit"},
		{"weights short of 100", func(s *flag.Spec) { s.Fractional[1].Weight = 74 }, "spec.fractional", "sum to 99"},
		{"weights over 100", func(s *flag.Spec) { s.Targeting[1].Fractional[0].Weight = 60 }, "spec.targeting[1].fractional", "sum to 110"},
		{"negative weight", func(s *flag.Spec) {
			s.Fractional = []flag.Split{{Variant: "on", Weight: -10}, {Variant: "off", Weight: 110}}
		}, "spec.fractional[0].weight", "from 0 to 100"},
		{"weight too fine", func(s *flag.Spec) {
			s.Fractional = []flag.Split{{Variant: "on", Weight: 0.0001}, {Variant: "off", Weight: 99.9999}}
		}, "spec.fractional[0].weight", "three decimals"},
		{"empty split", func(s *flag.Spec) { s.Fractional = []flag.Split{} }, "spec.fractional", "at least one"},
		{"split unknown variant", func(s *flag.Spec) { s.Fractional[0].Variant = "maybe" }, "spec.fractional[0].variant", `unknown variant "maybe"`},
		{"split variant twice", func(s *flag.Spec) { s.Fractional[1].Variant = "on" }, "spec.fractional[1].variant", "already has a weight"},
		{"malformed semver", func(s *flag.Spec) {
			s.Targeting[1].When.All[0].Value = "2.0"
		}, "spec.targeting[1].when.all[0].value", "not a semantic version"},
		{"semver with v", func(s *flag.Spec) {
			s.Targeting[1].When.All[0].Value = "v2.0.0"
		}, "spec.targeting[1].when.all[0].value", "not a semantic version"},
		{"semver on a number", func(s *flag.Spec) {
			s.Targeting[1].When.All[0].Value = 2.0
		}, "spec.targeting[1].when.all[0].value", "version string"},
		{"bad regex", func(s *flag.Spec) {
			s.Targeting[0].When = &flag.Condition{Attribute: "email", Op: flag.OpMatches, Value: "(a"}
		}, "spec.targeting[0].when.value", "not an RE2"},
		{"backreference is not RE2", func(s *flag.Spec) {
			s.Targeting[0].When = &flag.Condition{Attribute: "email", Op: flag.OpMatches, Value: `(a)\1`}
		}, "spec.targeting[0].when.value", "not an RE2"},
		{"long regex", func(s *flag.Spec) {
			s.Targeting[0].When = &flag.Condition{Attribute: "email", Op: flag.OpMatches, Value: long}
		}, "spec.targeting[0].when.value", "limit"},
		{"unknown operator", func(s *flag.Spec) { s.Targeting[0].When.Op = "contains" }, "spec.targeting[0].when.op", `unknown operator "contains"`},
		{"no attribute", func(s *flag.Spec) { s.Targeting[0].When.Attribute = "" }, "spec.targeting[0].when.attribute", "required"},
		{"no value", func(s *flag.Spec) { s.Targeting[0].When.Value = nil }, "spec.targeting[0].when.value", "needs a value"},
		{"in with value", func(s *flag.Spec) { s.Targeting[1].When.All[1].Value = "SE" }, "spec.targeting[1].when.all[1].value", "takes values"},
		{"in with no values", func(s *flag.Spec) { s.Targeting[1].When.All[1].Values = []any{} }, "spec.targeting[1].when.all[1].values", "non-empty"},
		{"in with an object", func(s *flag.Spec) {
			s.Targeting[1].When.All[1].Values = []any{"SE", map[string]any{}}
		}, "spec.targeting[1].when.all[1].values[1]", "string, number or boolean"},
		{"numeric op on a string", func(s *flag.Spec) {
			s.Targeting[0].When = &flag.Condition{Attribute: "age", Op: flag.OpGte, Value: "18"}
		}, "spec.targeting[0].when.value", "number value"},
		{"startsWith on a number", func(s *flag.Spec) {
			s.Targeting[0].When = &flag.Condition{Attribute: "id", Op: flag.OpStartsWith, Value: 1.0}
		}, "spec.targeting[0].when.value", "string value"},
		{"two forms", func(s *flag.Spec) { s.Targeting[0].When.Segment = "beta" }, "spec.targeting[0].when", "exactly one"},
		{"empty all", func(s *flag.Spec) { s.Targeting[1].When.All = []flag.Condition{} }, "spec.targeting[1].when.all", "at least one"},
		{"bad segment name", func(s *flag.Spec) { s.Targeting[0].When = &flag.Condition{Segment: "Beta Users"} }, "spec.targeting[0].when.segment", "invalid"},
		{"too deep", func(s *flag.Spec) {
			c := flag.Condition{Attribute: "a", Op: flag.OpEquals, Value: "b"}
			for i := 0; i < flag.MaxConditionDepth+1; i++ {
				c = flag.Condition{Any: []flag.Condition{c}}
			}
			s.Targeting[0].When = &c
		}, "spec.targeting[0].when.any[0].any[0].any[0].any[0].any[0].any[0].any[0].any[0].any[0]", "nested"},
		{"too many values", func(s *flag.Spec) {
			s.Targeting[1].When.All[1].Values = make([]any, flag.MaxValues+1)
		}, "spec.targeting[1].when.all[1].values", "limit"},
		{"too many conditions", func(s *flag.Spec) {
			all := make([]flag.Condition, flag.MaxConditions)
			for i := range all {
				all[i] = flag.Condition{Attribute: "a", Op: flag.OpEquals, Value: "b"}
			}
			s.Targeting[0].When = &flag.Condition{All: all}
		}, "spec.targeting[0].when.all[499]", "more than 500"},
		{"long string value", func(s *flag.Spec) { s.Targeting[0].When.Value = strings.Repeat("x", flag.MaxStringValue+1) }, "spec.targeting[0].when.value", "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := base()
			tt.mutate(&s)
			err := flag.Validate(s)
			checkPathError(t, err, tt.path, tt.msg)
		})
	}
}

func checkPathError(t *testing.T, err error, path, msg string) {
	t.Helper()
	if path == "" {
		if err != nil {
			t.Fatalf("want no error, got %v", err)
		}
		return
	}
	var pe *resource.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("want a *resource.PathError at %s, got %v", path, err)
	}
	if pe.Path != path || !strings.Contains(pe.Msg, msg) {
		t.Fatalf("got %s: %s\nwant %s: ...%s...", pe.Path, pe.Msg, path, msg)
	}
}

func TestValidateSegment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		seg  flag.SegmentSpec
		path string
		msg  string
	}{
		{"valid", flag.SegmentSpec{When: flag.Condition{Attribute: "email", Op: flag.OpEndsWith, Value: "@shop.example"}}, "", ""},
		{"bad app", flag.SegmentSpec{App: "Shop", When: flag.Condition{Attribute: "a", Op: flag.OpEquals, Value: "b"}}, "spec.app", "invalid"},
		{"empty", flag.SegmentSpec{}, "spec.when", "exactly one"},
		{"segment in segment", flag.SegmentSpec{When: flag.Condition{Segment: "other"}}, "spec.when.segment", "another segment"},
		{"bad op", flag.SegmentSpec{When: flag.Condition{Any: []flag.Condition{{Attribute: "a", Op: "==", Value: "b"}}}}, "spec.when.any[0].op", "unknown operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkPathError(t, flag.ValidateSegment(tt.seg), tt.path, tt.msg)
		})
	}
}

func TestCompileSegments(t *testing.T) {
	t.Parallel()
	internal := flag.SegmentSpec{When: flag.Condition{Attribute: "email", Op: flag.OpEndsWith, Value: "@shop.example"}}
	tests := []struct {
		name     string
		segments map[string]flag.SegmentSpec
		path     string
		msg      string
	}{
		{"found", map[string]flag.SegmentSpec{"internal-users": internal}, "", ""},
		{"missing", nil, "spec.targeting[0].when.segment", `unknown segment "internal-users"`},
		{"other app", map[string]flag.SegmentSpec{"internal-users": {App: "bank", When: internal.When}}, "spec.targeting[0].when.segment", "belongs to application bank"},
		{"same app", map[string]flag.SegmentSpec{"internal-users": {App: "shop", When: internal.When}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := base()
			s.Targeting[0].When = &flag.Condition{Segment: "internal-users"}
			if err := flag.Validate(s); err != nil {
				t.Fatalf("Validate checks segment names only, got %v", err)
			}
			_, err := flag.Compile(s, tt.segments)
			checkPathError(t, err, tt.path, tt.msg)
		})
	}
}

func TestDecodeDocuments(t *testing.T) {
	t.Parallel()
	sch := resource.NewScheme()
	flag.Register(sch)
	data, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := sch.Decode("shop.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("got %d objects, want 3", len(objs))
	}
	var seg flag.SegmentSpec
	if err := objs[0].DecodeSpec(&seg); err != nil {
		t.Fatal(err)
	}
	segs := map[string]flag.SegmentSpec{objs[0].Metadata.Name: seg}
	evals := map[string]*flag.Evaluator{}
	for _, o := range objs[1:] {
		var s flag.Spec
		if err := o.DecodeSpec(&s); err != nil {
			t.Fatal(err)
		}
		e, err := flag.Compile(s, segs)
		if err != nil {
			t.Fatalf("%s: %v", o.Ref(), err)
		}
		evals[s.Environment] = e
	}
	tests := []struct {
		env     string
		ctx     flag.Context
		variant string
		reason  string
	}{
		{"prod", flag.Context{TargetingKey: "u1", Attributes: map[string]any{"email": "ann@shop.example"}}, "on", flag.ReasonTargetingMatch},
		{"prod", flag.Context{TargetingKey: "u1"}, variantOf(flag.Bucket("new-checkout", "u1")), flag.ReasonSplit},
		{"prod", flag.Context{}, "off", flag.ReasonError},
		{"staging", flag.Context{}, "on", flag.ReasonStatic},
		{"staging", flag.Context{TargetingKey: "u1", Attributes: map[string]any{"email": "ann@shop.example"}}, "on", flag.ReasonStatic},
	}
	for _, tt := range tests {
		r := evals[tt.env].Evaluate(tt.ctx)
		if r.Variant != tt.variant || r.Reason != tt.reason {
			t.Errorf("%s %+v: got %s (%s), want %s (%s)", tt.env, tt.ctx, r.Variant, r.Reason, tt.variant, tt.reason)
		}
	}
}

func variantOf(b uint64) string {
	if b < 25*flag.Units/100 {
		return "on"
	}
	return "off"
}

func TestDecodeDocumentErrors(t *testing.T) {
	t.Parallel()
	sch := resource.NewScheme()
	flag.Register(sch)
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"name not APP.KEY.ENV", strings.Replace(flagDoc, "shop.new-checkout.prod", "new-checkout", 1), `metadata.name: flag name "new-checkout" must be APP.KEY.ENV, here "shop.new-checkout.prod"`},
		{"weights", strings.Replace(flagDoc, "weight: 75", "weight: 70", 1), "spec.fractional: weights sum to 95"},
		{"semver", strings.Replace(flagDoc, `value: "2.0.0"`, `value: "2.0"`, 1), "spec.targeting[0].when.value: version \"2.0\" is not a semantic version"},
		{"unknown variant", strings.Replace(flagDoc, `- variant: "on"`, `- variant: "yes"`, 1), `spec.fractional[0].variant: unknown variant "yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := sch.Decode("f.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant ...%s...", err, tt.want)
			}
		})
	}
	if _, err := sch.Decode("f.yaml", []byte(flagDoc)); err != nil {
		t.Fatalf("the unbroken document: %v", err)
	}
}

const flagDoc = `apiVersion: airlock.dev/v1
kind: Flag
metadata:
  name: shop.new-checkout.prod
spec:
  app: shop
  environment: prod
  key: new-checkout
  type: boolean
  variants: {on: true, off: false}
  defaultVariant: "off"
  enabled: true
  targeting:
    - name: new-app
      when: {attribute: appVersion, op: semverGte, value: "2.0.0"}
      variant: "on"
  fractional:
    - variant: "on"
      weight: 25
    - variant: "off"
      weight: 75
`

// TestDocExample decodes and evaluates the example in docs/flags.md, so the
// documentation cannot drift from what apply accepts.
func TestDocExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/flags.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, ok := strings.Cut(string(doc), "## Example")
	if !ok {
		t.Fatal("no Example section in docs/flags.md")
	}
	_, rest, ok := strings.Cut(example, "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in docs/flags.md's Example section")
	}
	block, _, _ := strings.Cut(rest, "```")
	sch := resource.NewScheme()
	flag.Register(sch)
	objs, err := sch.Decode("docs/flags.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	segs := map[string]flag.SegmentSpec{}
	flags := map[string]*flag.Evaluator{}
	for _, o := range objs {
		switch o.Kind {
		case flag.SegmentKindName:
			var g flag.SegmentSpec
			if err := o.DecodeSpec(&g); err != nil {
				t.Fatal(err)
			}
			segs[o.Metadata.Name] = g
		case flag.KindName:
			var s flag.Spec
			if err := o.DecodeSpec(&s); err != nil {
				t.Fatal(err)
			}
			e, err := flag.Compile(s, segs)
			if err != nil {
				t.Fatal(err)
			}
			flags[o.Metadata.Name] = e
		}
	}
	prod, staging := flags["shop.new-checkout.prod"], flags["shop.new-checkout.staging"]
	if prod == nil || staging == nil {
		t.Fatalf("got flags %v", flags)
	}
	on := 0
	for i := 0; i < 100000; i++ {
		c := flag.Context{TargetingKey: "user-" + itoa(i)}
		if prod.Evaluate(c).Value == true {
			on++
		}
		if r := staging.Evaluate(c); r.Value != true || r.Reason != flag.ReasonStatic {
			t.Fatalf("staging: %+v", r)
		}
	}
	if on < 24000 || on > 26000 {
		t.Errorf("prod: %d of 100000 on, want about 25%%", on)
	}
	if r := prod.Evaluate(flag.Context{TargetingKey: "x", Attributes: map[string]any{"email": "a@shop.example"}}); r.Value != true || r.Reason != flag.ReasonTargetingMatch {
		t.Errorf("prod, staff: %+v", r)
	}
}

func TestUniformServing(t *testing.T) {
	cond := &flag.Condition{Attribute: "email", Op: "endsWith", Value: "@example.com"}
	for _, tc := range []struct {
		name string
		spec flag.Spec
		want string
		ok   bool
	}{
		{"disabled serves the default", flag.Spec{DefaultVariant: "off", Fractional: []flag.Split{{"on", 50}, {"off", 50}}}, "off", true},
		{"enabled without rules", flag.Spec{Enabled: true, DefaultVariant: "on"}, "on", true},
		{"a split", flag.Spec{Enabled: true, DefaultVariant: "off", Fractional: []flag.Split{{"on", 25}, {"off", 75}}}, "", false},
		{"a 100% split", flag.Spec{Enabled: true, DefaultVariant: "off", Fractional: []flag.Split{{"on", 100}, {"off", 0}}}, "on", true},
		{"a conditional rule", flag.Spec{Enabled: true, DefaultVariant: "off", Targeting: []flag.Rule{{Name: "staff", When: cond, Variant: "on"}}}, "", false},
		{"an unconditional rule hides the rest", flag.Spec{Enabled: true, DefaultVariant: "off", Targeting: []flag.Rule{{Name: "all", Variant: "on"}}}, "on", true},
		{"a rule serving the default", flag.Spec{Enabled: true, DefaultVariant: "off", Targeting: []flag.Rule{{Name: "staff", When: cond, Variant: "off"}}}, "off", true},
	} {
		got, ok := flag.Uniform(tc.spec)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Uniform = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
