package flag_test

import (
	"encoding/json"
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
)

func mustCompile(t testing.TB, s flag.Spec, segs map[string]flag.SegmentSpec) *flag.Evaluator {
	t.Helper()
	e, err := flag.Compile(s, segs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func attrs(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestOperators evaluates one rule "when → on" against contexts: a flag
// that is off by default says whether the condition held.
func TestOperators(t *testing.T) {
	t.Parallel()
	c := func(attr, op string, v any) flag.Condition { return flag.Condition{Attribute: attr, Op: op, Value: v} }
	in := func(attr, op string, vs ...any) flag.Condition {
		return flag.Condition{Attribute: attr, Op: op, Values: vs}
	}
	tests := []struct {
		name string
		when flag.Condition
		ctx  flag.Context
		want bool
	}{
		{"equals string", c("plan", flag.OpEquals, "pro"), flag.Context{Attributes: attrs("plan", "pro")}, true},
		{"equals other string", c("plan", flag.OpEquals, "pro"), flag.Context{Attributes: attrs("plan", "free")}, false},
		{"equals missing", c("plan", flag.OpEquals, "pro"), flag.Context{}, false},
		{"equals number", c("tier", flag.OpEquals, 2.0), flag.Context{Attributes: attrs("tier", 2)}, true},
		{"equals json.Number", c("tier", flag.OpEquals, 2.0), flag.Context{Attributes: attrs("tier", json.Number("2"))}, true},
		{"equals number vs string", c("tier", flag.OpEquals, 2.0), flag.Context{Attributes: attrs("tier", "2")}, false},
		{"equals bool", c("beta", flag.OpEquals, true), flag.Context{Attributes: attrs("beta", true)}, true},
		{"equals bool false", c("beta", flag.OpEquals, true), flag.Context{Attributes: attrs("beta", false)}, false},
		{"equals targetingKey", c("targetingKey", flag.OpEquals, "u1"), flag.Context{TargetingKey: "u1"}, true},
		{"equals empty targetingKey", c("targetingKey", flag.OpEquals, ""), flag.Context{}, false},
		{"notEquals", c("plan", flag.OpNotEquals, "pro"), flag.Context{Attributes: attrs("plan", "free")}, true},
		{"notEquals same", c("plan", flag.OpNotEquals, "pro"), flag.Context{Attributes: attrs("plan", "pro")}, false},
		{"notEquals missing", c("plan", flag.OpNotEquals, "pro"), flag.Context{}, false},
		{"notEquals other type", c("plan", flag.OpNotEquals, "pro"), flag.Context{Attributes: attrs("plan", 1)}, false},
		{"in", in("country", flag.OpIn, "SE", "NO"), flag.Context{Attributes: attrs("country", "NO")}, true},
		{"in absent", in("country", flag.OpIn, "SE", "NO"), flag.Context{Attributes: attrs("country", "DK")}, false},
		{"in numbers", in("store", flag.OpIn, 1, 2, 3), flag.Context{Attributes: attrs("store", 3.0)}, true},
		{"in mixed", in("store", flag.OpIn, "a", 3), flag.Context{Attributes: attrs("store", int64(3))}, true},
		{"notIn", in("country", flag.OpNotIn, "SE", "NO"), flag.Context{Attributes: attrs("country", "DK")}, true},
		{"notIn present", in("country", flag.OpNotIn, "SE", "NO"), flag.Context{Attributes: attrs("country", "SE")}, false},
		{"notIn missing", in("country", flag.OpNotIn, "SE", "NO"), flag.Context{}, false},
		{"notIn other type", in("country", flag.OpNotIn, "SE", "NO"), flag.Context{Attributes: attrs("country", 7)}, false},
		{"startsWith", c("email", flag.OpStartsWith, "ann@"), flag.Context{Attributes: attrs("email", "ann@x.se")}, true},
		{"startsWith no", c("email", flag.OpStartsWith, "bob@"), flag.Context{Attributes: attrs("email", "ann@x.se")}, false},
		{"endsWith", c("email", flag.OpEndsWith, "@shop.example"), flag.Context{Attributes: attrs("email", "a@shop.example")}, true},
		{"endsWith no", c("email", flag.OpEndsWith, "@shop.example"), flag.Context{Attributes: attrs("email", "a@shop.example.evil")}, false},
		{"endsWith on number", c("email", flag.OpEndsWith, "1"), flag.Context{Attributes: attrs("email", 1)}, false},
		{"matches", c("email", flag.OpMatches, `^[a-z]+@shop\.example$`), flag.Context{Attributes: attrs("email", "ann@shop.example")}, true},
		{"matches no", c("email", flag.OpMatches, `^[a-z]+@shop\.example$`), flag.Context{Attributes: attrs("email", "Ann@shop.example")}, false},
		{"matches targetingKey", c("targetingKey", flag.OpMatches, `^emp-`), flag.Context{TargetingKey: "emp-7"}, true},
		{"lt", c("age", flag.OpLt, 18), flag.Context{Attributes: attrs("age", 17)}, true},
		{"lt equal", c("age", flag.OpLt, 18), flag.Context{Attributes: attrs("age", 18)}, false},
		{"lte equal", c("age", flag.OpLte, 18), flag.Context{Attributes: attrs("age", 18.0)}, true},
		{"gt", c("age", flag.OpGt, 18), flag.Context{Attributes: attrs("age", 18.5)}, true},
		{"gt equal", c("age", flag.OpGt, 18), flag.Context{Attributes: attrs("age", uint8(18))}, false},
		{"gte", c("age", flag.OpGte, 18), flag.Context{Attributes: attrs("age", float32(18))}, true},
		{"gte string", c("age", flag.OpGte, 18), flag.Context{Attributes: attrs("age", "19")}, false},
		{"gte bool", c("age", flag.OpGte, 0), flag.Context{Attributes: attrs("age", true)}, false},
		{"semverLt", c("v", flag.OpSemverLt, "2.0.0"), flag.Context{Attributes: attrs("v", "2.0.0-rc.1")}, true},
		{"semverLt equal", c("v", flag.OpSemverLt, "2.0.0"), flag.Context{Attributes: attrs("v", "2.0.0")}, false},
		{"semverLte", c("v", flag.OpSemverLte, "2.0.0"), flag.Context{Attributes: attrs("v", "2.0.0+b7")}, true},
		{"semverGt numeric", c("v", flag.OpSemverGt, "1.9.0"), flag.Context{Attributes: attrs("v", "1.10.0")}, true},
		{"semverGt lower", c("v", flag.OpSemverGt, "1.9.0"), flag.Context{Attributes: attrs("v", "1.8.99")}, false},
		{"semverGte", c("v", flag.OpSemverGte, "1.9.0"), flag.Context{Attributes: attrs("v", "1.9.0")}, true},
		{"semverEq", c("v", flag.OpSemverEq, "1.9.0"), flag.Context{Attributes: attrs("v", "1.9.0")}, true},
		{"semverEq pre", c("v", flag.OpSemverEq, "1.9.0"), flag.Context{Attributes: attrs("v", "1.9.0-a")}, false},
		{"semver malformed attribute", c("v", flag.OpSemverGte, "1.0.0"), flag.Context{Attributes: attrs("v", "v2.0.0")}, false},
		{"semver number attribute", c("v", flag.OpSemverGte, "1.0.0"), flag.Context{Attributes: attrs("v", 2)}, false},
		{"nested object attribute", c("v", flag.OpEquals, "x"), flag.Context{Attributes: attrs("v", map[string]any{"v": "x"})}, false},
		{"all", flag.Condition{All: []flag.Condition{c("a", flag.OpEquals, "1"), c("b", flag.OpEquals, "2")}},
			flag.Context{Attributes: attrs("a", "1", "b", "2")}, true},
		{"all one fails", flag.Condition{All: []flag.Condition{c("a", flag.OpEquals, "1"), c("b", flag.OpEquals, "2")}},
			flag.Context{Attributes: attrs("a", "1", "b", "3")}, false},
		{"any", flag.Condition{Any: []flag.Condition{c("a", flag.OpEquals, "1"), c("b", flag.OpEquals, "2")}},
			flag.Context{Attributes: attrs("b", "2")}, true},
		{"any none", flag.Condition{Any: []flag.Condition{c("a", flag.OpEquals, "1"), c("b", flag.OpEquals, "2")}},
			flag.Context{Attributes: attrs("a", "2", "b", "1")}, false},
		{"segment", flag.Condition{Segment: "staff"}, flag.Context{Attributes: attrs("email", "a@shop.example")}, true},
		{"segment no", flag.Condition{Segment: "staff"}, flag.Context{Attributes: attrs("email", "a@else.example")}, false},
		{"segment in any", flag.Condition{Any: []flag.Condition{c("beta", flag.OpEquals, true), {Segment: "staff"}}}, flag.Context{Attributes: attrs("beta", true)}, true},
	}
	segs := map[string]flag.SegmentSpec{"staff": {When: c("email", flag.OpEndsWith, "@shop.example")}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			when := tt.when
			e := mustCompile(t, flag.Spec{
				App: "shop", Environment: "prod", Key: "k", Type: flag.Boolean, Enabled: true,
				Variants: map[string]any{"on": true, "off": false}, DefaultVariant: "off",
				Targeting: []flag.Rule{{Name: "r", When: &when, Variant: "on"}},
			}, segs)
			r := e.Evaluate(tt.ctx)
			wantV, wantR := "off", flag.ReasonDefault
			if tt.want {
				wantV, wantR = "on", flag.ReasonTargetingMatch
			}
			if r.Variant != wantV || r.Reason != wantR || r.Value != (wantV == "on") {
				t.Fatalf("got %+v, want %s (%s)", r, wantV, wantR)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	disabled := base()
	disabled.Enabled = false
	static := base()
	static.Targeting, static.Fractional = nil, nil
	noSplit := base()
	noSplit.Fractional = nil
	object := flag.Spec{App: "shop", Environment: "prod", Key: "theme", Type: flag.Object, Enabled: true,
		Variants: map[string]any{"dark": map[string]any{"bg": "black"}, "light": map[string]any{"bg": "white"}}, DefaultVariant: "light",
		Fractional: []flag.Split{{Variant: "dark", Weight: 100}, {Variant: "light", Weight: 0}}}
	// A key in the first 25% of buckets and one past it, found by Bucket.
	lo, hi := keyInBuckets(t, "new-checkout", 0, 25*flag.Units/100), keyInBuckets(t, "new-checkout", 25*flag.Units/100, flag.Units)
	loHalf := keyInBuckets(t, "new-checkout", 0, 25*flag.Units/100)
	sweden := attrs("appVersion", "2.1.0", "country", "SE")
	tests := []struct {
		name    string
		spec    flag.Spec
		ctx     flag.Context
		variant string
		reason  string
		code    string
	}{
		{"disabled ignores everything", disabled, flag.Context{TargetingKey: lo, Attributes: attrs("email", "a@shop.example")}, "off", flag.ReasonDisabled, ""},
		{"static", static, flag.Context{}, "off", flag.ReasonStatic, ""},
		{"first rule wins", base(), flag.Context{TargetingKey: hi, Attributes: attrs("email", "a@shop.example", "appVersion", "2.1.0", "country", "SE")}, "on", flag.ReasonTargetingMatch, ""},
		{"rule split", base(), flag.Context{TargetingKey: loHalf, Attributes: sweden}, "on", flag.ReasonSplit, ""},
		{"rule split no key", base(), flag.Context{Attributes: sweden}, "off", flag.ReasonError, flag.ErrTargetingKeyMissing},
		{"default split low bucket", base(), flag.Context{TargetingKey: lo}, "on", flag.ReasonSplit, ""},
		{"default split high bucket", base(), flag.Context{TargetingKey: hi}, "off", flag.ReasonSplit, ""},
		{"default split no key", base(), flag.Context{}, "off", flag.ReasonError, flag.ErrTargetingKeyMissing},
		{"no match no split", noSplit, flag.Context{TargetingKey: lo}, "off", flag.ReasonDefault, ""},
		{"object 100%", object, flag.Context{TargetingKey: "x"}, "dark", flag.ReasonSplit, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := mustCompile(t, tt.spec, nil)
			r := e.Evaluate(tt.ctx)
			if r.Variant != tt.variant || r.Reason != tt.reason || r.ErrorCode != tt.code {
				t.Fatalf("got %+v, want %s %s %s", r, tt.variant, tt.reason, tt.code)
			}
			if r.Key != tt.spec.Key {
				t.Errorf("key %q, want %q", r.Key, tt.spec.Key)
			}
			if b, _ := json.Marshal(r.Value); string(b) != mustJSON(tt.spec.Variants[tt.variant]) {
				t.Errorf("value %s, want %s", b, mustJSON(tt.spec.Variants[tt.variant]))
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// keyInBuckets finds a targeting key whose bucket for flag key is in [lo, hi).
func keyInBuckets(t *testing.T, key string, lo, hi uint64) string {
	t.Helper()
	for i := 0; i < 100000; i++ {
		k := "user-" + itoa(i)
		if b := flag.Bucket(key, k); b >= lo && b < hi {
			return k
		}
	}
	t.Fatalf("no key in [%d, %d)", lo, hi)
	return ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestSet(t *testing.T) {
	t.Parallel()
	s := flag.Set{"new-checkout": mustCompile(t, base(), nil)}
	tests := []struct {
		key, reason, code string
	}{
		{"new-checkout", flag.ReasonSplit, ""},
		{"old-checkout", flag.ReasonError, flag.ErrFlagNotFound},
	}
	for _, tt := range tests {
		r := s.Evaluate(tt.key, flag.Context{TargetingKey: "u"})
		if r.Reason != tt.reason || r.ErrorCode != tt.code || r.Key != tt.key {
			t.Errorf("%s: got %+v, want %s %s", tt.key, r, tt.reason, tt.code)
		}
	}
}

func TestUniform(t *testing.T) {
	t.Parallel()
	full := base()
	full.Targeting = nil
	full.Fractional = []flag.Split{{Variant: "on", Weight: 100}, {Variant: "off", Weight: 0}}
	sameRules := base()
	sameRules.Targeting = sameRules.Targeting[:1]
	sameRules.Fractional = []flag.Split{{Variant: "off", Weight: 0}, {Variant: "on", Weight: 100}}
	disabled := base()
	disabled.Enabled = false
	static := base()
	static.Targeting, static.Fractional = nil, nil
	static.DefaultVariant = "on"
	ruleOnly := base()
	ruleOnly.Targeting, ruleOnly.Fractional = ruleOnly.Targeting[:1], nil
	tests := []struct {
		name    string
		spec    flag.Spec
		variant string
		ok      bool
	}{
		{"split in progress", base(), "", false},
		{"disabled", disabled, "off", true},
		{"static", static, "on", true},
		{"split at 100%", full, "on", true},
		{"rule and split agree", sameRules, "on", true},
		{"rule differs from default", ruleOnly, "", false},
	}
	for _, tt := range tests {
		v, ok := mustCompile(t, tt.spec, nil).Uniform()
		if v != tt.variant || ok != tt.ok {
			t.Errorf("%s: Uniform() = %q, %v; want %q, %v", tt.name, v, ok, tt.variant, tt.ok)
		}
	}
}

func TestLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lifecycle, lifetime string
		want                string
	}{
		{"", "", "960h0m0s"},
		{flag.Release, "", "960h0m0s"},
		{flag.Operational, "", "168h0m0s"},
		{flag.Operational, "72h", "72h0m0s"},
	}
	for _, tt := range tests {
		s := base()
		s.Lifecycle, s.Lifetime = tt.lifecycle, tt.lifetime
		if err := flag.Validate(s); err != nil {
			t.Fatal(err)
		}
		if got := s.LifetimeOf().String(); got != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.lifecycle, tt.lifetime, got, tt.want)
		}
	}
}
