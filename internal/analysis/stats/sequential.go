package stats

import (
	"errors"
	"fmt"
	"math"
)

// Decision is the state of a sequential test.
type Decision int

const (
	// Continue: not enough evidence yet; keep collecting traffic.
	Continue Decision = iota
	// Reject: the candidate's error rate is higher than the baseline's,
	// with the configured false-rejection bound. Once reached it is final.
	Reject
)

// String returns "continue" or "reject".
func (d Decision) String() string {
	switch d {
	case Continue:
		return "continue"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// DefaultAlpha is the default bound on the probability that a test ever
// rejects a candidate whose error rate is not higher than the baseline's.
const DefaultAlpha = 0.01

// defaultRatios are the error-rate ratios (candidate / baseline) the
// default test mixes, with equal weight.
var defaultRatios = []float64{1.5, 2, 3, 4, 6, 8}

// DefaultRatios returns a copy of the default mixture grid: the ratios of
// candidate to baseline error rate the test is most sensitive to.
func DefaultRatios() []float64 { return append([]float64(nil), defaultRatios...) }

// ErrCounts means the counts passed to Update were inconsistent: negative,
// more errors than requests, or smaller than at the previous update.
var ErrCounts = errors.New("stats: inconsistent error counts")

// SequentialConfig configures an ErrorRateTest. Zero fields take defaults.
type SequentialConfig struct {
	// Alpha bounds the probability of ever rejecting, however often Update
	// is called, when the candidate's error rate is at most the baseline's.
	// In (0, 1); default DefaultAlpha.
	Alpha float64
	// Ratios are the alternatives mixed with equal weight: candidate error
	// rate / baseline error rate, each > 1. Default DefaultRatios().
	Ratios []float64
}

// SequentialResult is the state of an ErrorRateTest after an Update.
type SequentialResult struct {
	Decision Decision
	// PValue is the always-valid p-value: 1 / the largest mixture
	// likelihood ratio seen so far, capped at 1. It only decreases.
	// Rejecting whenever PValue <= a for any a keeps the false-rejection
	// probability at most a.
	PValue float64
	// LogLR is the current log mixture likelihood ratio.
	LogLR float64
	// Errors is the number of errors counted so far in batches where both
	// versions received requests (the errors the test can attribute).
	Errors int64
}

// ErrorRateTest is a mixture sequential probability ratio test (mSPRT)
// that the candidate's error rate is higher than the baseline's. It is fed
// cumulative counters and may be checked after every request or once a
// minute: the false-rejection bound holds either way.
//
// The test conditions on the errors: under the null hypothesis each error
// in a batch of dc candidate and db baseline requests is the candidate's
// with probability dc/(dc+db), whatever the shared error rate is, even if
// it changes from batch to batch (bursts hitting both versions). See
// docs/analysis-stats.md for the derivation.
//
// An ErrorRateTest is not safe for concurrent use.
type ErrorRateTest struct {
	alpha     float64
	logRatios []float64
	ratios    []float64
	logLR     []float64 // per ratio
	logW      float64   // log of each ratio's weight
	last      [4]int64
	errors    int64
	curLogLR  float64 // log mixture LR after the last update
	maxLogLR  float64
	rejected  bool
}

// NewErrorRateTest returns a test with no data. It fails when Alpha is
// outside (0, 1) or a ratio is not a finite number above 1.
func NewErrorRateTest(cfg SequentialConfig) (*ErrorRateTest, error) {
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultAlpha
	}
	if !(cfg.Alpha > 0 && cfg.Alpha < 1) {
		return nil, fmt.Errorf("stats: alpha %g must be between 0 and 1 (exclusive)", cfg.Alpha)
	}
	if len(cfg.Ratios) == 0 {
		cfg.Ratios = defaultRatios
	}
	t := &ErrorRateTest{alpha: cfg.Alpha, logW: -math.Log(float64(len(cfg.Ratios)))}
	for _, r := range cfg.Ratios {
		if !(r > 1) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("stats: ratio %g must be a finite number above 1", r)
		}
		t.ratios = append(t.ratios, r)
		t.logRatios = append(t.logRatios, math.Log(r))
	}
	t.logLR = make([]float64, len(t.ratios))
	return t, nil
}

// Update takes the cumulative error and request counts of both versions
// and returns the test's state. Counters must never decrease; a reset
// counter needs a new test. On error the test is unchanged.
func (t *ErrorRateTest) Update(candErrors, candTotal, baseErrors, baseTotal int64) (SequentialResult, error) {
	now := [4]int64{candErrors, candTotal, baseErrors, baseTotal}
	if err := checkCounts(now, t.last); err != nil {
		return t.result(), err
	}
	xc, dc := now[0]-t.last[0], now[1]-t.last[1]
	xb, db := now[2]-t.last[2], now[3]-t.last[3]
	t.last = now
	// A batch where one version had no requests says nothing about which
	// version fails more: skip it.
	if dc > 0 && db > 0 && xc+xb > 0 {
		k := float64(xc + xb)
		pi0 := float64(dc) / float64(dc+db)
		for i, r := range t.ratios {
			t.logLR[i] += float64(xc)*t.logRatios[i] - k*math.Log1p(pi0*(r-1))
		}
		t.errors += xc + xb
		t.curLogLR = t.mixture()
	}
	t.maxLogLR = math.Max(t.maxLogLR, t.curLogLR)
	if t.maxLogLR >= -math.Log(t.alpha) {
		t.rejected = true
	}
	return t.result(), nil
}

// mixture returns log Σ w·LR_r, computed stably.
func (t *ErrorRateTest) mixture() float64 {
	m := math.Inf(-1)
	for _, l := range t.logLR {
		m = math.Max(m, l)
	}
	var s float64
	for _, l := range t.logLR {
		s += math.Exp(l - m)
	}
	return m + math.Log(s) + t.logW
}

func (t *ErrorRateTest) result() SequentialResult {
	r := SequentialResult{
		PValue: math.Min(1, math.Exp(-t.maxLogLR)),
		LogLR:  t.curLogLR,
		Errors: t.errors,
	}
	if t.rejected {
		r.Decision = Reject
	}
	return r
}

// checkCounts checks cumulative counters (candidate errors and requests,
// baseline errors and requests) against the previous ones: none negative,
// no more errors than requests, none smaller than before.
func checkCounts(now, last [4]int64) error {
	if now[0] < 0 || now[2] < 0 || now[0] > now[1] || now[2] > now[3] {
		return fmt.Errorf("candidate %d errors of %d, baseline %d of %d: %w", now[0], now[1], now[2], now[3], ErrCounts)
	}
	for i := range now {
		if now[i] < last[i] {
			return fmt.Errorf("counter went from %d to %d (reset?): %w", last[i], now[i], ErrCounts)
		}
	}
	return nil
}
