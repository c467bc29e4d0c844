package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is everything one invocation measured; -json prints it as it is.
type report struct {
	Command        string           `json:"command"`
	Machine        string           `json:"machine"`
	Workers        int              `json:"workers"`
	Elapsed        string           `json:"elapsed"`
	Seed           uint64           `json:"seed"`
	Runs           int              `json:"runsPerScenario"`
	DurationS      int              `json:"runSeconds"`
	RatePerVersion int              `json:"requestsPerSecondPerVersion"`
	IntervalS      int              `json:"intervalSeconds"`
	SampleEvery    int              `json:"latencySampleEvery"`
	Band           string           `json:"band"`
	Bursts         Bursts           `json:"bursts"`
	Confidence     float64          `json:"confidence"`
	Tolerance      float64          `json:"tolerance"`
	Alpha          float64          `json:"alpha"`
	RobustAlpha    float64          `json:"robustAlpha"`
	RobustBlockS   float64          `json:"robustBlockSeconds"`
	RobustPrior    float64          `json:"robustPrior"`
	Pass           float64          `json:"passThreshold"`
	Scenarios      []scenarioResult `json:"scenarios"`
	Targets        []check          `json:"targets"`
}

type scenarioResult struct {
	Scenario Scenario      `json:"scenario"`
	Judges   []judgeResult `json:"judges"`
}

// judgeResult is one judge on one scenario. For a healthy scenario every
// rollback is a false one.
type judgeResult struct {
	Judge      string  `json:"judge"`
	Runs       int     `json:"runs"`
	RolledBack int     `json:"rolledBack"`
	Rate       float64 `json:"rate"`
	// CILow and CIHigh bound Rate at 95% (Wilson score interval).
	CILow  float64 `json:"ciLow"`
	CIHigh float64 `json:"ciHigh"`
	// MedianS and P90S are quantiles of the time to the first rollback
	// over all runs, a run without one counting as never; nil when more
	// than half (a tenth) of the runs never rolled back.
	MedianS  *float64       `json:"medianSeconds"`
	P90S     *float64       `json:"p90Seconds"`
	ByMetric map[string]int `json:"byMetric"`
}

// check is one of the targets for one judge.
type check struct {
	Judge  string `json:"judge"`
	Target string `json:"target"`
	Figure string `json:"figure"`
	Met    string `json:"met"` // yes, NO or n/a
}

func newReport(c config, scs []Scenario, out [][]outcome, runs int) *report {
	r := &report{
		Runs: runs, DurationS: c.duration, RatePerVersion: c.rate, IntervalS: c.interval,
		SampleEvery: c.sampleEvery, Confidence: c.classifier.Confidence, Tolerance: c.classifier.Tolerance,
		Alpha: c.alpha, Pass: c.pass,
		RobustAlpha: c.robust.Alpha, RobustBlockS: c.robust.Block.Seconds(), RobustPrior: c.robust.Prior,
	}
	for k, sc := range scs {
		sr := scenarioResult{Scenario: sc}
		for j := range numJudges {
			sr.Judges = append(sr.Judges, summarize(judgeNames[j], j, out[k]))
		}
		r.Scenarios = append(r.Scenarios, sr)
	}
	r.Targets = targets(r)
	return r
}

func summarize(name string, j int, runs []outcome) judgeResult {
	res := judgeResult{Judge: name, Runs: len(runs), ByMetric: map[string]int{}}
	times := make([]float64, 0, len(runs))
	for _, o := range runs {
		if o.At[j] == 0 {
			times = append(times, math.Inf(1))
			continue
		}
		res.RolledBack++
		res.ByMetric[o.Why[j]]++
		times = append(times, float64(o.At[j]))
	}
	res.Rate = float64(res.RolledBack) / float64(res.Runs)
	res.CILow, res.CIHigh = wilson(res.RolledBack, res.Runs)
	slices.Sort(times)
	res.MedianS, res.P90S = quantile(times, 0.5), quantile(times, 0.9)
	return res
}

// quantile is the nearest-rank q-quantile of sorted values, nil when it is
// +Inf or there are none.
func quantile(sorted []float64, q float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	v := sorted[max(0, i)]
	if math.IsInf(v, 1) {
		return nil
	}
	return &v
}

// wilson is the 95% Wilson score interval of k successes in n trials.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	const z = 1.959963984540054
	p, nf := float64(k)/float64(n), float64(n)
	d := 1 + z*z/nf
	mid := (p + z*z/(2*nf)) / d
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / d
	return math.Max(0, mid-half), math.Min(1, mid+half)
}

const (
	targetFalse   = "false rollback <= 1% in every healthy scenario"
	targetMedian  = "errors 1% -> 6%: median time to detect < 30 s"
	targetSpeedup = "errors 1% -> 6%: >= 10x faster (median) than the fixed 5-minute rule"
	fivePoints    = "errors 1% -> 6%"
)

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func targets(r *report) []check {
	var cs []check
	var fiveFixed *float64
	for _, sr := range r.Scenarios {
		if sr.Scenario.Name == fivePoints {
			fiveFixed = sr.Judges[judgeFixed].MedianS
		}
	}
	for j := range numJudges {
		name := judgeNames[j]
		worst, worstName, healthy := -1.0, "", 0
		for _, sr := range r.Scenarios {
			if sr.Scenario.Healthy {
				healthy++
				if jr := sr.Judges[j]; jr.Rate > worst {
					worst, worstName = jr.Rate, sr.Scenario.Name
				}
			}
		}
		if healthy > 0 {
			cs = append(cs, check{name, targetFalse,
				fmt.Sprintf("worst %.1f%% (%s), %d healthy scenarios x %d runs", 100*worst, worstName, healthy, r.Runs),
				yes(worst <= 0.01)})
		}
		for _, sr := range r.Scenarios {
			if sr.Scenario.Name != fivePoints {
				continue
			}
			jr := sr.Judges[j]
			cs = append(cs, check{name, targetMedian,
				fmt.Sprintf("median %s (detected %d of %d)", secs(jr.MedianS, r.DurationS), jr.RolledBack, jr.Runs),
				yes(jr.MedianS != nil && *jr.MedianS < 30)})
			if j == judgeFixed {
				continue
			}
			switch {
			case jr.MedianS == nil:
				cs = append(cs, check{name, targetSpeedup, "not detected in half the runs", "NO"})
			case fiveFixed == nil:
				// The fixed rule's median is beyond the run: the speed-up
				// is at least duration / median.
				f := float64(r.DurationS) / *jr.MedianS
				cs = append(cs, check{name, targetSpeedup,
					fmt.Sprintf("> %.1fx (the fixed rule missed over half the runs)", f), yes(f >= 10)})
			default:
				f := *fiveFixed / *jr.MedianS
				cs = append(cs, check{name, targetSpeedup,
					fmt.Sprintf("%.1fx (%s vs %s)", f, secs(fiveFixed, r.DurationS), secs(jr.MedianS, r.DurationS)), yes(f >= 10)})
			}
		}
	}
	return cs
}

// secs prints a quantile in seconds, or "> DURs" when it is beyond the
// run (more runs than the quantile allows never rolled back).
func secs(v *float64, dur int) string {
	if v == nil {
		return fmt.Sprintf("> %ds", dur)
	}
	return fmt.Sprintf("%.0fs", *v)
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "command: %s\n", r.Command)
	fmt.Fprintf(w, "machine: %s; %d workers; %s\n", r.Machine, r.Workers, r.Elapsed)
	fmt.Fprintf(w, "%d runs per scenario, each %ds of simulated time at %d requests/s per version, seed %d\n",
		r.Runs, r.DurationS, r.RatePerVersion, r.Seed)
	fmt.Fprintf(w, "errors: 1%% on average; bursty scenarios: bursts of %g%% errors lasting %gs on average (Gilbert-Elliott, 0.5%% outside)\n",
		100*r.Bursts.BadRate, r.Bursts.MeanBadSec)
	fmt.Fprintf(w, "fixed: errors > baseline + 5 points or p99 > baseline + 100%% over the last %ds, checked every second from %ds\n", r.IntervalS, r.IntervalS)
	fmt.Fprintf(w, "Kayenta-style: every %ds, Classify (confidence %g, tolerance %g, band %s, direction increase) on per-second error rates (critical) and the latencies of 1 request in %d; score 0-100, pass >= %g\n",
		r.IntervalS, r.Confidence, r.Tolerance, r.Band, r.SampleEvery, r.Pass)
	fmt.Fprintf(w, "sequential: mSPRT on error counts (alpha %g) updated every second; latency: the same classification every %ds (no sequential latency test in internal/analysis/stats)\n",
		r.Alpha, r.IntervalS)
	fmt.Fprintf(w, "robust sequential: stats.RobustErrorTest (alpha %g, block %gs, prior %g) updated every second; latency as the sequential judge\n\n",
		r.RobustAlpha, r.RobustBlockS, r.RobustPrior)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\tjudge\trolled back\trate [95%% CI]\tmedian\tp90\ton\n")
	for _, sr := range r.Scenarios {
		name := sr.Scenario.Name
		for _, jr := range sr.Judges {
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.1f%% [%.1f, %.1f]\t%s\t%s\t%s\n", name, jr.Judge,
				jr.RolledBack, jr.Runs, 100*jr.Rate, 100*jr.CILow, 100*jr.CIHigh,
				secs(jr.MedianS, r.DurationS), secs(jr.P90S, r.DurationS), byMetric(jr.ByMetric))
			name = ""
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "judge\ttarget\tfigure\tmet\n")
	for _, c := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Judge, c.Target, c.Figure, c.Met)
	}
	tw.Flush()
}

func byMetric(m map[string]int) string {
	var parts []string
	for _, k := range []string{firedErrors, firedLatency, firedBoth} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
