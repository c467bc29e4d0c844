package signals

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/parse/*.txtar")

// goldenLimits are small so that testdata can show the limits biting.
var goldenLimits = Limits{MaxBytes: 2048, MaxSeries: 4, MaxSamples: 10}

// readTxtar splits a txtar archive into its files. It is enough for the
// files in testdata: "-- name --" lines, no comment section.
func readTxtar(t testing.TB, data string) map[string]string {
	t.Helper()
	files := map[string]string{}
	name := ""
	var b strings.Builder
	for _, line := range strings.SplitAfter(data, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(strings.TrimRight(line, "\n"), " --") {
			if name != "" {
				files[name] = b.String()
			}
			name = strings.TrimSuffix(strings.TrimPrefix(strings.TrimRight(line, "\n"), "-- "), " --")
			b.Reset()
			continue
		}
		b.WriteString(line)
	}
	if name != "" {
		files[name] = b.String()
	}
	return files
}

// render prints a parse outcome in the golden format.
func render(res *Result, err error) string {
	var b strings.Builder
	if err != nil {
		var se *Error
		if !errors.As(err, &se) {
			return fmt.Sprintf("error (not *Error): %v\n", err)
		}
		fmt.Fprintf(&b, "error %s", se.Kind)
		var ae *APIError
		if errors.As(err, &ae) {
			fmt.Fprintf(&b, " %s: %s", ae.Type, ae.Message)
		}
		b.WriteString("\n")
		return b.String()
	}
	fmt.Fprintf(&b, "type %s\n", res.Type)
	for _, s := range res.Series {
		fmt.Fprintf(&b, "series %s\n", formatLabels(s.Labels))
		for _, smp := range s.Samples {
			fmt.Fprintf(&b, "  %s %s\n", smp.Time.Format("2006-01-02T15:04:05.000Z"), formatValue(smp.Value))
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&b, "warning %s\n", w)
	}
	if cerr := res.Check(); cerr != nil {
		fmt.Fprintf(&b, "check %s\n", KindOf(cerr))
	} else {
		b.WriteString("check ok\n")
	}
	return b.String()
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return fmt.Sprint(v)
}

func TestParseResponseGolden(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob("testdata/parse/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			files := readTxtar(t, string(data))
			in, ok := files["response.json"]
			if !ok {
				t.Fatal("no response.json section")
			}
			got := render(ParseResponse([]byte(strings.TrimSuffix(in, "\n")), goldenLimits))
			if *update {
				out := "-- response.json --\n" + in + "-- want --\n" + got
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := files["want"]; got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestParseResponseTooManyBytes(t *testing.T) {
	t.Parallel()
	body := `{"status":"success","data":{"resultType":"vector","result":[]}}`
	_, err := ParseResponse([]byte(body), Limits{MaxBytes: int64(len(body) - 1)})
	if KindOf(err) != KindTooLarge {
		t.Fatalf("got %v, want a too_large error", err)
	}
	if _, err := ParseResponse([]byte(body), Limits{MaxBytes: int64(len(body))}); err != nil {
		t.Fatalf("a body exactly at the limit: %v", err)
	}
	_, err = ReadResponse(strings.NewReader(body+strings.Repeat(" ", 100)), Limits{MaxBytes: int64(len(body) + 10)})
	if KindOf(err) != KindTooLarge {
		t.Fatalf("ReadResponse: got %v, want a too_large error", err)
	}
}

func TestParseValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {"-2.5", -2.5, true}, {"1e-3", 0.001, true}, {"+Inf", math.Inf(1), true},
		{"-Inf", math.Inf(-1), true}, {"NaN", math.NaN(), true},
		{"", 0, false}, {"nan", 0, false}, {"inf", 0, false}, {"Infinity", 0, false},
		{"0x1p4", 0, false}, {"1_000", 0, false}, {"1e999", 0, false}, {"abc", 0, false}, {" 1", 0, false},
	} {
		got, err := ParseValue(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseValue(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("ParseValue(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/parse/*.txtar")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(strings.TrimSuffix(readTxtar(f, string(data))["response.json"], "\n")))
	}
	known := map[Kind]bool{KindAPI: true, KindMalformed: true, KindTooLarge: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := ParseResponse(body, goldenLimits)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || !known[se.Kind] {
				t.Fatalf("error %v (%T) is not an *Error of a parse kind", err, err)
			}
			if res != nil {
				t.Fatal("a result with an error")
			}
			return
		}
		if int64(len(body)) > goldenLimits.MaxBytes {
			t.Fatalf("accepted %d bytes over the %d limit", len(body), goldenLimits.MaxBytes)
		}
		if len(res.Series) > goldenLimits.MaxSeries || res.Samples() > goldenLimits.MaxSamples {
			t.Fatalf("accepted %d series, %d samples over the limits", len(res.Series), res.Samples())
		}
		switch res.Type {
		case ResultVector, ResultScalar:
			for _, s := range res.Series {
				if len(s.Samples) != 1 {
					t.Fatalf("%s series with %d samples", res.Type, len(s.Samples))
				}
			}
		case ResultMatrix:
		default:
			t.Fatalf("accepted result type %q", res.Type)
		}
		for _, s := range res.Series {
			if s.Labels == nil {
				t.Fatal("series with nil labels")
			}
		}
		cerr := res.Check()
		if k := KindOf(cerr); cerr != nil && k != KindNaN && k != KindEmpty {
			t.Fatalf("Check returned kind %q", k)
		}
	})
}
