package stats

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Alternative is the alternative hypothesis of a test.
type Alternative int

const (
	// TwoSided: the distributions of x and y differ.
	TwoSided Alternative = iota
	// Greater: x is stochastically greater than y.
	Greater
	// Less: x is stochastically less than y.
	Less
)

// String returns the SciPy spelling of the alternative.
func (a Alternative) String() string {
	switch a {
	case TwoSided:
		return "two-sided"
	case Greater:
		return "greater"
	case Less:
		return "less"
	}
	return fmt.Sprintf("Alternative(%d)", int(a))
}

// Method chooses how a Mann–Whitney p-value is computed.
type Method int

const (
	// Auto uses Exact when neither sample has more than ExactMaxN values
	// and there are no ties, and Asymptotic otherwise.
	Auto Method = iota
	// Asymptotic uses the normal approximation with tie and continuity
	// correction.
	Asymptotic
	// Exact uses the exact null distribution of U. It is refused when the
	// samples hold ties or are too large (see ErrExactUnavailable).
	Exact
)

// ExactMaxN is the largest sample size for which Auto picks the exact
// distribution.
const ExactMaxN = 20

// Errors returned by MannWhitney.
var (
	// ErrEmptySample means a sample held no values; there is nothing to compare.
	ErrEmptySample = errors.New("stats: empty sample")
	// ErrNaN means a sample held a NaN; remove or count it before testing.
	ErrNaN = errors.New("stats: sample contains NaN")
	// ErrExactUnavailable means Exact was asked for samples with ties, or
	// whose number of rank arrangements C(n1+n2, n1) exceeds 2^53.
	ErrExactUnavailable = errors.New("stats: exact Mann-Whitney distribution unavailable")
)

// MannWhitneyOptions configures MannWhitney. The zero value is a two-sided
// test with Auto method.
type MannWhitneyOptions struct {
	Alternative Alternative
	Method      Method
	// NoContinuity turns off the 0.5 continuity correction of the normal
	// approximation (SciPy's use_continuity=False).
	NoContinuity bool
}

// MannWhitneyResult is the outcome of MannWhitney.
type MannWhitneyResult struct {
	// U1 is the U statistic of x (SciPy's statistic): the number of pairs
	// (xi, yj) with xi > yj, ties counting one half. U2 = N1*N2 - U1.
	U1, U2 float64
	N1, N2 int
	// Z is the standardised statistic of the normal approximation, after
	// tie and continuity correction, signed so that a large Z supports the
	// alternative. It is 0 when the exact method was used or all values
	// are equal.
	Z float64
	// P is the p-value, in [0, 1].
	P float64
	// Exact reports whether P comes from the exact distribution.
	Exact bool
	// Ties reports whether the pooled sample held tied values.
	Ties bool
}

// MannWhitney runs the Mann–Whitney U (Wilcoxon rank-sum) test of x
// against y. It matches scipy.stats.mannwhitneyu: same U (for x), same
// asymptotic p-value with tie correction and continuity correction, same
// exact p-value. It does not modify x or y.
//
// It returns ErrEmptySample when either sample is empty and ErrNaN when
// either holds a NaN. When every value is equal the test has no
// information and P is 1.
func MannWhitney(x, y []float64, opts MannWhitneyOptions) (MannWhitneyResult, error) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MannWhitneyResult{}, fmt.Errorf("mann-whitney with %d and %d values: %w", n1, n2, ErrEmptySample)
	}
	if hasNaN(x) || hasNaN(y) {
		return MannWhitneyResult{}, ErrNaN
	}
	switch opts.Alternative {
	case TwoSided, Greater, Less:
	default:
		return MannWhitneyResult{}, fmt.Errorf("stats: unknown alternative %d", int(opts.Alternative))
	}
	r1, tieSum := rankSum(x, y)
	u1 := r1 - float64(n1)*float64(n1+1)/2
	nn := float64(n1) * float64(n2)
	res := MannWhitneyResult{U1: u1, U2: nn - u1, N1: n1, N2: n2, Ties: tieSum > 0}

	method := opts.Method
	switch method {
	case Auto:
		method = Asymptotic
		if !res.Ties && n1 <= ExactMaxN && n2 <= ExactMaxN {
			method = Exact
		}
	case Exact:
		if res.Ties || !exactFeasible(n1, n2) {
			return MannWhitneyResult{}, fmt.Errorf("exact test of %d and %d values (ties: %t): %w", n1, n2, res.Ties, ErrExactUnavailable)
		}
	case Asymptotic:
	default:
		return MannWhitneyResult{}, fmt.Errorf("stats: unknown method %d", int(opts.Method))
	}

	// u is the statistic whose upper tail is tested.
	var u float64
	switch opts.Alternative {
	case TwoSided:
		u = math.Max(res.U1, res.U2)
	case Greater:
		u = res.U1
	case Less:
		u = res.U2
	}

	if method == Exact {
		res.Exact = true
		res.P = exactUpperTail(n1, n2, u)
		if opts.Alternative == TwoSided {
			res.P *= 2
		}
		res.P = clamp01(res.P)
		return res, nil
	}

	n := float64(n1 + n2)
	mu := nn / 2
	variance := nn / 12 * ((n + 1) - tieSum/(n*(n-1)))
	if variance <= 0 {
		// Every value is equal: no ranking information at all.
		res.P = 1
		return res, nil
	}
	d := u - mu
	if !opts.NoContinuity {
		d -= 0.5
	}
	res.Z = d / math.Sqrt(variance)
	p := normalSF(res.Z)
	if opts.Alternative == TwoSided {
		p *= 2
	}
	res.P = clamp01(p)
	return res, nil
}

func hasNaN(v []float64) bool {
	for _, f := range v {
		if math.IsNaN(f) {
			return true
		}
	}
	return false
}

// rankSum returns the sum of the mid-ranks of x in the pooled sample x ∪ y
// and the tie term Σ(t³ − t) over groups of t equal values.
func rankSum(x, y []float64) (r1, tieSum float64) {
	type obs struct {
		v     float64
		fromX bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int { return cmp.Compare(a.v, b.v) })
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		// Positions i..j-1 (0-based) share the mid-rank (i+1 + j)/2.
		rank := float64(i+1+j) / 2
		inX := 0
		for k := i; k < j; k++ {
			if all[k].fromX {
				inX++
			}
		}
		r1 += rank * float64(inX)
		if t := float64(j - i); t > 1 {
			tieSum += t*t*t - t
		}
		i = j
	}
	return r1, tieSum
}

// normalSF is the upper tail of the standard normal distribution.
func normalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normalQuantile is the inverse of the standard normal CDF.
func normalQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

func clamp01(p float64) float64 { return math.Min(1, math.Max(0, p)) }

// exactFeasible reports whether C(n1+n2, n1) fits exactly in a float64.
func exactFeasible(n1, n2 int) bool {
	lg, _ := math.Lgamma(float64(n1 + n2 + 1))
	l1, _ := math.Lgamma(float64(n1 + 1))
	l2, _ := math.Lgamma(float64(n2 + 1))
	return lg-l1-l2 < 53*math.Ln2
}

// exactUpperTail returns P(U >= u) under the null hypothesis for samples
// of sizes n1 and n2 without ties.
//
// The number of rank arrangements with U = k is the coefficient of q^k in
// the Gaussian binomial coefficient [n1+n2 choose n1]_q, built here from
// the product Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i) with m = min(n1, n2),
// n = max(n1, n2). Each step keeps integer coefficients below 2^53, so the
// counts are exact.
func exactUpperTail(n1, n2 int, u float64) float64 {
	m, n := n1, n2
	if m > n {
		m, n = n, m
	}
	size := m*n + 1
	c := make([]float64, size)
	c[0] = 1
	for i := 1; i <= m; i++ {
		// Multiply by (1 − q^(n+i)).
		for k := size - 1; k >= n+i; k-- {
			c[k] -= c[k-(n+i)]
		}
		// Divide by (1 − q^i): a running sum with stride i.
		for k := i; k < size; k++ {
			c[k] += c[k-i]
		}
	}
	var total, tail float64
	start := int(math.Ceil(u))
	for k := 0; k < size; k++ {
		total += c[k]
		if k >= start {
			tail += c[k]
		}
	}
	return tail / total
}
