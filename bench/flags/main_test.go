package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	airflag "github.com/airlock-dev/airlock/internal/flag"
)

func TestAirlockFlags(t *testing.T) {
	fs := airlockFlags()
	if len(fs) != 100 {
		t.Fatalf("%d flags, want 100", len(fs))
	}
	segs := map[string]airflag.SegmentSpec{segmentName: segment()}
	if err := airflag.ValidateSegment(segment()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	reasons := map[string]int{}
	for _, f := range fs {
		if seen[f.Key] {
			t.Errorf("flag %s twice", f.Key)
		}
		seen[f.Key] = true
		if err := airflag.Validate(f.Spec); err != nil {
			t.Errorf("%s: %v", f.Key, err)
		}
		ev, err := airflag.Compile(f.Spec, segs)
		if err != nil {
			t.Fatalf("%s: %v", f.Key, err)
		}
		for _, b := range requestBodies(50, 3) {
			c, err := airflag.DecodeRequestBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			reasons[ev.Evaluate(c).Reason]++
		}
	}
	for _, r := range []string{airflag.ReasonStatic, airflag.ReasonTargetingMatch, airflag.ReasonSplit, airflag.ReasonDefault} {
		if reasons[r] == 0 {
			t.Errorf("no evaluation with reason %s: %v", r, reasons)
		}
	}
	if reasons[airflag.ReasonError] != 0 {
		t.Errorf("errors: %v", reasons)
	}
	docs, err := airlockDocuments()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(docs), "\n---\n"); n != 101 {
		t.Errorf("%d document separators, want 101 (environment, segment, 100 flags)", n)
	}
}

func TestFlagdDocument(t *testing.T) {
	doc, err := flagdDocument()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Flags map[string]struct {
			State          string         `json:"state"`
			Variants       map[string]any `json:"variants"`
			DefaultVariant string         `json:"defaultVariant"`
			Targeting      any            `json:"targeting"`
		} `json:"flags"`
		Evaluators map[string]any `json:"$evaluators"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Flags) != 100 {
		t.Fatalf("%d flags, want 100", len(d.Flags))
	}
	for k, f := range d.Flags {
		if f.State != "ENABLED" {
			t.Errorf("%s: state %q", k, f.State)
		}
		if _, ok := f.Variants[f.DefaultVariant]; !ok {
			t.Errorf("%s: default variant %q is not a variant", k, f.DefaultVariant)
		}
	}
	if d.Evaluators[segmentName] == nil {
		t.Errorf("no shared evaluator %s", segmentName)
	}
}

func TestQuantile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	slices.Sort(lat)
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{.5, 500}, {.99, 990}, {.999, 999}, {1, 1000}, {.0001, 1}} {
		if got := quantile(lat, c.q); got != c.want*time.Microsecond {
			t.Errorf("quantile(%g) = %s, want %s", c.q, got, c.want*time.Microsecond)
		}
	}
	if got := quantile(nil, .99); got != 0 {
		t.Errorf("quantile of nothing = %s", got)
	}
	if got := quantile([]time.Duration{7}, .5); got != 7 {
		t.Errorf("quantile of one = %s", got)
	}
}

// TestFlagdPath runs the flagd side of the harness (arguments, readiness,
// the answer check, both load modes) against a stand-in: this test binary
// re-executed as "flagd", evaluating the flagd document with a small
// JsonLogic interpreter of the operations it uses. It does not show that
// real flagd reads the document the same way.
func TestFlagdPath(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BENCH_FLAGS_FAKE_FLAGD", "1")
	ctx := context.Background()
	s, err := startFlagd(ctx, self, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if err := checkFlagd(s); err != nil {
		t.Fatal(err)
	}
	g := &loadGen{bodies: requestBodies(64, 1), urls: []string{"/ofrep/v1/evaluate/flags/static-00", "/ofrep/v1/evaluate/flags/theme-01"}}
	if r := g.closedLoop(ctx, &s.target, 4, 0, 20*time.Millisecond); r.N == 0 || r.Errors != 0 {
		t.Errorf("closed loop: %s", r)
	}
	if r := g.openLoop(ctx, &s.target, 1000, 8, 0, 20*time.Millisecond); r.N < 10 || r.Errors != 0 {
		t.Errorf("open loop: %s", r)
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("BENCH_FLAGS_FAKE_FLAGD") == "1" && len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-test.") {
		fakeFlagd(os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

// fakeFlagd answers "version", "start --help" and "start --uri file:F
// --ofrep-port P ..." as flagd would, serving only single-flag OFREP.
func fakeFlagd(args []string) {
	switch {
	case args[0] == "version":
		fmt.Println("fake-flagd 0.0.0")
		return
	case len(args) > 1 && args[1] == "--help":
		fmt.Println("  -r, --ofrep-port int32\n  -m, --management-port int32\n  -p, --port int32\n  -g, --sync-port int32")
		return
	}
	var file, port string
	for i := 1; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--uri":
			file = strings.TrimPrefix(args[i+1], "file:")
		case "--ofrep-port":
			port = args[i+1]
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	var d struct {
		Flags map[string]struct {
			Variants       map[string]any `json:"variants"`
			DefaultVariant string         `json:"defaultVariant"`
			Targeting      any            `json:"targeting"`
		} `json:"flags"`
		Evaluators map[string]any `json:"$evaluators"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	http.HandleFunc("POST /ofrep/v1/evaluate/flags/{key}", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		f, ok := d.Flags[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var req struct {
			Context map[string]any `json:"context"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		variant, reason := f.DefaultVariant, "STATIC"
		if f.Targeting != nil {
			reason = "DEFAULT"
			if v, ok := jsonLogic(f.Targeting, req.Context, d.Evaluators, key).(string); ok {
				variant, reason = v, "TARGETING_MATCH"
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"key": key, "variant": variant, "value": f.Variants[variant], "reason": reason})
	})
	http.ListenAndServe("127.0.0.1:"+port, nil)
}

// jsonLogic evaluates the operations the flagd document uses.
func jsonLogic(e any, ctx map[string]any, evaluators map[string]any, flagKey string) any {
	m, ok := e.(map[string]any)
	if !ok {
		return e
	}
	for op, arg := range m {
		args, _ := arg.([]any)
		switch op {
		case "var":
			return ctx[arg.(string)]
		case "$ref":
			return jsonLogic(evaluators[arg.(string)], ctx, evaluators, flagKey)
		case "if":
			if jsonLogic(args[0], ctx, evaluators, flagKey) == true {
				return jsonLogic(args[1], ctx, evaluators, flagKey)
			}
			return jsonLogic(args[2], ctx, evaluators, flagKey)
		case "or":
			for _, a := range args {
				if jsonLogic(a, ctx, evaluators, flagKey) == true {
					return true
				}
			}
			return false
		case "ends_with":
			s, _ := jsonLogic(args[0], ctx, evaluators, flagKey).(string)
			suffix, _ := args[1].(string)
			return strings.HasSuffix(s, suffix)
		case "fractional":
			tk, _ := ctx["targetingKey"].(string)
			h := fnv.New32a()
			h.Write([]byte(tk + flagKey))
			b, acc := float64(h.Sum32()%100), 0.0
			for _, a := range args {
				pair := a.([]any)
				acc += pair[1].(float64)
				if b < acc {
					return pair[0]
				}
			}
			return nil
		}
	}
	return nil
}
