package analysis

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/logs"
	"github.com/airlock-dev/airlock/internal/analysis/stats"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/verdict"
)

// Counters are one version's cumulative router counters: they only grow
// while the router runs.
type Counters struct {
	Requests, Errors uint64
	LatencySum       time.Duration
	// Buckets are latency histogram counts (not cumulative across
	// buckets) over Bounds, the last one above the last bound.
	Buckets []uint64
}

// Look is what the controller saw of both versions at one moment.
type Look struct {
	At                  time.Time
	Candidate, Baseline Counters
	// Instances and Healthy count the candidate's instances wanted and
	// passing their health check.
	Instances, Healthy int
	// Routed says a router counted the versions' requests (the local
	// runtime); without one the counters are empty and the step is
	// judged by the template's queries.
	Routed bool
}

// Extra are the slower signals, gathered when the judge decides.
type Extra struct {
	// Queries maps a query's name to its value for each version.
	Queries map[string]QueryValue
	// Probes are the probe results since the last judgement, oldest first.
	Probes []ProbeOutcome
	// Logs are the candidate's new or risen error templates, and
	// LogLines how many candidate lines were mined (0: no logs read).
	Logs     []logs.Finding
	LogLines int
	// Errors are the signals that could not be obtained this time, by
	// signal name (e.g. prometheus:checkout, probe:home, logs): each
	// counts towards MaxSignalErrors; a signal absent here succeeded.
	Errors map[string]string
}

// QueryValue is a query's value for the candidate and the baseline.
type QueryValue struct{ Candidate, Baseline float64 }

// ProbeOutcome is one synthetic probe's result.
type ProbeOutcome struct {
	Name   string
	OK     bool
	Reason string
}

// Judgement is the judge's answer at one look. Record is false while
// nothing needs a verdict yet (a step in the middle of its soak, all
// well).
type Judgement struct {
	Record     bool
	Outcome    verdict.Outcome
	Action     string
	Confirm    bool // the action waits for a person whatever the policy
	Confidence float64
	Score      *float64
	Summary    string
	Reasons    []string
	Signals    []verdict.Signal
}

// errorTest is the sequential test on error counts.
type errorTest interface {
	Update(at time.Duration, candErrors, candTotal, baseErrors, baseTotal int64) (stats.SequentialResult, error)
}

// mixtureTest adapts stats.ErrorRateTest to errorTest.
type mixtureTest struct{ t *stats.ErrorRateTest }

func (m mixtureTest) Update(_ time.Duration, ce, ct, be, bt int64) (stats.SequentialResult, error) {
	return m.t.Update(ce, ct, be, bt)
}

// Judge holds the analysis of one rollout: the looks of the current step,
// the sequential test since the candidate first got traffic, the
// triggers' breaches, and consecutive signal errors. It is pure: no I/O,
// no clock; the controller feeds it. Not safe for concurrent use.
type Judge struct {
	cfg    Config
	bounds []time.Duration
	looks  []Look // within max(Window, the step) of the newest
	step   int
	// stepStart is the index in looks... kept as the first look's time of
	// the current step.
	stepStart time.Time
	seq       errorTest
	seqBase   Look // counters when the test started
	seqStart  time.Time
	seqDone   bool
	seqRes    stats.SequentialResult
	breach    map[string]time.Time // trigger → since when its condition holds
	probeRun  map[string]int       // probe → consecutive failures
	sigErrs   map[string]int       // signal → consecutive errors
	queries   map[string][]QueryValue
	extended  int
	routed    bool // some look had router counts
}

// newErrorTest returns the configured sequential test, with no data.
func newErrorTest(cfg Config) (errorTest, error) {
	if cfg.Test == TestMixture {
		t, err := stats.NewErrorRateTest(stats.SequentialConfig{Alpha: cfg.Alpha})
		return mixtureTest{t}, err
	}
	return stats.NewRobustErrorTest(stats.RobustConfig{Alpha: cfg.Alpha, Block: cfg.Block})
}

// NewJudge returns a judge for cfg; bounds are the latency histogram's
// bucket bounds.
func NewJudge(cfg Config, bounds []time.Duration) (*Judge, error) {
	t, err := newErrorTest(cfg)
	if err != nil {
		return nil, err
	}
	return &Judge{cfg: cfg, bounds: bounds, seq: t, step: -1,
		breach: map[string]time.Time{}, probeRun: map[string]int{}, sigErrs: map[string]int{}, queries: map[string][]QueryValue{}}, nil
}

// Step starts judging step n (a canary step or a rolling batch); the
// metric comparison and the extension count start again, the sequential
// test and trigger breaches carry on.
func (j *Judge) Step(n int, at time.Time) {
	if n == j.step {
		return
	}
	j.step, j.stepStart, j.extended = n, at, 0
	j.queries = map[string][]QueryValue{}
}

// Extended records that the current step's soak was extended.
func (j *Judge) Extended() { j.extended++ }

// Observe adds a look. Looks must come in time order; counters that went
// down (the router restarted) start the sequential test again.
func (j *Judge) Observe(l Look) {
	if n := len(j.looks); n > 0 && (l.Candidate.Requests < j.looks[n-1].Candidate.Requests || l.Baseline.Requests < j.looks[n-1].Baseline.Requests) {
		j.looks = nil
		j.seqDone = false
	}
	j.looks = append(j.looks, l)
	j.routed = j.routed || l.Routed
	keep := l.At.Add(-max(j.cfg.Window, l.At.Sub(j.stepStart)) - time.Second)
	i := 0
	for i < len(j.looks)-1 && j.looks[i].At.Before(keep) {
		i++
	}
	j.looks = j.looks[i:]
	if len(j.looks) > maxLooks {
		j.looks = j.looks[len(j.looks)-maxLooks:]
	}
	j.sequential(l)
}

func (j *Judge) sequential(l Look) {
	if !j.seqDone {
		t, err := newErrorTest(j.cfg)
		if err != nil {
			return // the configuration was checked by NewJudge
		}
		j.seq, j.seqBase, j.seqDone, j.seqStart = t, l, true, l.At
		return
	}
	c, b := l.Candidate, l.Baseline
	res, err := j.seq.Update(l.At.Sub(j.seqStart),
		int64(c.Errors-j.seqBase.Candidate.Errors), int64(c.Requests-j.seqBase.Candidate.Requests),
		int64(b.Errors-j.seqBase.Baseline.Errors), int64(b.Requests-j.seqBase.Baseline.Requests))
	if err == nil {
		j.seqRes = res
	}
}

// delta returns the counters between the look at or before from and the
// newest look.
func (j *Judge) delta(from time.Time) (c, b Counters, span time.Duration, ok bool) {
	if len(j.looks) < 2 {
		return c, b, 0, false
	}
	last := j.looks[len(j.looks)-1]
	first := j.looks[0]
	for _, l := range j.looks {
		if l.At.After(from) {
			break
		}
		first = l
	}
	return sub(last.Candidate, first.Candidate), sub(last.Baseline, first.Baseline), last.At.Sub(first.At), true
}

func sub(a, b Counters) Counters {
	d := Counters{Requests: a.Requests - b.Requests, Errors: a.Errors - b.Errors, LatencySum: a.LatencySum - b.LatencySum, Buckets: make([]uint64, len(a.Buckets))}
	for i := range a.Buckets {
		d.Buckets[i] = a.Buckets[i]
		if i < len(b.Buckets) {
			d.Buckets[i] -= b.Buckets[i]
		}
	}
	return d
}

func rate(c Counters) float64 {
	if c.Requests == 0 {
		return math.NaN()
	}
	return float64(c.Errors) / float64(c.Requests)
}

// quantile estimates the q-quantile of c's histogram in milliseconds.
func (j *Judge) quantile(c Counters, q float64) float64 {
	var n uint64
	for _, x := range c.Buckets {
		n += x
	}
	if n == 0 || len(j.bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	var cum float64
	for i, x := range c.Buckets {
		if x == 0 {
			continue
		}
		if cum+float64(x) >= rank {
			if i >= len(j.bounds) {
				return ms(j.bounds[len(j.bounds)-1])
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = j.bounds[i-1]
			}
			return ms(lo) + (rank-cum)/float64(x)*ms(j.bounds[i]-lo)
		}
		cum += float64(x)
	}
	return ms(j.bounds[len(j.bounds)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// minQuerySamples is how many values each query needs in a step judged
// without router counts.
const minQuerySamples = 3

// maxLooks bounds the looks a judge keeps (six hours at one a second).
const maxLooks = 6 * 3600

// minWindowRequests is how many candidate requests a window needs before
// a trigger's condition on it is known.
const minWindowRequests = 10

// Decide judges at time now. stepEnd says the current step's soak is over
// (or the batch has been watched long enough): the judge then gives the
// step's verdict. Otherwise it gives one only when something is wrong.
func (j *Judge) Decide(now time.Time, stepEnd bool, x Extra) Judgement {
	var out Judgement
	// Signals that could not be obtained.
	for name := range j.sigErrs {
		if _, still := x.Errors[name]; !still {
			delete(j.sigErrs, name)
		}
	}
	var failing []string
	for _, name := range sortedKeys(x.Errors) {
		j.sigErrs[name]++
		if j.sigErrs[name] >= j.cfg.MaxSignalErrors {
			failing = append(failing, fmt.Sprintf("%s failed %d times in a row: %s", name, j.sigErrs[name], x.Errors[name]))
			out.Signals = append(out.Signals, verdict.Signal{Name: clip(name, verdict.MaxSignal), Outcome: verdict.Inconclusive, Detail: clip(x.Errors[name], verdict.MaxReason)})
		}
	}
	for name, v := range x.Queries {
		if !math.IsNaN(v.Candidate) && !math.IsNaN(v.Baseline) {
			j.queries[name] = append(j.queries[name], v)
		}
	}
	for _, p := range x.Probes {
		if p.OK {
			j.probeRun[p.Name] = 0
		} else {
			j.probeRun[p.Name]++
		}
	}
	c, b, span, ok := j.delta(now.Add(-j.cfg.Window))
	stepC, stepB, _, _ := j.delta(j.stepStart)
	fired, pending := j.triggers(now, c, b, span, ok, x, &out)
	seq := j.seqRes
	seqSignal := verdict.Signal{Name: "error-rate-sequential", Outcome: verdict.Pass,
		Detail: fmt.Sprintf("%s vs %s baseline, always-valid p = %s", pct(stepC), pct(stepB), pval(seq.PValue))}
	if seq.Decision == stats.Reject {
		seqSignal.Outcome = verdict.Fail
	}

	switch {
	case len(fired) > 0:
		t := fired[0]
		out.Record, out.Outcome, out.Action, out.Confirm, out.Confidence = true, verdict.Fail, t.Action, t.Confirm, 1
		out.Signals = append(out.Signals, seqSignal)
		out.Summary = fmt.Sprintf("trigger %s fired: %s", t.Name, t.detail)
		return j.finish(out)
	case seq.Decision == stats.Reject:
		out.Record, out.Outcome, out.Action, out.Confidence = true, verdict.Fail, j.cfg.ErrorAction, 1-seq.PValue
		out.Signals = append(out.Signals, seqSignal)
		cr := sub(j.looks[len(j.looks)-1].Candidate, j.seqBase.Candidate)
		out.Summary = fmt.Sprintf("error rate %s vs %s baseline over %s requests, p %s (%s sequential test, alpha %g)",
			pct(cr), pct(sub(j.looks[len(j.looks)-1].Baseline, j.seqBase.Baseline)), count(cr.Requests), pvalText(seq.PValue), j.cfg.Test, j.cfg.Alpha)
		out.Reasons = append(out.Reasons, out.Summary)
		return j.finish(out)
	case len(failing) > 0:
		out.Record, out.Outcome, out.Action = true, verdict.Inconclusive, application.ActionPause
		out.Summary = "signals could not be obtained: " + strings.Join(failing, "; ")
		out.Reasons = append(out.Reasons, failing...)
		return j.finish(out)
	case !stepEnd:
		return out
	}
	out.Record = true
	if !j.routed {
		// No router in front of the versions (the Kubernetes runtime):
		// the step is judged by the queries' values, which must be there.
		short := ""
		for _, q := range j.cfg.Queries {
			if n := len(j.queries[q.Name]); n < minQuerySamples {
				short = fmt.Sprintf("query %s has %d values for both versions in this step", q.Name, n)
				break
			}
		}
		if len(j.cfg.Queries) == 0 {
			short = "no router counts this runtime's requests and the template declares no Prometheus queries"
		}
		if short != "" {
			out.Outcome, out.Action = verdict.Inconclusive, application.ActionPause
			out.Summary = short + "; nothing to judge the step by, and no data is never a pass"
			out.Reasons = append(out.Reasons, out.Summary)
			return j.finish(out)
		}
	} else {
		out.Signals = append(out.Signals, seqSignal)
	}
	if j.routed && stepC.Requests < uint64(j.cfg.MinRequests) {
		out.Outcome, out.Action = verdict.Inconclusive, application.ActionPause
		out.Summary = fmt.Sprintf("the candidate served %s requests in this step, fewer than the %d needed to judge it; no data is never a pass", count(stepC.Requests), j.cfg.MinRequests)
		out.Reasons = append(out.Reasons, out.Summary)
		return j.finish(out)
	}
	score, critical, explain := j.compare(&out, x)
	out.Score = &score
	switch {
	case critical != "":
		out.Outcome, out.Action = verdict.Fail, j.cfg.ErrorAction
		out.Summary = fmt.Sprintf("critical metric %s failed: %s", critical, explain)
	case score < j.cfg.Marginal:
		out.Outcome, out.Action = verdict.Fail, j.cfg.ErrorAction
		out.Summary = fmt.Sprintf("score %.0f below the marginal threshold %.0f: %s", score, j.cfg.Marginal, explain)
	case score < j.cfg.Pass || len(pending) > 0:
		out.Outcome = verdict.Inconclusive
		why := fmt.Sprintf("score %.0f between marginal %.0f and pass %.0f", score, j.cfg.Marginal, j.cfg.Pass)
		if score >= j.cfg.Pass {
			why = "trigger " + strings.Join(pending, ", ") + " in breach, not yet for long enough"
		}
		if j.extended < j.cfg.MaxExtensions {
			out.Action = application.ActionExtend
			out.Summary = why + ": soak extended; " + explain
		} else {
			out.Action = application.ActionPause
			out.Summary = why + " after " + fmt.Sprint(j.extended) + " extension(s): paused for a person; " + explain
		}
	default:
		out.Outcome, out.Action = verdict.Pass, application.ActionContinue
		out.Summary = fmt.Sprintf("score %.0f: %s", score, explain)
	}
	out.Reasons = append(out.Reasons, out.Summary)
	return j.finish(out)
}

func (j *Judge) finish(out Judgement) Judgement {
	out.Summary = clip(out.Summary, verdict.MaxSummary)
	if len(out.Reasons) > verdict.MaxReasons {
		out.Reasons = out.Reasons[:verdict.MaxReasons]
	}
	for i, r := range out.Reasons {
		out.Reasons[i] = clip(r, verdict.MaxReason)
	}
	// One signal per name, the first kept.
	seen := map[string]bool{}
	sigs := out.Signals[:0]
	for _, s := range out.Signals {
		if !seen[s.Name] {
			seen[s.Name] = true
			s.Detail = clip(s.Detail, verdict.MaxReason)
			sigs = append(sigs, s)
		}
	}
	out.Signals = sigs
	if len(out.Signals) > verdict.MaxSignals {
		out.Signals = out.Signals[:verdict.MaxSignals]
	}
	out.Confidence = math.Max(0, math.Min(1, out.Confidence))
	return out
}

// triggers evaluates every trigger at now; it returns those that fired
// (their condition held for their Hold) and the names of those in breach
// but not yet for long enough, and adds a signal and reasons per trigger.
func (j *Judge) triggers(now time.Time, c, b Counters, span time.Duration, ok bool, x Extra, out *Judgement) (fired []firedTrigger, pending []string) {
	for _, t := range j.cfg.Triggers {
		holds, known, detail := j.condition(t, c, b, span, ok, x)
		sig := verdict.Signal{Name: "trigger:" + t.Name, Outcome: verdict.Pass, Detail: detail}
		switch {
		case !known:
			// Without data the breach neither ends nor fires.
			sig.Outcome = verdict.Inconclusive
		case !holds:
			delete(j.breach, t.Name)
		default:
			since, was := j.breach[t.Name]
			if !was {
				since = now
				j.breach[t.Name] = now
			}
			if now.Sub(since) >= t.Hold {
				sig.Outcome = verdict.Fail
				sig.Detail = fmt.Sprintf("%s, for %s (limit %s)", detail, now.Sub(since).Round(time.Second), cmp.Or(t.For, "at once"))
				fired = append(fired, firedTrigger{t, sig.Detail})
				out.Reasons = append(out.Reasons, "trigger "+t.Name+": "+sig.Detail)
			} else {
				pending = append(pending, t.Name)
				sig.Detail += fmt.Sprintf(" (in breach for %s of %s)", now.Sub(since).Round(time.Second), t.For)
			}
		}
		if known || sig.Detail != "" {
			out.Signals = append(out.Signals, sig)
		}
	}
	// The strongest action first.
	slices.SortStableFunc(fired, func(a, b firedTrigger) int {
		return cmp.Compare(slices.Index(application.Actions, b.Action), slices.Index(application.Actions, a.Action))
	})
	return fired, pending
}

// firedTrigger is a trigger that fired, with what was measured.
type firedTrigger struct {
	Trigger
	detail string
}

// condition reports whether t's condition holds now, whether it could be
// known, and a sentence saying what was measured.
func (j *Judge) condition(t Trigger, c, b Counters, span time.Duration, ok bool, x Extra) (holds, known bool, detail string) {
	over := fmt.Sprintf("over %s", span.Round(time.Second))
	switch m := t.Metric; {
	case m == application.MetricErrorRate:
		if !ok || c.Requests < minWindowRequests || b.Requests == 0 {
			return false, false, fmt.Sprintf("error rate: too few requests (%d candidate, %d baseline) %s", c.Requests, b.Requests, over)
		}
		cv, bv := 100*rate(c), 100*rate(b)
		holds = exceeds(t, cv, bv)
		return holds, true, fmt.Sprintf("error rate %.1f%% vs %.1f%% baseline over %s requests (%s)", cv, bv, count(c.Requests), limitText(t, "%", "points"))
	case m == application.MetricLatencyP99:
		if !ok || c.Requests < minWindowRequests || b.Requests < minWindowRequests {
			return false, false, fmt.Sprintf("latency p99: too few requests (%d candidate, %d baseline) %s", c.Requests, b.Requests, over)
		}
		cv, bv := j.quantile(c, 0.99), j.quantile(b, 0.99)
		detail = fmt.Sprintf("latency p99 %.1f ms vs %.1f ms baseline %s (%s)", cv, bv, over, limitText(t, " ms", ""))
		holds = exceeds(t, cv, bv)
		if holds && t.Above != nil {
			// The p99 of a few requests is their slowest one, so one slow
			// request would put it over: the breach needs more than 1% of
			// the candidate's requests slower than the limit, beyond what
			// chance gives a version whose own p99 is at the limit.
			lim := aboveLimit(t, bv)
			slow := j.countAbove(c, lim)
			if p := binomialTail(c.Requests, slow, 0.01); p >= p99Alpha {
				holds = false
				detail += fmt.Sprintf("; not yet a breach: %d of %d requests slower than %.1f ms is not more than 1%% with %.0f%% confidence (p = %.2f)", slow, c.Requests, lim, 100*(1-p99Alpha), p)
			}
		}
		return holds, true, detail
	case m == application.MetricUnhealthy:
		l := j.looks[len(j.looks)-1]
		if l.Instances == 0 {
			return false, false, ""
		}
		share := 100 * float64(l.Instances-min(l.Healthy, l.Instances)) / float64(l.Instances)
		return share > *t.Above.Percent, true, fmt.Sprintf("%d of %d candidate instances fail their health check (%.0f%%, limit %.0f%%)", l.Instances-min(l.Healthy, l.Instances), l.Instances, share, *t.Above.Percent)
	case m == application.MetricProbes || strings.HasPrefix(m, "probe:"):
		name, one := strings.CutPrefix(m, "probe:")
		worst, worstName := -1, ""
		for _, p := range j.cfg.Probes {
			if one && p.Name != name {
				continue
			}
			if n := j.probeRun[p.Name]; n > worst {
				worst, worstName = n, p.Name
			}
		}
		if worst < 0 {
			return false, false, "" // no such probe declared: the trigger is inactive
		}
		return worst > t.Failures, true, fmt.Sprintf("probe %s failed %d times in a row (limit %d)", worstName, worst, t.Failures)
	case strings.HasPrefix(m, "query:"):
		name := strings.TrimPrefix(m, "query:")
		v, have := x.Queries[name]
		if !have || math.IsNaN(v.Candidate) || math.IsNaN(v.Baseline) {
			return false, false, ""
		}
		return exceeds(t, v.Candidate, v.Baseline), true, fmt.Sprintf("%s %.4g vs %.4g baseline (%s)", name, v.Candidate, v.Baseline, limitText(t, "", ""))
	}
	return false, false, ""
}

// p99Alpha is the chance that a latency-p99 trigger counts a candidate
// whose p99 is at its limit as in breach, at one look.
const p99Alpha = 0.05

// aboveLimit returns the value an Above threshold of t lets the
// candidate reach when the baseline's is bv.
func aboveLimit(t Trigger, bv float64) float64 {
	switch th := t.Above; {
	case th.Points != nil:
		return bv + *th.Points
	case th.Percent != nil:
		return max(bv*(1+*th.Percent/100), bv)
	default:
		return *th.Value
	}
}

// countAbove returns how many of c's requests took longer than lim
// milliseconds, from its histogram (spread evenly within the bucket that
// holds lim, as quantile does), rounded down.
func (j *Judge) countAbove(c Counters, lim float64) uint64 {
	var above float64
	for i, x := range c.Buckets {
		if x == 0 {
			continue
		}
		lo, hi := 0.0, math.Inf(1)
		if i > 0 && i-1 < len(j.bounds) {
			lo = ms(j.bounds[i-1])
		}
		if i < len(j.bounds) {
			hi = ms(j.bounds[i])
		}
		switch {
		case lo >= lim:
			above += float64(x)
		case hi > lim && !math.IsInf(hi, 1):
			above += float64(x) * (hi - lim) / (hi - lo)
		case hi > lim:
			above += float64(x) // the open last bucket: all of it may be slower
		}
	}
	return uint64(above)
}

// binomialTail returns P(X >= k) for X binomial with n trials of
// probability p: the chance of k or more slow requests among n when each
// is slow with probability p.
func binomialTail(n, k uint64, p float64) float64 {
	if k == 0 {
		return 1
	}
	if k > n {
		return 0
	}
	mean := float64(n) * p
	if float64(k) > mean+12*math.Sqrt(mean*(1-p))+12 {
		return 0 // far beyond the mean: below 1e-9
	}
	// P(X < k): the log of each term from the one before, starting at
	// P(X = 0) = (1-p)^n (in log space: it underflows for large n).
	odds := math.Log(p) - math.Log1p(-p)
	lt := float64(n) * math.Log1p(-p)
	below := 0.0
	for i := uint64(0); i < k; i++ {
		below += math.Exp(lt)
		lt += math.Log(float64(n-i)/float64(i+1)) + odds
	}
	return max(0, 1-below)
}

// exceeds applies t's threshold to the candidate's value cv and the
// baseline's bv.
func exceeds(t Trigger, cv, bv float64) bool {
	if th := t.Above; th != nil {
		switch {
		case th.Points != nil:
			return cv > bv+*th.Points
		case th.Percent != nil:
			return cv > bv*(1+*th.Percent/100) && cv > bv
		default:
			return cv > *th.Value
		}
	}
	th := t.Below
	switch {
	case th.Points != nil:
		return cv < bv-*th.Points
	case th.Percent != nil:
		return cv < bv*(1-*th.Percent/100)
	default:
		return cv < *th.Value
	}
}

func limitText(t Trigger, unit, points string) string {
	word, th := "above", t.Above
	if th == nil {
		word, th = "below", t.Below
	}
	switch {
	case th.Points != nil:
		return fmt.Sprintf("limit: %s baseline by %g %s", word, *th.Points, points)
	case th.Percent != nil:
		return fmt.Sprintf("limit: %s baseline by %g%%", word, *th.Percent)
	default:
		return fmt.Sprintf("limit: %s %g%s", word, *th.Value, unit)
	}
}

// compare classifies each metric of the current step with the
// Mann–Whitney classifier and scores them; it returns the score, the name
// of a failed critical metric ("" for none) and an explanation.
func (j *Judge) compare(out *Judgement, x Extra) (score float64, critical, explain string) {
	cls := stats.ClassifierConfig{Confidence: j.cfg.Confidence, Tolerance: j.cfg.Tolerance, Band: j.cfg.Band}
	type result struct {
		m      Metric
		passed bool
		nodata bool
	}
	var results []result
	var parts []string
	for _, m := range j.cfg.Metrics {
		cand, base := j.samples(m.Name)
		cfg := cls
		switch m.Direction {
		case "decrease":
			cfg.Direction = stats.Decrease
		case "either":
			cfg.Direction = stats.Either
		default:
			cfg.Direction = stats.Increase
		}
		r, err := stats.Classify(cand, base, cfg)
		sig := verdict.Signal{Name: "metric:" + m.Name}
		switch {
		case err != nil:
			sig.Outcome, sig.Detail = verdict.Inconclusive, err.Error()
			results = append(results, result{m: m, nodata: true})
		case r.Class == stats.NoData:
			sig.Outcome, sig.Detail = verdict.Inconclusive, fmt.Sprintf("no data (%d candidate, %d baseline samples)", len(cand), len(base))
			results = append(results, result{m: m, nodata: true})
		case r.Class == stats.Pass:
			sig.Outcome = verdict.Pass
			sig.Detail = fmt.Sprintf("%s: no shift beyond tolerance (median %s vs %s, %d samples, p = %s)", m.Name, num(median(cand)), num(median(base)), len(cand), pval(r.P))
			results = append(results, result{m: m, passed: true})
		default:
			sig.Outcome = verdict.Fail
			sig.Detail = fmt.Sprintf("%s %s: median %s vs %s baseline over %d samples, p %s", m.Name, strings.ToLower(r.Class.String()), num(median(cand)), num(median(base)), len(cand), pvalText(r.P))
			results = append(results, result{m: m})
			parts = append(parts, sig.Detail)
			out.Confidence = math.Max(out.Confidence, 1-r.P)
			if m.Critical && critical == "" {
				critical = m.Name
			}
		}
		out.Signals = append(out.Signals, sig)
	}
	if !j.cfg.Logs.Disabled && x.LogLines > 0 {
		sig := verdict.Signal{Name: "log-patterns", Outcome: verdict.Pass, Detail: fmt.Sprintf("no new error template in %s candidate lines", count(uint64(x.LogLines)))}
		passed := len(x.Logs) == 0
		if !passed {
			sig.Outcome = verdict.Fail
			var fs []string
			for _, f := range x.Logs[:min(3, len(x.Logs))] {
				fs = append(fs, f.String())
			}
			sig.Detail = strings.Join(fs, "; ")
			parts = append(parts, sig.Detail)
			for _, f := range x.Logs[:min(3, len(x.Logs))] {
				if len(f.Examples) > 0 {
					out.Reasons = append(out.Reasons, "example: "+f.Examples[0])
				}
			}
			if j.cfg.Logs.Critical && critical == "" {
				critical = "log-patterns"
			}
		}
		out.Signals = append(out.Signals, sig)
		results = append(results, result{m: Metric{Name: "log-patterns", Group: "logs"}, passed: passed})
	}
	// Score: each group's share of passing metrics, weighted.
	type group struct{ pass, total int }
	groups := map[string]*group{}
	for _, r := range results {
		if r.nodata {
			continue
		}
		g := groups[r.m.Group]
		if g == nil {
			g = &group{}
			groups[r.m.Group] = g
		}
		g.total++
		if r.passed {
			g.pass++
		}
	}
	var sum, weights float64
	for name, g := range groups {
		w := j.cfg.Groups[name]
		if w == 0 {
			w = 1
		}
		sum += w * float64(g.pass) / float64(g.total)
		weights += w
	}
	if weights == 0 {
		return 0, critical, "no metric had data in this step"
	}
	score = math.Round(100*sum/weights*10) / 10
	if out.Confidence == 0 {
		out.Confidence = score / 100
	}
	if len(parts) == 0 && !j.routed {
		parts = append(parts, "every query within tolerance")
	}
	if len(parts) == 0 {
		c, b, _, _ := j.delta(j.stepStart)
		parts = append(parts, fmt.Sprintf("error rate %s vs %s baseline over %s requests; every metric within tolerance", pct(c), pct(b), count(c.Requests)))
	}
	return score, critical, strings.Join(parts, "; ")
}

// samples returns the candidate's and the baseline's samples of a metric
// in the current step: per-look error rates and mean latencies of the
// looks where both versions served requests, or a query's values.
func (j *Judge) samples(name string) (cand, base []float64) {
	switch name {
	case "error-rate", "latency":
		for i := 1; i < len(j.looks); i++ {
			if j.looks[i-1].At.Before(j.stepStart) {
				continue
			}
			c, b := sub(j.looks[i].Candidate, j.looks[i-1].Candidate), sub(j.looks[i].Baseline, j.looks[i-1].Baseline)
			if c.Requests == 0 || b.Requests == 0 {
				continue
			}
			if name == "error-rate" {
				cand, base = append(cand, rate(c)), append(base, rate(b))
			} else {
				cand = append(cand, ms(c.LatencySum)/float64(c.Requests))
				base = append(base, ms(b.LatencySum)/float64(b.Requests))
			}
		}
	default:
		for _, v := range j.queries[name] {
			cand, base = append(cand, v.Candidate), append(base, v.Baseline)
		}
	}
	return cand, base
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pct(c Counters) string {
	if c.Requests == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*rate(c))
}

func num(v float64) string { return fmt.Sprintf("%.4g", v) }

func pval(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func pvalText(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return fmt.Sprintf("= %.3f", p)
}

// count writes n with thousands separators.
func count(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
