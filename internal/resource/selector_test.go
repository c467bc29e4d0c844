package resource

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Selector
		str     string // String() of the result
		wantErr string
	}{
		{in: "", want: nil, str: ""},
		{in: " , ", want: nil, str: ""},
		{in: "app=shop", want: Selector{{"app", Equals, []string{"shop"}}}, str: "app=shop"},
		{in: "app==shop", want: Selector{{"app", Equals, []string{"shop"}}}, str: "app=shop"},
		{in: " app = shop ", want: Selector{{"app", Equals, []string{"shop"}}}, str: "app=shop"},
		{in: "app=", want: Selector{{"app", Equals, []string{""}}}, str: "app="},
		{in: "tier!=db", want: Selector{{"tier", NotEquals, []string{"db"}}}, str: "tier!=db"},
		{in: "canary", want: Selector{{"canary", Exists, nil}}, str: "canary"},
		{in: "!canary", want: Selector{{"canary", DoesNotExist, nil}}, str: "!canary"},
		{in: "! canary", want: Selector{{"canary", DoesNotExist, nil}}, str: "!canary"},
		{in: "env in (prod, dev)", want: Selector{{"env", In, []string{"dev", "prod"}}}, str: "env in (dev,prod)"},
		{in: "env in(prod)", want: Selector{{"env", In, []string{"prod"}}}, str: "env in (prod)"},
		{in: "env notin (a,b,a)", want: Selector{{"env", NotIn, []string{"a", "b"}}}, str: "env notin (a,b)"},
		{in: "domain in (a)", want: Selector{{"domain", In, []string{"a"}}}, str: "domain in (a)"},
		{in: "region notin (eu)", want: Selector{{"region", NotIn, []string{"eu"}}}, str: "region notin (eu)"},
		{in: "example.com/team=payments", want: Selector{{"example.com/team", Equals, []string{"payments"}}}, str: "example.com/team=payments"},
		{
			in:   "app=shop,env in (prod,staging),!canary,tier!=db,owner",
			want: Selector{{"app", Equals, []string{"shop"}}, {"env", In, []string{"prod", "staging"}}, {"canary", DoesNotExist, nil}, {"tier", NotEquals, []string{"db"}}, {"owner", Exists, nil}},
			str:  "app=shop,env in (prod,staging),!canary,tier!=db,owner",
		},
		{in: "env in prod", wantErr: "write the values in parentheses"},
		{in: "env in ()", wantErr: "give at least one value"},
		{in: "env in (a", wantErr: "write the values in parentheses"},
		{in: "bad key=x", wantErr: `label key "bad key" is invalid`},
		{in: "app=sh op", wantErr: `invalid value "sh op"`},
		{in: "=x", wantErr: `label key "" is invalid`},
		{in: "!", wantErr: `label key "" is invalid`},
		{in: "app=a,b", wantErr: `label key "b"`}, // b alone is fine, so this parses; see below
		{in: "env in (a,b c)", wantErr: `invalid value "b c"`},
		{in: "a=b),c=d", wantErr: `invalid value "b),c=d"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSelector(tt.in)
			if tt.in == "app=a,b" { // "b" is an Exists clause
				if err != nil || got.String() != "app=a,b" {
					t.Fatalf("got %v, %v", got, err)
				}
				return
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "label selector") {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v; want %#v", got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q; want %q", got.String(), tt.str)
			}
			again, err := ParseSelector(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("String() does not parse back: %v, %v", again, err)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"app": "shop", "env": "prod", "empty": ""}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"app=shop", true},
		{"app=cart", false},
		{"missing=x", false},
		{"empty=", true},
		{"missing=", false},
		{"app!=cart", true},
		{"app!=shop", false},
		{"missing!=x", true}, // as in Kubernetes: absent is not equal
		{"app", true},
		{"missing", false},
		{"!missing", true},
		{"!app", false},
		{"env in (prod,staging)", true},
		{"env in (dev)", false},
		{"missing in (x)", false},
		{"env notin (dev)", true},
		{"env notin (prod)", false},
		{"missing notin (x)", true},
		{"app=shop,env=prod", true},
		{"app=shop,env=dev", false},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("%q.Matches = %v; want %v", tt.sel, got, tt.want)
		}
		if tt.sel == "app=shop" && sel.Matches(nil) {
			t.Error("app=shop matches no labels")
		}
	}
}

func TestSelectorEqualities(t *testing.T) {
	t.Parallel()
	sel, _ := ParseSelector("app=shop,env in (a),tier!=db,team==x")
	if got, want := sel.Equalities(), map[string]string{"app": "shop", "team": "x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Equalities = %v; want %v", got, want)
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	valid := []string{"a", "0", "prod", "shop-1.4.0", "a.b-c", strings.Repeat("a", 63)}
	for _, n := range valid {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	invalid := map[string]string{
		"":                      "name is required",
		strings.Repeat("a", 64): "is 64 characters long; the limit is 63",
		"Prod":                  `(e.g. "prod")`,
		"-a":                    `(e.g. "a")`,
		"a-":                    `(e.g. "a")`,
		".a":                    "is invalid",
		"a..b":                  `(e.g. "a.b")`,
		"a_b":                   `(e.g. "a-b")`,
		"a/b":                   "is invalid",
		"a b":                   "is invalid",
		"ü":                     `(e.g. "my-name")`,
		"___":                   `(e.g. "my-name")`,
		"prod\n":                "is invalid",
	}
	for n, want := range invalid {
		err := ValidateName(n)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %v; want an error containing %q", n, err, want)
		}
		// Every suggestion is itself a valid name.
		if i := strings.Index(err.Error(), `(e.g. "`); i >= 0 {
			s := strings.TrimSuffix(err.Error()[i+7:], `")`)
			if ValidateName(s) != nil {
				t.Errorf("suggestion %q for %q is invalid", s, n)
			}
		}
	}
}

func TestValidateLabels(t *testing.T) {
	t.Parallel()
	valid := map[string]string{
		"app": "shop", "a": "", "example.com/team": "payments", "A_b.c-D": "X_y.z-1",
		strings.Repeat("k", 63): strings.Repeat("v", 63), strings.Repeat("d", 253) + "/" + strings.Repeat("n", 63): "v",
	}
	if err := ValidateLabels(valid); err != nil {
		t.Fatal(err)
	}
	if err := ValidateLabels(nil); err != nil {
		t.Fatal(err)
	}
	invalid := map[string]map[string]string{
		`label key "" is invalid`:                 {"": "x"},
		`label key "-a" is invalid`:               {"-a": "x"},
		`label key "a/b/c" is invalid`:            {"a/b/c": "x"},
		`label key "Example.com/a" is invalid`:    {"Example.com/a": "x"},
		`label key "example.com/" is invalid`:     {"example.com/": "x"},
		`label key "` + strings.Repeat("k", 64):   {strings.Repeat("k", 64): "x"},
		`label key "` + strings.Repeat("d", 254):  {strings.Repeat("d", 254) + "/x": "v"},
		`label "a" has invalid value "-x"`:        {"a": "-x"},
		`label "a" has invalid value "x y"`:       {"a": "x y"},
		`label "a" has invalid value "` + "vvvvv": {"a": strings.Repeat("v", 64)},
		// Several bad labels: the first in key order is named, every time.
		`label "a" has invalid value "!"`: {"a": "!", "b": "!", "c": "!"},
	}
	for want, labels := range invalid {
		for range 5 {
			err := ValidateLabels(labels)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("ValidateLabels(%v) = %v; want an error containing %q", labels, err, want)
			}
		}
	}
}
