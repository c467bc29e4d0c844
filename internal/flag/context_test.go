package flag_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/flag"
)

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat(`{"a":`, flag.MaxContextDepth+1) + `1` + strings.Repeat(`}`, flag.MaxContextDepth+1)
	okDeep := `{"context":` + strings.Repeat(`[`, flag.MaxContextDepth-1) + strings.Repeat(`]`, flag.MaxContextDepth-1) + `}`
	many := `{"context":{"l":[` + strings.Repeat(`1,`, flag.MaxContextEntries) + `1]}}`
	tests := []struct {
		name string
		body string
		want flag.Context
		code string
	}{
		{"full", `{"context":{"targetingKey":"u1","email":"a@b.c","age":31,"beta":true}}`,
			flag.Context{TargetingKey: "u1", Attributes: map[string]any{"email": "a@b.c", "age": 31.0, "beta": true}}, ""},
		{"no targeting key", `{"context":{"plan":"pro"}}`, flag.Context{Attributes: map[string]any{"plan": "pro"}}, ""},
		{"null targeting key", `{"context":{"targetingKey":null}}`, flag.Context{Attributes: map[string]any{}}, ""},
		{"empty body", ``, flag.Context{}, ""},
		{"blank body", " \n", flag.Context{}, ""},
		{"no context", `{}`, flag.Context{}, ""},
		{"null context", `{"context":null}`, flag.Context{}, ""},
		{"brackets in strings do not count", `{"context":{"s":"` + strings.Repeat("[{", 100) + `"}}`,
			flag.Context{Attributes: map[string]any{"s": strings.Repeat("[{", 100)}}, ""},
		{"escaped quote in string", `{"context":{"s":"\"[[[[[[[[[[[[[[[[[[[[[["}}`,
			flag.Context{Attributes: map[string]any{"s": `"[[[[[[[[[[[[[[[[[[[[[[`}}, ""},
		{"not JSON", `{"context":`, flag.Context{}, flag.ErrParse},
		{"trailing data", `{} {}`, flag.Context{}, flag.ErrParse},
		{"body a list", `[]`, flag.Context{}, flag.ErrParse},
		{"too deep", deep, flag.Context{}, flag.ErrParse},
		{"deep but allowed", okDeep, flag.Context{}, flag.ErrInvalidContext},
		{"too large", `{"context":{"s":"` + strings.Repeat("x", flag.MaxRequestBytes) + `"}}`, flag.Context{}, flag.ErrParse},
		{"context a string", `{"context":"u1"}`, flag.Context{}, flag.ErrInvalidContext},
		{"context a list", `{"context":[1]}`, flag.Context{}, flag.ErrInvalidContext},
		{"targeting key a number", `{"context":{"targetingKey":7}}`, flag.Context{}, flag.ErrInvalidContext},
		{"too many entries", many, flag.Context{}, flag.ErrInvalidContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := flag.DecodeRequest(strings.NewReader(tt.body))
			if tt.code != "" {
				var ee *flag.EvalError
				if !errors.As(err, &ee) || ee.Code != tt.code {
					t.Fatalf("got %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}
