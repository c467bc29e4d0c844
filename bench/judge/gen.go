package main

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Traffic model. Latencies are in milliseconds and generated as their
// natural logarithm, so that a latency regression (every request ×f) is an
// addition and the fixed rule's histogram bucket needs no log per request.
const (
	// baseErrorRate is the error rate of a healthy version, bursty or not.
	baseErrorRate = 0.01

	// Log-normal latency: median 100 ms, σ 0.5 (p99 = 320 ms).
	lnMedianMS = 100.0
	lnSigma    = 0.5

	// The heavy-tailed mixture: 95% the log-normal above, 5% Pareto with
	// minimum 150 ms and shape 1.5 (infinite variance; p99 ≈ 420 ms).
	paretoShare = 0.05
	paretoMinMS = 150.0
	paretoShape = 1.5

	// geGoodRate is the error rate outside bursts.
	geGoodRate = 0.005
)

// Bursts are Gilbert–Elliott errors: a two-state Markov chain stepped once
// a second. Good: 0.5% errors; bad: BadRate (default 10%) for a mean
// MeanBadSec (default 5 s). The chance of entering the bad state is chosen
// so that the stationary error rate is baseErrorRate: with the defaults
// π_bad = (1% − 0.5%) / (10% − 0.5%) ≈ 5.3%, a mean good spell of about
// 90 s.
type Bursts struct {
	BadRate    float64 `json:"badRate"`
	MeanBadSec float64 `json:"meanBadSeconds"`
}

// DefaultBursts are the bursts of the report's figures.
var DefaultBursts = Bursts{BadRate: 0.10, MeanBadSec: 5}

// validate reports whether the bursts can average baseErrorRate.
func (b Bursts) validate() error {
	if !(b.BadRate > baseErrorRate && b.BadRate <= 1) || !(b.MeanBadSec >= 1) {
		return fmt.Errorf("bursts of %g errors for %g s: want a rate in (%g, 1] and at least 1 s", b.BadRate, b.MeanBadSec, baseErrorRate)
	}
	return nil
}

// transitions returns the per-second probabilities of leaving and of
// entering the bad state.
func (b Bursts) transitions() (leave, enter float64) {
	leave = 1 / b.MeanBadSec
	piBad := (baseErrorRate - geGoodRate) / (b.BadRate - geGoodRate)
	return leave, leave * piBad / (1 - piBad)
}

// LatencyModel is the distribution of a healthy version's latencies.
type LatencyModel string

// ErrorModel is how a healthy version's errors arrive.
type ErrorModel string

const (
	LogNormal LatencyModel = "lognormal"
	ParetoMix LatencyModel = "pareto-mix"

	// IID: every request fails independently with baseErrorRate.
	IID ErrorModel = "iid"
	// BurstyShared: one Gilbert–Elliott chain per run drives both
	// versions (a shared dependency failing in bursts).
	BurstyShared ErrorModel = "bursty-shared"
	// BurstyIndependent: each version has its own chain (bursts local to
	// one version's instances), so the versions' rates agree only on
	// average.
	BurstyIndependent ErrorModel = "bursty-independent"
)

// drawLogLatency returns the natural log of one latency in ms.
func drawLogLatency(r *rand.Rand, m LatencyModel) float64 {
	if m == ParetoMix && r.Float64() < paretoShare {
		// Inverse CDF: x = xm · U^(−1/α), U in (0, 1].
		return math.Log(paretoMinMS) - math.Log(1-r.Float64())/paretoShape
	}
	return math.Log(lnMedianMS) + lnSigma*r.NormFloat64()
}

// geChain is one Gilbert–Elliott error process.
type geChain struct{ bad bool }

// step moves the chain one second on.
func (g *geChain) step(r *rand.Rand, leave, enter float64) {
	if g.bad {
		g.bad = r.Float64() >= leave
	} else {
		g.bad = r.Float64() < enter
	}
}

// Scenario is one kind of canary: how the baseline behaves and what the
// candidate changes. A healthy scenario changes nothing.
type Scenario struct {
	Name    string       `json:"name"`
	Healthy bool         `json:"healthy"`
	Latency LatencyModel `json:"latency"`
	Errors  ErrorModel   `json:"errors"`
	// ErrorAdd is added to the candidate's error probability of every
	// request (0.05 = +5 points).
	ErrorAdd float64 `json:"errorAdd,omitempty"`
	// LatencyScale multiplies every candidate latency, so every quantile,
	// p99 included, moves by the same factor (1.5 = p99 +50%).
	LatencyScale float64 `json:"latencyScale,omitempty"`

	id int // place in scenarios(): picks the runs' random streams
}

func (s Scenario) String() string {
	return fmt.Sprintf("%s (%s latency, %s errors)", s.Name, s.Latency, s.Errors)
}

// scenarios are the issue's: healthy candidates, plain and heavy-tailed
// with bursty errors, then the four regressions on plain traffic and the
// +5-point one again on heavy-tailed, bursty traffic.
func scenarios() []Scenario {
	return []Scenario{
		{Name: "healthy", Healthy: true, Latency: LogNormal, Errors: IID},
		{Name: "healthy, heavy tail, shared bursts", Healthy: true, Latency: ParetoMix, Errors: BurstyShared},
		{Name: "healthy, heavy tail, independent bursts", Healthy: true, Latency: ParetoMix, Errors: BurstyIndependent},
		{Name: "errors 1% -> 2%", Latency: LogNormal, Errors: IID, ErrorAdd: 0.01},
		{Name: "errors 1% -> 6%", Latency: LogNormal, Errors: IID, ErrorAdd: 0.05},
		{Name: "errors +5 points, heavy tail, shared bursts", Latency: ParetoMix, Errors: BurstyShared, ErrorAdd: 0.05},
		{Name: "p99 +50%", Latency: LogNormal, Errors: IID, LatencyScale: 1.5},
		{Name: "p99 +100%", Latency: LogNormal, Errors: IID, LatencyScale: 2},
	}
}

// traffic generates one run's requests, one second at a time, for the
// candidate (index 0) and the baseline (index 1). It is deterministic for
// a given rand.Rand and not safe for concurrent use.
type traffic struct {
	sc           Scenario
	rate         int // requests per second per version
	r            *rand.Rand
	bursts       Bursts
	leave, enter float64
	chains       [2]geChain
	logAdd       [2]float64 // log of the latency factor
}

func newTraffic(sc Scenario, rate int, b Bursts, r *rand.Rand) *traffic {
	t := &traffic{sc: sc, rate: rate, r: r, bursts: b}
	t.leave, t.enter = b.transitions()
	if sc.LatencyScale > 0 {
		t.logAdd[0] = math.Log(sc.LatencyScale)
	}
	return t
}

// second is what one version served in one second.
type second struct {
	errors int
	// logLat holds the natural log of each request's latency in ms.
	logLat []float64
}

// next fills out[0] (candidate) and out[1] (baseline) with the next
// second of traffic, reusing their slices.
func (t *traffic) next(out *[2]second) {
	switch t.sc.Errors {
	case BurstyShared:
		t.chains[0].step(t.r, t.leave, t.enter)
		t.chains[1] = t.chains[0]
	case BurstyIndependent:
		t.chains[0].step(t.r, t.leave, t.enter)
		t.chains[1].step(t.r, t.leave, t.enter)
	}
	for v := range out {
		p := baseErrorRate
		if t.sc.Errors != IID {
			p = geGoodRate
			if t.chains[v].bad {
				p = t.bursts.BadRate
			}
		}
		if v == 0 {
			p += t.sc.ErrorAdd
		}
		s := &out[v]
		s.errors = 0
		s.logLat = s.logLat[:0]
		for range t.rate {
			if t.r.Float64() < p {
				s.errors++
			}
			s.logLat = append(s.logLat, drawLogLatency(t.r, t.sc.Latency)+t.logAdd[v])
		}
	}
}
