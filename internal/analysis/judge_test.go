package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/logs"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/verdict"
)

var testBounds = []time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, time.Second}

// traffic feeds a judge one look a second: rps requests per version, each
// failing with its version's error rate, with its version's latency.
type traffic struct {
	rnd        *rand.Rand
	at         time.Time
	cand, base Counters
	instances  int
	healthy    int
}

func newTraffic() *traffic {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	return &traffic{rnd: rand.New(rand.NewPCG(1, 2)), at: t0, instances: 2, healthy: 2,
		cand: Counters{Buckets: make([]uint64, len(testBounds)+1)}, base: Counters{Buckets: make([]uint64, len(testBounds)+1)}}
}

func (tr *traffic) second(rps int, candErr, baseErr float64, candLat, baseLat time.Duration) Look {
	tr.at = tr.at.Add(time.Second)
	add := func(c *Counters, rate float64, lat time.Duration) {
		c.Buckets = append([]uint64(nil), c.Buckets...)
		for range rps {
			c.Requests++
			if tr.rnd.Float64() < rate {
				c.Errors++
			}
			l := time.Duration(float64(lat) * (0.8 + 0.4*tr.rnd.Float64()))
			c.LatencySum += l
			i := 0
			for i < len(testBounds) && l > testBounds[i] {
				i++
			}
			c.Buckets[i]++
		}
	}
	add(&tr.cand, candErr, candLat)
	add(&tr.base, baseErr, baseLat)
	return Look{At: tr.at, Candidate: tr.cand, Baseline: tr.base, Instances: tr.instances, Healthy: tr.healthy, Routed: true}
}

func testConfig(t *testing.T, mutate func(*TemplateSpec)) Config {
	t.Helper()
	spec := DefaultTemplate()
	spec.MinRequests = 50
	if mutate != nil {
		mutate(&spec)
	}
	c, err := Resolve("test", spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// feed feeds n seconds and asks the judge every second, with the step's
// end at stepEnd seconds; it returns the first judgement to record and
// the second it came at (0 and an empty judgement when none did).
func feed(t *testing.T, j *Judge, tr *traffic, n, stepEnd int, look func(*traffic) Look, x func(sec int) Extra) (Judgement, int) {
	t.Helper()
	j.Step(0, tr.at)
	for s := 1; s <= n; s++ {
		j.Observe(look(tr))
		var ex Extra
		if x != nil {
			ex = x(s)
		}
		if out := j.Decide(tr.at, s >= stepEnd, ex); out.Record {
			if err := verdict.Validate(verdict.Spec{App: "shop", Environment: "prod", Subject: verdict.Subject{Kind: "Rollout", Name: "shop.prod.1"},
				Outcome: out.Outcome, Summary: out.Summary, Reasons: out.Reasons, Signals: out.Signals, Judge: JudgeName, Action: out.Action,
				Confidence: out.Confidence, Score: out.Score}); err != nil {
				t.Fatalf("judgement at %ds is not a valid verdict: %v", s, err)
			}
			return out, s
		}
	}
	return Judgement{}, 0
}

func TestJudgeHealthyCanaryPasses(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, at := feed(t, j, tr, 120, 60, func(tr *traffic) Look { return tr.second(20, 0.01, 0.01, 20*time.Millisecond, 20*time.Millisecond) }, nil)
	if at != 60 || out.Outcome != verdict.Pass || out.Action != application.ActionContinue {
		t.Fatalf("got %s/%s at %ds (%s), want pass/continue at the step's end (60s)", out.Outcome, out.Action, at, out.Summary)
	}
	if out.Score == nil || *out.Score != 100 {
		t.Errorf("score = %v, want 100", out.Score)
	}
	if !strings.Contains(out.Summary, "vs") || !hasSignal(out, "metric:latency", verdict.Pass) {
		t.Errorf("summary %q / signals %+v lack the comparison", out.Summary, out.Signals)
	}
}

func hasSignal(j Judgement, name string, o verdict.Outcome) bool {
	for _, s := range j.Signals {
		if s.Name == name && s.Outcome == o {
			return true
		}
	}
	return false
}

func TestJudgeCatchesErrorRegressionInSeconds(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, at := feed(t, j, tr, 120, 60, func(tr *traffic) Look { return tr.second(50, 0.06, 0.01, 20*time.Millisecond, 20*time.Millisecond) }, nil)
	if out.Outcome != verdict.Fail || out.Action != application.ActionRollbackCanary {
		t.Fatalf("got %s/%s (%s), want fail/rollback-canary", out.Outcome, out.Action, out.Summary)
	}
	if at == 0 || at > 30 {
		t.Errorf("detected after %ds, want within 30s", at)
	}
	if out.Confidence < 0.99 || !strings.Contains(out.Summary, "error rate") || !strings.Contains(out.Summary, "baseline over") {
		t.Errorf("confidence %v, summary %q", out.Confidence, out.Summary)
	}
}

func TestJudgeNoTrafficIsNeverAPass(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, at := feed(t, j, tr, 90, 60, func(tr *traffic) Look { return tr.second(0, 0, 0, 0, 0) }, nil)
	if at != 60 || out.Outcome != verdict.Inconclusive || out.Action != application.ActionPause {
		t.Fatalf("got %s/%s at %ds, want inconclusive/pause at 60s", out.Outcome, out.Action, at)
	}
	if !strings.Contains(out.Summary, "no data is never a pass") {
		t.Errorf("summary %q", out.Summary)
	}
}

func TestJudgeLatencyRegressionFailsTheScore(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, _ := feed(t, j, tr, 120, 60, func(tr *traffic) Look { return tr.second(20, 0.01, 0.01, 60*time.Millisecond, 20*time.Millisecond) }, nil)
	if out.Outcome != verdict.Fail || !hasSignal(out, "metric:latency", verdict.Fail) {
		t.Fatalf("got %s (%s), want a fail on latency", out.Outcome, out.Summary)
	}
	if out.Score == nil || *out.Score != 50 {
		t.Errorf("score = %v, want 50 (errors pass, latency fails)", out.Score)
	}
}

func TestJudgeTriggerFiresAfterItsHold(t *testing.T) {
	cfg := testConfig(t, func(s *TemplateSpec) {
		s.Judge.Alpha = 1e-300 // keep the sequential test out of it
		s.Triggers[0].For = "20s"
	})
	j, err := NewJudge(cfg, testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, at := feed(t, j, tr, 200, 1000, func(tr *traffic) Look { return tr.second(50, 0.30, 0.01, 20*time.Millisecond, 20*time.Millisecond) }, nil)
	if out.Outcome != verdict.Fail || out.Action != application.ActionRollback || !hasSignal(out, "trigger:error-rate", verdict.Fail) {
		t.Fatalf("got %s/%s (%s)", out.Outcome, out.Action, out.Summary)
	}
	// The 1-minute window needs 10 candidate requests (1 s), then the
	// condition must hold for 20 s.
	if at < 20 || at > 25 {
		t.Errorf("fired at %ds, want after its 20s hold", at)
	}
}

func TestJudgeTriggerInBreachExtendsThenPauses(t *testing.T) {
	// Only the trigger sees the errors: no sequential test, no error metric.
	cfg := testConfig(t, func(s *TemplateSpec) {
		s.Judge.Alpha = 1e-300
		s.Judge.Metrics = []MetricSpec{{Name: "error-rate", Disabled: true}}
	})
	j, err := NewJudge(cfg, testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	// 8% vs 1%: above baseline + 5 points, but the trigger wants 5 minutes.
	bad := func(tr *traffic) Look { return tr.second(50, 0.08, 0.01, 20*time.Millisecond, 20*time.Millisecond) }
	out, at := feed(t, j, tr, 120, 60, bad, nil)
	if at != 60 || out.Outcome != verdict.Inconclusive || out.Action != application.ActionExtend || !strings.Contains(out.Summary, "trigger error-rate in breach") {
		t.Fatalf("got %s/%s at %ds (%s), want inconclusive/extend at 60s for the pending trigger", out.Outcome, out.Action, at, out.Summary)
	}
	j.Extended()
	out, at = feed(t, j, tr, 120, 1, bad, nil)
	if at != 1 || out.Action != application.ActionPause || !strings.Contains(out.Summary, "paused for a person") {
		t.Fatalf("after one extension got %s/%s at %ds (%s), want pause", out.Outcome, out.Action, at, out.Summary)
	}
}

func TestJudgeSignalErrorsMakeItInconclusive(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, at := feed(t, j, tr, 60, 1000, func(tr *traffic) Look { return tr.second(20, 0.01, 0.01, 20*time.Millisecond, 20*time.Millisecond) },
		func(int) Extra {
			return Extra{Errors: map[string]string{"query:business": "timeout: no answer in 10s"}}
		})
	if at != 3 || out.Outcome != verdict.Inconclusive || out.Action != application.ActionPause {
		t.Fatalf("got %s/%s at %ds, want inconclusive/pause at the third error", out.Outcome, out.Action, at)
	}
	if !hasSignal(out, "query:business", verdict.Inconclusive) {
		t.Errorf("signals %+v", out.Signals)
	}
	// A success resets the count.
	j2, _ := NewJudge(testConfig(t, nil), testBounds)
	tr2 := newTraffic()
	_, at = feed(t, j2, tr2, 30, 1000, func(tr *traffic) Look { return tr.second(20, 0.01, 0.01, 20*time.Millisecond, 20*time.Millisecond) },
		func(s int) Extra {
			if s%3 == 0 {
				return Extra{}
			}
			return Extra{Errors: map[string]string{"query:business": "nan: NaN sample"}}
		})
	if at != 0 {
		t.Errorf("errors interrupted by successes made a verdict at %ds", at)
	}
}

func TestJudgeProbeFailuresPrepareARollback(t *testing.T) {
	cfg := testConfig(t, func(s *TemplateSpec) {
		s.Probes = []ProbeSpec{{Name: "home", URL: "http://{{listen}}/"}}
	})
	j, err := NewJudge(cfg, testBounds)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTraffic()
	out, at := feed(t, j, tr, 60, 1000, func(tr *traffic) Look { return tr.second(20, 0.01, 0.01, 20*time.Millisecond, 20*time.Millisecond) },
		func(s int) Extra {
			return Extra{Probes: []ProbeOutcome{{Name: "home", OK: s < 5, Reason: "status 500, want 200-299"}}}
		})
	// Failures start at 5 s; more than 2 in a row fire at 7 s.
	if at != 7 || out.Action != application.ActionRollback || !out.Confirm {
		t.Fatalf("got %s/%s confirm=%v at %ds, want a rollback waiting for confirmation at 7s", out.Outcome, out.Action, out.Confirm, at)
	}
}

func TestJudgeNewErrorTemplateCountsInTheScore(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	finding := logs.Finding{Kind: logs.New, Template: "payment declined: <*>", Level: logs.LevelError, CandidateCount: 212, Examples: []string{"level=error msg=\"payment declined: card 4242\""}}
	tr := newTraffic()
	out, _ := feed(t, j, tr, 90, 60, func(tr *traffic) Look { return tr.second(20, 0.01, 0.01, 20*time.Millisecond, 20*time.Millisecond) },
		func(int) Extra { return Extra{Logs: []logs.Finding{finding}, LogLines: 1200} })
	if !hasSignal(out, "log-patterns", verdict.Fail) || !strings.Contains(out.Summary, "payment declined: <*>") {
		t.Fatalf("got %s (%s), signals %+v", out.Outcome, out.Summary, out.Signals)
	}
	// errors 1, latency 1, logs 0 → 66.7: below pass, above marginal.
	if out.Score == nil || *out.Score != 66.7 || out.Outcome != verdict.Fail {
		t.Errorf("score %v outcome %s, want 66.7 and fail (below the marginal 75)", out.Score, out.Outcome)
	}
}

func TestResolveRejectsBadTemplates(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*TemplateSpec)
		path   string
	}{
		"interval":       {func(s *TemplateSpec) { s.Interval = "10 seconds" }, "spec.interval"},
		"alpha":          {func(s *TemplateSpec) { s.Judge.Alpha = 2 }, "spec.judge.alpha"},
		"band":           {func(s *TemplateSpec) { s.Judge.Band = "wide" }, "spec.judge.band"},
		"test":           {func(s *TemplateSpec) { s.Judge.Test = "bayes" }, "spec.judge.test"},
		"block":          {func(s *TemplateSpec) { s.Judge.Test, s.Judge.Block = TestMixture, "2s" }, "spec.judge.block"},
		"marginal":       {func(s *TemplateSpec) { s.Judge.Marginal = 99 }, "spec.judge"},
		"trigger metric": {func(s *TemplateSpec) { s.Triggers[0].Metric = "cpu" }, "spec.triggers[0].metric"},
		"trigger action": {func(s *TemplateSpec) { s.Triggers[0].Action = "explode" }, "spec.triggers[0].action"},
		"two limits":     {func(s *TemplateSpec) { s.Triggers[0].Below = &application.Threshold{Value: f(1)} }, "spec.triggers[0]"},
		"query no prom":  {func(s *TemplateSpec) { s.Queries = []QuerySpec{{Name: "orders", Query: "sum(x)"}} }, "spec.prometheus"},
		"query template": {func(s *TemplateSpec) {
			s.Prometheus = &PrometheusSpec{URL: "http://127.0.0.1:9090"}
			s.Queries = []QuerySpec{{Name: "orders", Query: "sum(x{v=\"{{nope}}\"})"}}
		}, "spec.queries[0].query"},
		"probe url":    {func(s *TemplateSpec) { s.Probes = []ProbeSpec{{Name: "p", URL: "ftp://x/"}} }, "spec.probes[0].url"},
		"prom creds":   {func(s *TemplateSpec) { s.Prometheus = &PrometheusSpec{URL: "http://u:p@prom:9090"} }, "spec.prometheus.url"},
		"metric":       {func(s *TemplateSpec) { s.Judge.Metrics = []MetricSpec{{Name: "cpu"}} }, "spec.judge.metrics[0].name"},
		"unhealthy pt": {func(s *TemplateSpec) { s.Triggers[2].Above = &application.Threshold{Points: f(3)} }, "spec.triggers[2].above"},
	} {
		t.Run(name, func(t *testing.T) {
			spec := DefaultTemplate()
			tc.mutate(&spec)
			_, err := Resolve("t", spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("err = %v, want one naming %s", err, tc.path)
			}
		})
	}
}

func TestResolveMergesApplicationTriggers(t *testing.T) {
	app := &application.Analysis{Triggers: []application.Trigger{
		{Name: "error-rate", Metric: application.MetricErrorRate, Above: &application.Threshold{Points: f(2)}, For: "1m", Action: application.ActionRollbackCanary},
		{Name: "business", Disabled: true},
		{Name: "p99-cap", Metric: application.MetricLatencyP99, Above: &application.Threshold{Value: f(500)}, Action: application.ActionPause},
	}}
	c, err := Resolve("", DefaultTemplate(), app)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range c.Triggers {
		names = append(names, tr.Name)
	}
	if got := strings.Join(names, ","); got != "error-rate,latency-p99,health-checks,synthetic,p99-cap" {
		t.Fatalf("triggers %s", got)
	}
	if tr := c.Triggers[0]; *tr.Above.Points != 2 || tr.Hold != time.Minute || tr.Action != application.ActionRollbackCanary {
		t.Errorf("error-rate trigger not replaced: %+v", tr)
	}
}

// A 5-second burst of errors on the candidate alone is not a regression
// to the default (robust) test; the mixture test, which weighs every
// error, rolls the canary back for it. A lasting regression is caught by
// both, the mixture test sooner.
func TestJudgeSequentialTests(t *testing.T) {
	burst := func(tr *traffic) func(*traffic) Look {
		s := 0
		return func(tr *traffic) Look {
			s++
			rate := 0.01
			if s > 20 && s <= 25 {
				rate = 0.10
			}
			return tr.second(50, rate, 0.01, 20*time.Millisecond, 20*time.Millisecond)
		}
	}
	for _, tc := range []struct {
		test       string
		burstFails bool
		within     int
	}{
		{TestRobust, false, 30},
		{TestMixture, true, 10},
	} {
		t.Run(tc.test, func(t *testing.T) {
			cfg := testConfig(t, func(s *TemplateSpec) { s.Judge.Test = tc.test })
			j, _ := NewJudge(cfg, testBounds)
			tr := newTraffic()
			out, at := feed(t, j, tr, 120, 1000, burst(tr), nil)
			if failed := out.Outcome == verdict.Fail; failed != tc.burstFails {
				t.Errorf("a 5s candidate-only burst: failed=%v at %ds (%s), want %v", failed, at, out.Summary, tc.burstFails)
			}
			j, _ = NewJudge(cfg, testBounds)
			tr = newTraffic()
			out, at = feed(t, j, tr, 120, 1000, func(tr *traffic) Look { return tr.second(50, 0.06, 0.01, 20*time.Millisecond, 20*time.Millisecond) }, nil)
			if out.Outcome != verdict.Fail || at > tc.within || !strings.Contains(out.Summary, tc.test+" sequential test") {
				t.Errorf("1%% -> 6%%: %s at %ds (%s), want fail within %ds", out.Outcome, at, out.Summary, tc.within)
			}
		})
	}
}

// Without a router (the Kubernetes runtime) a step is judged by the
// template's queries: none, or too few values, is inconclusive; a query
// that drops fails the score.
func TestJudgeWithoutRouterUsesQueries(t *testing.T) {
	unrouted := func(tr *traffic) Look { tr.at = tr.at.Add(time.Second); return Look{At: tr.at} }
	j, _ := NewJudge(testConfig(t, nil), testBounds)
	out, at := feed(t, j, newTraffic(), 90, 60, unrouted, nil)
	if at != 60 || out.Outcome != verdict.Inconclusive || !strings.Contains(out.Summary, "declares no Prometheus queries") {
		t.Fatalf("no queries: %s at %ds (%s)", out.Outcome, at, out.Summary)
	}
	cfg := testConfig(t, func(s *TemplateSpec) {
		s.Prometheus = &PrometheusSpec{URL: "http://127.0.0.1:9090"}
		s.Queries = []QuerySpec{{Name: "orders", Query: `sum(orders{version="{{version}}"})`}}
		s.Judge.Metrics = []MetricSpec{{Name: "orders", Direction: "decrease"}}
	})
	for _, tc := range []struct {
		cand    float64
		outcome verdict.Outcome
	}{{100, verdict.Pass}, {40, verdict.Fail}} {
		j, _ := NewJudge(cfg, testBounds)
		rnd := rand.New(rand.NewPCG(3, 4))
		out, at := feed(t, j, newTraffic(), 90, 60, unrouted, func(int) Extra {
			return Extra{Queries: map[string]QueryValue{"orders": {Candidate: tc.cand + rnd.Float64(), Baseline: 100 + rnd.Float64()}}}
		})
		if at != 60 || out.Outcome != tc.outcome || !hasSignal(out, "metric:orders", tc.outcome) {
			t.Errorf("orders %v vs 100: %s at %ds (%s)", tc.cand, out.Outcome, at, out.Summary)
		}
	}
}

func TestBinomialTail(t *testing.T) {
	for _, c := range []struct {
		n, k uint64
		want float64
	}{
		{50, 0, 1},
		{50, 1, 1 - math.Pow(0.99, 50)}, // 0.395: one slow request of 50 is common
		{50, 3, 0.01382},
		{500, 10, 0.03129},
		{10, 11, 0},
		{1_000_000, 20_000, 0}, // twice the expected count at a million requests
	} {
		if got := binomialTail(c.n, c.k, 0.01); math.Abs(got-c.want) > 5e-4 {
			t.Errorf("binomialTail(%d, %d, 0.01) = %.5f, want %.5f", c.n, c.k, got, c.want)
		}
	}
}

// TestJudgeLatencyP99NeedsMoreThanOneSlowRequest: the p99 of 50 requests
// is their slowest, so one slow request puts it far over the baseline's;
// that is no breach until the slow ones are more than chance allows.
func TestJudgeLatencyP99NeedsMoreThanOneSlowRequest(t *testing.T) {
	j, err := NewJudge(testConfig(t, nil), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	var p99 Trigger
	for _, tr := range j.cfg.Triggers {
		if tr.Metric == application.MetricLatencyP99 {
			p99 = tr
		}
	}
	counters := func(fast, slow uint64) Counters {
		c := Counters{Requests: fast + slow, Buckets: make([]uint64, len(testBounds)+1)}
		c.Buckets[1] = fast // 1-5 ms
		c.Buckets[5] = slow // 100 ms-1 s
		return c
	}
	base := counters(450, 0)
	holds, known, detail := j.condition(p99, counters(49, 1), base, 10*time.Second, true, Extra{})
	if holds || !known || !strings.Contains(detail, "not yet a breach: 1 of 50 requests") {
		t.Errorf("one slow request of 50: holds %t, known %t (%s); want known and no breach", holds, known, detail)
	}
	holds, known, detail = j.condition(p99, counters(45, 5), base, 10*time.Second, true, Extra{})
	if !holds || !known {
		t.Errorf("five slow requests of 50: holds %t, known %t (%s); want a breach", holds, known, detail)
	}
	holds, _, detail = j.condition(p99, counters(4950, 50), counters(4950, 50), 10*time.Second, true, Extra{})
	if holds {
		t.Errorf("the same tail as the baseline: holds (%s); want no breach", detail)
	}
}
