package signals

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/signals/signalstest"
)

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	l := Labels{App: "shop", Environment: "prod", Version: "v2"}
	for _, tc := range []struct {
		src, want, err string
	}{
		{`up{app="{{app}}",env="{{ environment }}",version="{{version}}"}`, `up{app="shop",env="prod",version="v2"}`, ""},
		{`sum(rate(x[5m]))`, `sum(rate(x[5m]))`, ""},
		{`{{app}}{{app}}`, `shopshop`, ""},
		{``, ``, ""},
		{`x{v="{{ver}}"}`, "", "unknown placeholder {{ver}} at offset 5"},
		{`x{v="{{version"}`, "", `unclosed "{{" at offset 5`},
		{`x{v="}}"}`, "", `unexpected "}}" at offset 5`},
		{`{{ .App }}`, "", "unknown placeholder {{.App}}"},
		{"x\xff", "", "not valid UTF-8"},
	} {
		tmpl, err := ParseTemplate(tc.src)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTemplate(%q) error %v, want %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tc.src, err)
			continue
		}
		if got := tmpl.Execute(l, EscapePromQL); got != tc.want {
			t.Errorf("Execute(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestEscapePromQL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`v1`:                         `v1`,
		`v1"} or vector(1) or x{a="`: `v1\"} or vector(1) or x{a=\"`,
		`a\b`:                        `a\\b`,
		"line\nbreak\ttab\x00":       `line\nbreak\ttab\x00`,
		"bad\xffutf8":                "bad\uFFFDutf8",
		"ünïcode":                    "ünïcode",
	} {
		if got := EscapePromQL(in); got != want {
			t.Errorf("EscapePromQL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeURL(t *testing.T) {
	t.Parallel()
	if got, want := EscapeURL("v1&x=1/../a b?#"), "v1%26x%3D1%2F..%2Fa%20b%3F%23"; got != want {
		t.Fatalf("EscapeURL = %q, want %q", got, want)
	}
}

func TestQueryConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q    QueryConfig
		want string
	}{
		{QueryConfig{Name: "err", Query: `x{v="{{version}}"}`, Range: 5 * time.Minute, Step: 15 * time.Second}, ""},
		{QueryConfig{Name: "err", Query: `x{v="{{vers}}"}`}, `analysis.queries[1].query: unknown placeholder {{vers}}`},
		{QueryConfig{Query: `x`}, `analysis.queries[1].name: required`},
		{QueryConfig{Name: "n"}, `analysis.queries[1].query: required`},
		{QueryConfig{Name: "n", Query: "x", Step: time.Second}, `analysis.queries[1].step: needs a positive range`},
		{QueryConfig{Name: "n", Query: "x", Range: time.Minute, Step: time.Hour}, `analysis.queries[1].step: 1h0m0s is longer than the range`},
	} {
		err := tc.q.Validate("analysis.queries[1]")
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.q, err, tc.want)
		}
	}
	if _, err := NewPromQuery(nil, QueryConfig{Name: "x", Query: "{{nope}}"}); KindOf(err) != KindTemplate {
		t.Fatalf("NewPromQuery with a bad template: %v", err)
	}
}

// TestPromQueryBadInput is the "Bad input" list: a Prometheus
// that times out or returns NaN, an empty series, an API error — each is
// a counted error, never a pass, and three in a row make the signal
// inconclusive.
func TestPromQueryBadInput(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	c := newClient(t, PrometheusConfig{URL: p.URL, Timeout: 200 * time.Millisecond})
	l := Labels{App: "shop", Environment: "prod", Version: `v2"}`}
	for _, tc := range []struct {
		name   string
		answer signalstest.Answer
		kind   Kind
	}{
		{"nan", signalstest.Answer{Body: signalstest.Vector(1795773600, "0.1", "NaN")}, KindNaN},
		{"empty vector", signalstest.Answer{Body: signalstest.Vector(1795773600)}, KindEmpty},
		{"empty matrix series", signalstest.Answer{Body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]}]}}`}, KindEmpty},
		{"timeout", signalstest.Answer{Body: signalstest.Vector(1795773600, "1"), Delay: 5 * time.Second}, KindTimeout},
		{"api error", signalstest.Answer{Status: 503, Body: signalstest.ErrorBody("unavailable", "TSDB not ready")}, KindAPI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pq, err := NewPromQuery(c, QueryConfig{Name: tc.name, Query: `sum(x{case="` + tc.name + `",version="{{version}}"})`})
			if err != nil {
				t.Fatal(err)
			}
			rendered := `sum(x{case="` + tc.name + `",version="v2\"}"})`
			if got := pq.Render(l); got != rendered {
				t.Fatalf("Render = %q, want %q", got, rendered)
			}
			p.Answer(rendered, tc.answer)
			tr := NewTracker(0)
			var h Health
			for i := 1; i <= DefaultErrorLimit; i++ {
				res, err := pq.Fetch(context.Background(), l, t0)
				var se *Error
				if res != nil || !errors.As(err, &se) || se.Kind != tc.kind || se.Source != tc.name {
					t.Fatalf("attempt %d: result %v, error %v; want a %s error from %q", i, res, err, tc.kind, tc.name)
				}
				h = tr.Record(err)
				if i < DefaultErrorLimit && h != Erroring {
					t.Fatalf("after %d errors: %s, want erroring", i, h)
				}
			}
			if h != Inconclusive {
				t.Fatalf("after %d errors: %s, want inconclusive", DefaultErrorLimit, h)
			}
		})
	}
}

func TestPromQueryRangeAndSuccess(t *testing.T) {
	t.Parallel()
	p := newFake(t)
	c := newClient(t, PrometheusConfig{URL: p.URL})
	pq, err := NewPromQuery(c, QueryConfig{Name: "latency", Query: `p99{app="{{app}}"}`, Range: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p.Answer(`p99{app="shop"}`, signalstest.Answer{Body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1795773000,"0.2"],[1795773600,"+Inf"]]}]}}`})
	res, err := pq.Fetch(context.Background(), Labels{App: "shop"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples() != 2 {
		t.Fatalf("%d samples", res.Samples())
	}
	r := p.Requests()[0]
	if r.Path != "/api/v1/query_range" || r.Form["step"] != "10" || r.Form["start"] != "1795773000.000" {
		t.Fatalf("request %+v", r)
	}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	fail := &Error{Kind: KindTimeout, Err: errors.New("slow")}
	for _, tc := range []struct {
		name    string
		limit   int
		outcome []error
		want    []Health
	}{
		{"default limit", 0, []error{fail, fail, fail, fail}, []Health{Erroring, Erroring, Inconclusive, Inconclusive}},
		{"success resets", 3, []error{fail, fail, nil, fail, fail}, []Health{Erroring, Erroring, Healthy, Erroring, Erroring}},
		{"recovers", 2, []error{fail, fail, nil}, []Health{Erroring, Inconclusive, Healthy}},
		{"limit one", 1, []error{fail}, []Health{Inconclusive}},
		{"plain error counts", 1, []error{errors.New("boom")}, []Health{Inconclusive}},
		{"canceled is not counted", 1, []error{context.Canceled, &Error{Kind: KindCanceled, Err: context.Canceled}}, []Health{Healthy, Healthy}},
	} {
		tr := NewTracker(tc.limit)
		for i, err := range tc.outcome {
			if got := tr.Record(err); got != tc.want[i] {
				t.Errorf("%s: step %d: %s, want %s", tc.name, i, got, tc.want[i])
			}
		}
	}
	tr := NewTracker(3)
	tr.Record(fail)
	tr.Record(nil)
	tr.Record(&Error{Kind: KindNaN, Err: errors.New("nan")})
	st := tr.State()
	if st.Errors != 2 || st.Successes != 1 || st.Consecutive != 1 || st.ByKind[KindTimeout] != 1 || st.ByKind[KindNaN] != 1 || KindOf(st.LastError) != KindNaN {
		t.Fatalf("state %+v", st)
	}
}
