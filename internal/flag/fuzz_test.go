package flag_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
)

// FuzzDecodeRequest feeds arbitrary bodies to DecodeRequestBytes: it must
// never panic, fail only with PARSE_ERROR or INVALID_CONTEXT, and what it
// accepts must evaluate.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"context":{"targetingKey":"u1","email":"a@b.c","age":31}}`,
		`{"context":{"nested":{"a":[1,2,{"b":null}]}}}`,
		`{"context":null}`, `{}`, ``, `[`, `{"context":"x"}`, `{"context":{"targetingKey":1}}`,
		`{"context":{"s":"\"[[[{{{"}}`,
	} {
		f.Add([]byte(s))
	}
	e := mustCompile(f, base(), nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := flag.DecodeRequestBytes(data)
		if err != nil {
			var ee *flag.EvalError
			if !errors.As(err, &ee) || (ee.Code != flag.ErrParse && ee.Code != flag.ErrInvalidContext) {
				t.Fatalf("error %v is not a PARSE_ERROR or INVALID_CONTEXT", err)
			}
			return
		}
		checkResult(t, base(), e.Evaluate(c))
	})
}

// FuzzEvaluate compiles an arbitrary condition (as JSON) into a rule and
// evaluates it against an arbitrary context: Compile may refuse the
// condition, but nothing may panic and every result must be a variant of
// the flag with a known reason.
func FuzzEvaluate(f *testing.F) {
	seeds := [][2]string{
		{`{"attribute":"email","op":"endsWith","value":"@shop.example"}`, `{"context":{"targetingKey":"u","email":"a@shop.example"}}`},
		{`{"attribute":"v","op":"semverGte","value":"1.2.3-rc.1"}`, `{"context":{"v":"1.10.0"}}`},
		{`{"any":[{"attribute":"n","op":"lt","value":3},{"attribute":"c","op":"in","values":["SE",1,true]}]}`, `{"context":{"n":2.5,"c":"SE"}}`},
		{`{"attribute":"email","op":"matches","value":"^(a|b)+$"}`, `{"context":{"email":"abab"}}`},
		{`{"all":[{"attribute":"targetingKey","op":"startsWith","value":"emp-"},{"attribute":"x","op":"notIn","values":[1]}]}`, `{"context":{"targetingKey":"emp-1","x":2}}`},
		{`{"segment":"staff"}`, `{"context":{"email":"x@shop.example"}}`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	segs := map[string]flag.SegmentSpec{"staff": {When: flag.Condition{Attribute: "email", Op: flag.OpEndsWith, Value: "@shop.example"}}}
	f.Fuzz(func(t *testing.T, when, body []byte) {
		var c flag.Condition
		if json.Unmarshal(when, &c) != nil {
			return
		}
		s := base()
		s.Targeting = append([]flag.Rule{{Name: "fuzz", When: &c, Variant: "on"}}, s.Targeting...)
		e, err := flag.Compile(s, segs)
		if err != nil {
			return
		}
		ctx, err := flag.DecodeRequestBytes(body)
		if err != nil {
			return
		}
		checkResult(t, s, e.Evaluate(ctx))
	})
}

func checkResult(t *testing.T, s flag.Spec, r flag.Result) {
	t.Helper()
	if _, ok := s.Variants[r.Variant]; !ok {
		t.Fatalf("variant %q is not one of the flag's", r.Variant)
	}
	switch r.Reason {
	case flag.ReasonStatic, flag.ReasonTargetingMatch, flag.ReasonSplit, flag.ReasonDisabled, flag.ReasonDefault:
		if r.ErrorCode != "" {
			t.Fatalf("reason %s with error code %s", r.Reason, r.ErrorCode)
		}
	case flag.ReasonError:
		if r.ErrorCode != flag.ErrTargetingKeyMissing {
			t.Fatalf("unexpected error code %q", r.ErrorCode)
		}
	default:
		t.Fatalf("unknown reason %q", r.Reason)
	}
}

// FuzzParseVersion checks that what ParseVersion accepts prints back as
// the same text and compares equal to itself, and that it never panics.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "0.0.0-rc.1+b.2", "01.0.0", "1.0.0-", "18446744073709551616.0.0", "1.0.0-a.01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := flag.ParseVersion(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("ParseVersion(%q).String() = %q", s, v.String())
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%q does not compare equal to itself", s)
		}
		w, err := flag.ParseVersion("1.0.0-" + "a")
		if err == nil && v.Compare(w) != -w.Compare(v) {
			t.Fatalf("Compare is not antisymmetric for %q and %q", s, w)
		}
	})
}
