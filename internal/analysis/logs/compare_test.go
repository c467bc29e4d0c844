package logs

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// traffic returns n demo lines of which the first errs (spread evenly)
// are payment errors, followed by extra.
func traffic(n, errs int, version string, extra ...string) []string {
	var out []string
	e := 0
	for i := range n {
		failed := e < errs && i*errs/n >= e
		if failed {
			e++
		}
		out = append(out, demoLine(i+1, failed, version, i%17))
	}
	return append(out, extra...)
}

func repeat(n int, format string) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(format, i*31+7))
	}
	return out
}

func TestCompare(t *testing.T) {
	t.Parallel()
	type want struct {
		kind      Kind
		template  string
		base, can int
	}
	tests := []struct {
		name                string
		baseline, candidate []string
		opts                CompareOptions
		want                []want
	}{
		{
			name:      "new error template only in the candidate",
			baseline:  traffic(1000, 0, "1.2.0"),
			candidate: traffic(1000, 20, "1.3.0"),
			want:      []want{{New, "payment declined: id=<*>", 0, 20}},
		},
		{
			name:      "unchanged templates are not reported",
			baseline:  traffic(1000, 10, "1.2.0"),
			candidate: traffic(1000, 12, "1.3.0"),
		},
		{
			name:      "rate rise 1% to 6% is reported",
			baseline:  traffic(1000, 10, "1.2.0"),
			candidate: traffic(1000, 60, "1.3.0"),
			want:      []want{{Rose, "payment declined: id=<*>", 10, 60}},
		},
		{
			name:      "rate below the factor is not reported",
			baseline:  traffic(1000, 10, "1.2.0"),
			candidate: traffic(1000, 29, "1.3.0"),
		},
		{
			name:      "rates are per line: more traffic, same rate",
			baseline:  traffic(1000, 10, "1.2.0"),
			candidate: traffic(5000, 50, "1.3.0"),
		},
		{
			name:      "one new line does not fire",
			baseline:  traffic(1000, 0, "1.2.0"),
			candidate: traffic(1000, 1, "1.3.0"),
		},
		{
			name:      "four new lines do not fire at the default minimum of five",
			baseline:  traffic(1000, 0, "1.2.0"),
			candidate: traffic(1000, 4, "1.3.0"),
		},
		{
			name:      "the minimum count is configurable",
			baseline:  traffic(1000, 0, "1.2.0"),
			candidate: traffic(1000, 2, "1.3.0"),
			opts:      CompareOptions{MinCount: 2},
			want:      []want{{New, "payment declined: id=<*>", 0, 2}},
		},
		{
			name:      "a new info template is not reported",
			baseline:  traffic(1000, 0, "1.2.0"),
			candidate: traffic(1000, 0, "1.3.0", repeat(50, `level=info msg="cache warmed in %dms"`)...),
		},
		{
			name:      "a new warning is reported at MinLevel warn",
			baseline:  traffic(1000, 0, "1.2.0"),
			candidate: traffic(1000, 0, "1.3.0", repeat(50, `level=warn msg="cache warmed in %dms"`)...),
			opts:      CompareOptions{MinLevel: LevelWarn},
			want:      []want{{New, "cache warmed in <*>", 0, 50}},
		},
		{
			name:      "a message promoted from info to error is new at error",
			baseline:  traffic(1000, 0, "1.2.0", repeat(50, `level=info msg="quota check skipped for %d"`)...),
			candidate: traffic(1000, 0, "1.3.0", repeat(50, `level=error msg="quota check skipped for %d"`)...),
			want:      []want{{New, "quota check skipped for <*>", 0, 50}},
		},
		{
			name:      "a template generalised in the candidate matches the baseline's literal one",
			baseline:  append(traffic(1000, 0, "1.2.0"), strings.Split(strings.Repeat(`level=error msg="sync for tenant acme failed"`+"\n", 10), "\n")[:10]...),
			candidate: traffic(1000, 0, "1.3.0", `level=error msg="sync for tenant acme failed"`, `level=error msg="sync for tenant bolt failed"`, `level=error msg="sync for tenant core failed"`, `level=error msg="sync for tenant dune failed"`, `level=error msg="sync for tenant echo failed"`, `level=error msg="sync for tenant fizz failed"`),
		},
		{
			name:      "error levels from JSON and plain lines count",
			baseline:  []string{`{"level":"info","msg":"ok"}`},
			candidate: append(repeat(6, `{"level":"error","msg":"db failed","err":"timeout after %dms"}`), repeat(7, `2026/11/27 19:20:37 [ERROR] worker %d crashed`)...),
			want:      []want{{New, "<*> [ERROR] worker <*> crashed", 0, 7}, {New, "db failed err=timeout after <*>", 0, 6}},
		},
		{
			name:      "new templates come first, then by candidate rate",
			baseline:  traffic(1000, 10, "1.2.0"),
			candidate: traffic(1000, 80, "1.3.0", append(repeat(6, `level=error msg="ledger write %d failed"`), repeat(9, `level=fatal msg="ledger corrupted at %d"`)...)...),
			want: []want{
				{New, "ledger corrupted at <*>", 0, 9},
				{New, "ledger write <*> failed", 0, 6},
				{Rose, "payment declined: id=<*>", 10, 80},
			},
		},
		{
			name:      "an empty candidate yields nothing",
			baseline:  traffic(100, 10, "1.2.0"),
			candidate: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CompareLines(tt.baseline, tt.candidate, Options{}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var have []want
			for _, f := range got {
				have = append(have, want{f.Kind, f.Template, f.BaselineCount, f.CandidateCount})
				if len(f.Examples) == 0 || len(f.Examples) > 3 {
					t.Errorf("finding %q has %d examples, want 1 to 3", f.Template, len(f.Examples))
				}
			}
			if !reflect.DeepEqual(have, tt.want) {
				t.Errorf("findings:\n got %+v\nwant %+v", have, tt.want)
			}
			again, _ := CompareLines(tt.baseline, tt.candidate, Options{}, tt.opts)
			if !reflect.DeepEqual(got, again) {
				t.Errorf("Compare is not deterministic:\n%+v\n%+v", got, again)
			}
		})
	}
}

func TestCompareFindingFields(t *testing.T) {
	t.Parallel()
	base, cand := mustMiner(t, Options{}), mustMiner(t, Options{})
	for _, l := range traffic(2000, 20, "1.2.0") {
		base.Add(l)
	}
	for _, l := range traffic(1000, 100, "1.3.0") {
		cand.Add(l)
	}
	got := Compare(base, cand, CompareOptions{})
	if len(got) != 1 {
		t.Fatalf("findings = %+v, want one", got)
	}
	f := got[0]
	if f.BaselineRate != 10 || f.CandidateRate != 100 || f.Ratio != 10 || f.PerRequest || f.Level != LevelError {
		t.Errorf("finding = %+v, want rates 10 and 100 per 1,000 lines, ratio 10", f)
	}
	if len(f.Examples) != 3 || !strings.Contains(f.Examples[0], `level=error msg="payment declined: id=`) {
		t.Errorf("examples = %q, want three payment errors", f.Examples)
	}
	if s := f.String(); !strings.Contains(s, "`payment declined: id=<*>` 100 times") || !strings.Contains(s, "10.0x") {
		t.Errorf("String() = %q", s)
	}

	perReq := Compare(base, cand, CompareOptions{BaselineRequests: 2000, CandidateRequests: 100})
	if len(perReq) != 1 || !perReq[0].PerRequest || perReq[0].CandidateRate != 1 || perReq[0].BaselineRate != 0.01 {
		t.Errorf("per-request findings = %+v, want rates 0.01 and 1 per request", perReq)
	}

	newOnly := Compare(mustMiner(t, Options{}), cand, CompareOptions{})
	if len(newOnly) != 1 || newOnly[0].Kind != New || !math.IsInf(newOnly[0].Ratio, 1) || !strings.HasPrefix(newOnly[0].String(), "new error template") {
		t.Errorf("against an empty baseline = %+v, want one new finding", newOnly)
	}

	if got := Compare(nil, cand, CompareOptions{}); !reflect.DeepEqual(got, newOnly) {
		t.Errorf("a nil baseline = %+v, want as an empty one %+v", got, newOnly)
	}
	if got := Compare(base, nil, CompareOptions{}); got != nil {
		t.Errorf("a nil candidate = %+v, want none", got)
	}

	fewer := Compare(cand, base, CompareOptions{})
	if len(fewer) != 0 {
		t.Errorf("a falling rate was reported: %+v", fewer)
	}
}

func TestCompareLinesRejectsBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := CompareLines(nil, nil, Options{Depth: 1}, CompareOptions{}); err == nil {
		t.Error("CompareLines accepted depth 1")
	}
}
