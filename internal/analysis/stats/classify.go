package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Classification is the verdict on one metric.
type Classification int

const (
	// NoData: the candidate or the baseline had no values. It is never a
	// pass; the judge treats it as inconclusive.
	NoData Classification = iota
	// Pass: no difference beyond the tolerance band at the confidence.
	Pass
	// High: the candidate is higher than the baseline.
	High
	// Low: the candidate is lower than the baseline.
	Low
)

// String returns the Kayenta spelling of the classification.
func (c Classification) String() string {
	switch c {
	case NoData:
		return "Nodata"
	case Pass:
		return "Pass"
	case High:
		return "High"
	case Low:
		return "Low"
	}
	return fmt.Sprintf("Classification(%d)", int(c))
}

// Direction says which changes of a metric count against the candidate,
// as Kayenta's metric direction does.
type Direction int

const (
	// Either: both High and Low are reported.
	Either Direction = iota
	// Increase: only High is reported (latency, error counts).
	Increase
	// Decrease: only Low is reported (throughput, business metrics).
	Decrease
)

// Band chooses what the tolerance is a fraction of.
type Band int

const (
	// BandEstimate is Kayenta's rule: the band is ±Tolerance × |shift|, the
	// Hodges–Lehmann shift estimate itself. A metric is High when the lower
	// end of the shift's confidence interval lies above that band.
	BandEstimate Band = iota
	// BandBaseline makes Tolerance an allowed effect size: the band is
	// ±Tolerance × |median(baseline)|, so a 25% tolerance lets the
	// candidate's median shift by up to a quarter of the baseline median.
	BandBaseline
)

// Defaults of ClassifierConfig.
const (
	DefaultConfidence = 0.98
	DefaultTolerance  = 0.25
)

// ErrNonFinite means a sample held ±Inf, which has no meaningful shift.
var ErrNonFinite = errors.New("stats: sample contains an infinite value")

// ClassifierConfig configures Classify. Zero fields take the defaults:
// confidence 0.98, tolerance 0.25, direction Either, band BandEstimate.
type ClassifierConfig struct {
	// Confidence is the confidence level of the shift's interval, in (0, 1).
	Confidence float64
	// Tolerance is the half-width of the band, as a fraction (see Band).
	Tolerance float64
	Direction Direction
	Band      Band
}

func (c ClassifierConfig) withDefaults() (ClassifierConfig, error) {
	if c.Confidence == 0 {
		c.Confidence = DefaultConfidence
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if !(c.Confidence > 0 && c.Confidence < 1) {
		return c, fmt.Errorf("stats: confidence %g must be between 0 and 1 (exclusive)", c.Confidence)
	}
	if !(c.Tolerance >= 0) || math.IsInf(c.Tolerance, 0) {
		return c, fmt.Errorf("stats: tolerance %g must be a finite fraction >= 0", c.Tolerance)
	}
	if c.Direction < Either || c.Direction > Decrease {
		return c, fmt.Errorf("stats: unknown direction %d", int(c.Direction))
	}
	if c.Band < BandEstimate || c.Band > BandBaseline {
		return c, fmt.Errorf("stats: unknown band %d", int(c.Band))
	}
	return c, nil
}

// ClassifyResult is the outcome of Classify.
type ClassifyResult struct {
	Class  Classification
	Reason string
	// Shift is the Hodges–Lehmann estimate of candidate − baseline: the
	// median of all pairwise differences.
	Shift float64
	// Lower and Upper bound the shift at the configured confidence.
	Lower, Upper float64
	// Bound is the half-width of the tolerance band.
	Bound float64
	// Ratio is mean(candidate) / mean(baseline), as Kayenta reports it
	// (±Inf or NaN when the baseline mean is 0).
	Ratio float64
	// P is the two-sided Mann–Whitney p-value.
	P float64
}

// Classify compares a candidate's samples of one metric with the
// baseline's, as Kayenta's Mann–Whitney classifier does:
//
//  1. either sample empty → NoData;
//  2. the same multiset of values, or a single distinct value → Pass;
//  3. otherwise the Hodges–Lehmann shift and its confidence interval are
//     computed; High when the interval's lower end is above +Bound (and
//     the direction allows High), Low when its upper end is below −Bound
//     (and the direction allows Low), Pass otherwise.
//
// It returns ErrNaN or ErrNonFinite for NaN or ±Inf values and an error for
// an invalid config; the caller should count those as errors, not passes.
// It does not modify its arguments. It sorts copies of both samples and
// finds order statistics of the pairwise differences by bisection, each
// step O(n1+n2) (about 60 steps for samples of one magnitude), so memory
// stays O(n1+n2) however large the samples are.
func Classify(candidate, baseline []float64, cfg ClassifierConfig) (ClassifyResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ClassifyResult{}, err
	}
	for _, s := range [][]float64{candidate, baseline} {
		for _, v := range s {
			if math.IsNaN(v) {
				return ClassifyResult{}, ErrNaN
			}
			if math.IsInf(v, 0) {
				return ClassifyResult{}, ErrNonFinite
			}
		}
	}
	if len(candidate) == 0 || len(baseline) == 0 {
		return ClassifyResult{Class: NoData, Reason: fmt.Sprintf(
			"no data: %d candidate and %d baseline values", len(candidate), len(baseline))}, nil
	}
	c, b := slices.Clone(candidate), slices.Clone(baseline)
	slices.Sort(c)
	slices.Sort(b)
	if slices.Equal(c, b) {
		return ClassifyResult{Class: Pass, Reason: "candidate and baseline values are identical", Ratio: 1, P: 1}, nil
	}
	if c[0] == c[len(c)-1] && b[0] == b[len(b)-1] && c[0] == b[0] {
		return ClassifyResult{Class: Pass, Reason: "every value is equal", Ratio: 1, P: 1}, nil
	}

	mw, err := MannWhitney(c, b, MannWhitneyOptions{Method: Asymptotic})
	if err != nil {
		return ClassifyResult{}, fmt.Errorf("classify: %w", err)
	}
	res := ClassifyResult{Ratio: mean(c) / mean(b), P: mw.P}
	res.Shift, res.Lower, res.Upper = shiftInterval(c, b, cfg.Confidence)
	switch cfg.Band {
	case BandEstimate:
		res.Bound = cfg.Tolerance * math.Abs(res.Shift)
	case BandBaseline:
		res.Bound = cfg.Tolerance * math.Abs(median(b))
	}
	interval := fmt.Sprintf("shift %.4g, %g%% interval [%.4g, %.4g], band ±%.4g",
		res.Shift, cfg.Confidence*100, res.Lower, res.Upper, res.Bound)
	switch {
	case cfg.Direction != Decrease && res.Lower > res.Bound:
		res.Class, res.Reason = High, "candidate is higher: "+interval
	case cfg.Direction != Increase && res.Upper < -res.Bound:
		res.Class, res.Reason = Low, "candidate is lower: "+interval
	default:
		res.Class, res.Reason = Pass, "no difference beyond the band: "+interval
	}
	return res, nil
}

func mean(v []float64) float64 {
	var s float64
	for _, f := range v {
		s += f
	}
	return s / float64(len(v))
}

// median of a sorted, non-empty slice.
func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// shiftInterval returns the Hodges–Lehmann estimate of c − b (the median
// of the pairwise differences) and the confidence interval Kayenta computes
// by porting R's asymptotic wilcox.test(conf.int = TRUE): the shifts μ at
// which the continuity-corrected statistic of (c − μ) against b equals ±z,
// z the (1+confidence)/2 normal quantile. That statistic only changes at
// pairwise differences, so the roots are order statistics of them: with
// x = n1·n2/2 − 0.5 − z·σ, the ⌊x⌋-th smallest and ⌊x⌋-th largest
// difference (0-based). σ is the standard deviation of U with the tie
// correction for ties inside each sample, which is what R sees at a
// shift μ that creates no tie across the samples. Both c and b are sorted.
func shiftInterval(c, b []float64, confidence float64) (est, lo, hi float64) {
	n1, n2 := len(c), len(b)
	nn := n1 * n2
	if nn%2 == 1 {
		est = kthDiff(c, b, nn/2)
	} else {
		est = kthDiff(c, b, nn/2-1)/2 + kthDiff(c, b, nn/2)/2
	}
	n := float64(n1 + n2)
	tieSum := sortedTieSum(c) + sortedTieSum(b)
	sigma := math.Sqrt(float64(nn) / 12 * ((n + 1) - tieSum/(n*(n-1))))
	z := normalQuantile((1 + confidence) / 2)
	k := int(math.Floor(float64(nn)/2 - 0.5 - z*sigma))
	k = max(0, min(k, (nn-1)/2))
	return est, kthDiff(c, b, k), kthDiff(c, b, nn-1-k)
}

// sortedTieSum returns Σ(t³ − t) over runs of t equal values in a sorted
// slice.
func sortedTieSum(s []float64) float64 {
	var sum float64
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[i] {
			j++
		}
		t := float64(j - i)
		sum += t*t*t - t
		i = j
	}
	return sum
}

// kthDiff returns the k-th smallest (0-based) of the differences c[i] − b[j]
// of two sorted samples without building them: it bisects on the value,
// counting differences at or below it in O(n1+n2), and keeps both ends of
// the search on actual differences so it stops as soon as one distinct
// difference is left in (lo, hi].
func kthDiff(c, b []float64, k int) float64 {
	lo := c[0] - b[len(b)-1] // the smallest difference
	hi := c[len(c)-1] - b[0] // the largest difference
	if n, _, _ := countAtMost(c, b, lo); n > k {
		return lo
	}
	// Invariant: countAtMost(lo) <= k < countAtMost(hi), hi a difference.
	for {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			return hi
		}
		n, below, above := countAtMost(c, b, mid)
		if n > k {
			hi = below
		} else {
			lo = mid
			if above == hi {
				return hi
			}
		}
	}
}

// countAtMost counts pairs with c[i] − b[j] <= d, and returns the largest
// difference <= d and the smallest difference > d (±Inf when there is
// none). Floating-point subtraction is monotone, so for each i the
// qualifying j form a suffix whose start only moves right as i grows.
func countAtMost(c, b []float64, d float64) (count int, below, above float64) {
	below, above = math.Inf(-1), math.Inf(1)
	j := 0
	for _, ci := range c {
		for j < len(b) && ci-b[j] > d {
			j++
		}
		count += len(b) - j
		if j < len(b) {
			below = math.Max(below, ci-b[j])
		}
		if j > 0 {
			above = math.Min(above, ci-b[j-1])
		}
	}
	return count, below, above
}
