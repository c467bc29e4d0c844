package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/airlock-dev/airlock/internal/analysis/stats"
)

// The judges, in report order.
const (
	judgeFixed = iota
	judgeKayenta
	judgeSequential
	judgeRobust
	numJudges
)

var judgeNames = [numJudges]string{
	"fixed rule (5 min window)",
	"Kayenta-style (Mann-Whitney per interval)",
	"sequential (mSPRT errors + MW latency per interval)",
	"robust sequential (block test errors + MW latency per interval)",
}

// What made a judge roll back.
const (
	firedErrors  = "errors"
	firedLatency = "latency"
	firedBoth    = "errors+latency"
)

// ---- fixed rule ----

// The fixed rule's latency histogram: log-spaced buckets 2% wide from
// 1 ms, as a Prometheus histogram with fine buckets would give it.
// Latencies beyond the last bucket (about 1,000 s) count in it.
const histBuckets = 700

var histStep = math.Log(1.02)

func bucketOf(logLatMS float64) int {
	b := int(logLatMS / histStep)
	return max(0, min(b, histBuckets-1))
}

// bucketValue is the geometric middle of bucket b, in ms.
func bucketValue(b int) float64 { return math.Exp((float64(b) + 0.5) * histStep) }

// fixedRule is the seeds' table: roll back when, over the last window
// seconds, the candidate's error rate exceeds the baseline's by more than
// errPoints, or its p99 latency exceeds the baseline's by more than
// latIncrease (1 = +100%). It is checked every second once a whole window
// has been seen, so the earliest possible rollback is at window seconds.
// Index 0 is the candidate, 1 the baseline. Not safe for concurrent use.
type fixedRule struct {
	window      int
	errPoints   float64
	latIncrease float64

	t       int
	ringErr [2][]int
	ringReq [2][]int
	ringBk  [2][][]uint16
	sumErr  [2]int
	sumReq  [2]int
	hist    [2][]int32
}

func newFixedRule(window int, errPoints, latIncrease float64) *fixedRule {
	f := &fixedRule{window: window, errPoints: errPoints, latIncrease: latIncrease}
	for v := range 2 {
		f.ringErr[v] = make([]int, window)
		f.ringReq[v] = make([]int, window)
		f.ringBk[v] = make([][]uint16, window)
		f.hist[v] = make([]int32, histBuckets)
	}
	return f
}

// reset forgets everything seen, keeping the buffers.
func (f *fixedRule) reset() {
	f.t = 0
	for v := range 2 {
		clear(f.ringErr[v])
		clear(f.ringReq[v])
		for i := range f.ringBk[v] {
			f.ringBk[v][i] = f.ringBk[v][i][:0]
		}
		clear(f.hist[v])
		f.sumErr[v], f.sumReq[v] = 0, 0
	}
}

// observe adds one second of traffic and drops the second that leaves the
// window.
func (f *fixedRule) observe(s *[2]second) {
	slot := f.t % f.window
	for v := range 2 {
		f.sumErr[v] += s[v].errors - f.ringErr[v][slot]
		f.sumReq[v] += len(s[v].logLat) - f.ringReq[v][slot]
		f.ringErr[v][slot] = s[v].errors
		f.ringReq[v][slot] = len(s[v].logLat)
		for _, b := range f.ringBk[v][slot] {
			f.hist[v][b]--
		}
		bk := f.ringBk[v][slot][:0]
		for _, l := range s[v].logLat {
			b := bucketOf(l)
			f.hist[v][b]++
			bk = append(bk, uint16(b))
		}
		f.ringBk[v][slot] = bk
	}
	f.t++
}

// check reports whether the rule fires now, and on what.
func (f *fixedRule) check() (bool, string) {
	if f.t < f.window || f.sumReq[0] == 0 || f.sumReq[1] == 0 {
		return false, ""
	}
	errHigh := float64(f.sumErr[0])/float64(f.sumReq[0]) >
		float64(f.sumErr[1])/float64(f.sumReq[1])+f.errPoints
	latHigh := f.p99(0) > f.p99(1)*(1+f.latIncrease)
	switch {
	case errHigh && latHigh:
		return true, firedBoth
	case errHigh:
		return true, firedErrors
	case latHigh:
		return true, firedLatency
	}
	return false, ""
}

// p99 of version v over the window, from the histogram (nearest rank,
// the bucket's middle).
func (f *fixedRule) p99(v int) float64 {
	rank := int32(math.Ceil(0.99 * float64(f.sumReq[v])))
	var cum int32
	for b, c := range f.hist[v] {
		cum += c
		if cum >= rank {
			return bucketValue(b)
		}
	}
	return bucketValue(histBuckets - 1)
}

// ---- Kayenta-style and sequential ----

// config is what the judges are told; see the flags in main.go.
type config struct {
	rate        int // requests per second per version
	bursts      Bursts
	duration    int // seconds per run
	interval    int // seconds; Kayenta's analysis interval and the fixed window
	sampleEvery int // keep every n-th request's latency for Mann–Whitney
	classifier  stats.ClassifierConfig
	alpha       float64
	robust      stats.RobustConfig // the robust judge's error test
	pass        float64            // Kayenta pass threshold, 0–100
	errWeight   float64            // Kayenta metric weights
	latWeight   float64
	errPoints   float64 // fixed rule
	latIncrease float64 // fixed rule
}

// outcome is one run: when each judge first rolled back (seconds after
// the start, 0 = never) and on which metric.
type outcome struct {
	At  [numJudges]int32
	Why [numJudges]string
}

func (o *outcome) fire(j, t int, why string) {
	if o.At[j] == 0 {
		o.At[j], o.Why[j] = int32(t), why
	}
}

func (o *outcome) all() bool {
	for _, t := range o.At {
		if t == 0 {
			return false
		}
	}
	return true
}

// workspace holds one worker's buffers, reused from run to run.
type workspace struct {
	fixed   *fixedRule
	sec     [2]second
	lat     [2][]float64 // sampled latencies (ms) of the current interval
	errRate [2][]float64 // per-second error rates of the current interval
}

func newWorkspace(c config) *workspace {
	return &workspace{fixed: newFixedRule(c.interval, c.errPoints, c.latIncrease)}
}

// runOne simulates one canary of scenario sc for c.duration seconds of
// simulated time, checking the four judges every second, and stops early
// once all four have rolled back. The run is a pure function of
// (sc, seed, stream).
func runOne(c config, sc Scenario, seed, stream uint64, ws *workspace) (outcome, error) {
	r := rand.New(rand.NewPCG(seed, stream))
	tr := newTraffic(sc, c.rate, c.bursts, r)
	ws.fixed.reset()
	for v := range 2 {
		ws.lat[v], ws.errRate[v] = ws.lat[v][:0], ws.errRate[v][:0]
	}
	seq, err := stats.NewErrorRateTest(stats.SequentialConfig{Alpha: c.alpha})
	if err != nil {
		return outcome{}, err
	}
	rob, err := stats.NewRobustErrorTest(c.robust)
	if err != nil {
		return outcome{}, err
	}
	var o outcome
	var cum [2][2]int64 // [version]{errors, requests}
	var sampled [2]int
	for t := 1; t <= c.duration; t++ {
		tr.next(&ws.sec)
		ws.fixed.observe(&ws.sec)
		for v := range 2 {
			s := &ws.sec[v]
			cum[v][0] += int64(s.errors)
			cum[v][1] += int64(len(s.logLat))
			if len(s.logLat) > 0 {
				ws.errRate[v] = append(ws.errRate[v], float64(s.errors)/float64(len(s.logLat)))
			}
			for _, l := range s.logLat {
				if sampled[v]%c.sampleEvery == 0 {
					ws.lat[v] = append(ws.lat[v], math.Exp(l))
				}
				sampled[v]++
			}
		}

		if o.At[judgeFixed] == 0 {
			if ok, why := ws.fixed.check(); ok {
				o.fire(judgeFixed, t, why)
			}
		}
		if o.At[judgeSequential] == 0 {
			res, err := seq.Update(cum[0][0], cum[0][1], cum[1][0], cum[1][1])
			if err != nil {
				return outcome{}, err
			}
			if res.Decision == stats.Reject {
				o.fire(judgeSequential, t, firedErrors)
			}
		}
		if o.At[judgeRobust] == 0 {
			res, err := rob.Update(time.Duration(t)*time.Second, cum[0][0], cum[0][1], cum[1][0], cum[1][1])
			if err != nil {
				return outcome{}, err
			}
			if res.Decision == stats.Reject {
				o.fire(judgeRobust, t, firedErrors)
			}
		}

		if t%c.interval == 0 {
			if err := judgeInterval(c, ws, t, &o); err != nil {
				return outcome{}, err
			}
			for v := range 2 {
				ws.lat[v], ws.errRate[v] = ws.lat[v][:0], ws.errRate[v][:0]
				sampled[v] = 0
			}
		}
		if o.all() {
			break
		}
	}
	return o, nil
}

// judgeInterval runs the end-of-interval judgements: Kayenta's score over
// both metrics, and the sequential judge's latency check (the package has
// no sequential test for latency, so it is the same fixed-interval
// Mann–Whitney classification). The latency classification, the costly
// one, is only computed when a judge still needs it.
func judgeInterval(c config, ws *workspace, t int, o *outcome) error {
	needK, needS, needR := o.At[judgeKayenta] == 0, o.At[judgeSequential] == 0, o.At[judgeRobust] == 0
	if !needK && !needS && !needR {
		return nil
	}
	var latClass stats.Classification
	latDone := false
	latency := func() (stats.Classification, error) {
		if !latDone {
			res, err := stats.Classify(ws.lat[0], ws.lat[1], c.classifier)
			if err != nil {
				return 0, err
			}
			latClass, latDone = res.Class, true
		}
		return latClass, nil
	}
	if needK {
		res, err := stats.Classify(ws.errRate[0], ws.errRate[1], c.classifier)
		if err != nil {
			return err
		}
		errHigh := res.Class == stats.High
		latHigh := false
		// The error metric is critical: High fails the verdict whatever
		// the score, so latency need not be classified.
		if !errHigh {
			lc, err := latency()
			if err != nil {
				return err
			}
			latHigh = lc == stats.High
		}
		if ok, _ := kayentaVerdict(c, errHigh, latHigh); !ok {
			why := firedErrors
			if latHigh {
				why = firedLatency
			}
			o.fire(judgeKayenta, t, why)
		}
	}
	for _, jn := range [...]struct {
		j    int
		need bool
	}{{judgeSequential, needS}, {judgeRobust, needR}} {
		if !jn.need {
			continue
		}
		lc, err := latency()
		if err != nil {
			return err
		}
		if lc == stats.High {
			o.fire(jn.j, t, firedLatency)
		}
	}
	return nil
}

// kayentaVerdict scores an interval as Kayenta does: the weighted share of
// metrics classified Pass, 0–100; the verdict fails when the score is
// below the pass threshold or a critical metric (the error rate) is High.
// With two metrics of equal weight the score is 100, 50 or 0.
func kayentaVerdict(c config, errHigh, latHigh bool) (bool, float64) {
	total, passed := c.errWeight+c.latWeight, 0.0
	if !errHigh {
		passed += c.errWeight
	}
	if !latHigh {
		passed += c.latWeight
	}
	score := 100 * passed / total
	return !errHigh && score >= c.pass, score
}
