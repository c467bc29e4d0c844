package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestKthDiffMatchesBruteForce(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		n1, n2 := 1+rng.IntN(15), 1+rng.IntN(15)
		c, b := make([]float64, n1), make([]float64, n2)
		for i := range c {
			c[i] = math.Round(rng.NormFloat64()*3) * math.Pow(10, float64(trial%7-3))
		}
		for i := range b {
			b[i] = math.Round(rng.NormFloat64()*3) * math.Pow(10, float64(trial%7-3))
		}
		slices.Sort(c)
		slices.Sort(b)
		var all []float64
		for _, x := range c {
			for _, y := range b {
				all = append(all, x-y)
			}
		}
		slices.Sort(all)
		for k := range all {
			if got := kthDiff(c, b, k); got != all[k] {
				t.Fatalf("trial %d: kthDiff(%v, %v, %d) = %g, want %g", trial, c, b, k, got, all[k])
			}
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	lat := func(n int, mu float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Exp(mu + 0.4*rng.NormFloat64())
		}
		return v
	}
	base := lat(300, 4)          // median ≈ 55
	same := lat(300, 4)          // healthy candidate
	slower := lat(300, 4+0.7)    // +100%
	faster := lat(300, 4-0.7)    // −50%
	slightly := lat(300, 4+0.15) // +16%: significant, inside a 25% baseline band

	tests := []struct {
		name      string
		cand      []float64
		base      []float64
		cfg       ClassifierConfig
		want      Classification
		reasonHas string
	}{
		{"no candidate data", nil, base, ClassifierConfig{}, NoData, "no data"},
		{"no baseline data", same, []float64{}, ClassifierConfig{}, NoData, "no data"},
		{"identical multisets", []float64{3, 1, 2}, []float64{1, 2, 3}, ClassifierConfig{}, Pass, "identical"},
		{"all equal", []float64{5, 5}, []float64{5, 5, 5}, ClassifierConfig{}, Pass, "equal"},
		{"healthy", same, base, ClassifierConfig{}, Pass, "no difference"},
		{"slower", slower, base, ClassifierConfig{}, High, "higher"},
		{"faster", faster, base, ClassifierConfig{}, Low, "lower"},
		{"slower but only decreases matter", slower, base, ClassifierConfig{Direction: Decrease}, Pass, ""},
		{"faster but only increases matter", faster, base, ClassifierConfig{Direction: Increase}, Pass, ""},
		{"slightly slower, Kayenta band", slightly, base, ClassifierConfig{}, High, "higher"},
		{"slightly slower, baseline band", slightly, base, ClassifierConfig{Band: BandBaseline}, Pass, ""},
		{"slower, baseline band", slower, base, ClassifierConfig{Band: BandBaseline}, High, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Classify(tt.cand, tt.base, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got.Class != tt.want || !strings.Contains(got.Reason, tt.reasonHas) {
				t.Fatalf("got %v (%s), want %v containing %q", got.Class, got.Reason, tt.want, tt.reasonHas)
			}
			if tt.want == Pass && tt.reasonHas != "" && tt.reasonHas != "no difference" && got.Ratio != 1 {
				t.Errorf("ratio %g for identical or equal values, want 1 as Kayenta reports", got.Ratio)
			}
			if got.Class == High || got.Class == Low {
				if !(got.Lower <= got.Shift && got.Shift <= got.Upper) {
					t.Errorf("shift %g outside its interval [%g, %g]", got.Shift, got.Lower, got.Upper)
				}
			}
		})
	}
}

func TestClassifyDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	c, b := []float64{9, 1, 5, 3}, []float64{4, 8, 2}
	c0, b0 := slices.Clone(c), slices.Clone(b)
	if _, err := Classify(c, b, ClassifierConfig{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c, c0) || !slices.Equal(b, b0) {
		t.Fatalf("inputs changed: %v %v", c, b)
	}
}

func TestClassifyBadInput(t *testing.T) {
	t.Parallel()
	ok := []float64{1, 2, 3}
	tests := []struct {
		name string
		c, b []float64
		cfg  ClassifierConfig
		want error
	}{
		{"NaN", []float64{1, math.NaN()}, ok, ClassifierConfig{}, ErrNaN},
		{"NaN in empty-other", []float64{math.NaN()}, nil, ClassifierConfig{}, ErrNaN},
		{"Inf", ok, []float64{math.Inf(1)}, ClassifierConfig{}, ErrNonFinite},
		{"confidence 1", ok, ok, ClassifierConfig{Confidence: 1}, nil},
		{"negative tolerance", ok, ok, ClassifierConfig{Tolerance: -0.1}, nil},
		{"bad direction", ok, ok, ClassifierConfig{Direction: 7}, nil},
		{"bad band", ok, ok, ClassifierConfig{Band: 7}, nil},
	}
	for _, tt := range tests {
		_, err := Classify(tt.c, tt.b, tt.cfg)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestClassifyHealthyFalsePositives: equal heavy-tailed distributions are
// rarely called High or Low at the default 98% confidence.
func TestClassifyHealthyFalsePositives(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	const runs = 300
	flagged := 0
	c, b := make([]float64, 100), make([]float64, 100)
	for range runs {
		for i := range c {
			c[i] = math.Exp(3 + rng.NormFloat64()) // log-normal, σ = 1
			b[i] = math.Exp(3 + rng.NormFloat64())
		}
		r, err := Classify(c, b, ClassifierConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Class != Pass {
			flagged++
		}
	}
	// The interval misses 0 with probability about 2%; Kayenta's band only
	// makes flagging rarer.
	rate := float64(flagged) / runs
	t.Logf("healthy log-normal 100 vs 100: %d of %d runs flagged (%.3f)", flagged, runs, rate)
	if rate > 0.05 {
		t.Errorf("healthy runs flagged %.3f of the time, want at most about 0.02", rate)
	}
}

func BenchmarkClassify1000x1000(b *testing.B) {
	x, y := benchSamples(1000, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Classify(x, y, ClassifierConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{4, 5}, uint8(0))
	f.Add([]byte{7, 7, 7}, []byte{7}, uint8(1))
	f.Add([]byte{}, []byte{7}, uint8(2))
	f.Fuzz(func(t *testing.T, a, b []byte, mode uint8) {
		c, base := bytesToFloats(a), bytesToFloats(b)
		for i := range c {
			if math.IsInf(c[i], 0) || c[i] == math.MaxFloat64 {
				c[i] = 1e6
			}
		}
		for i := range base {
			if math.IsInf(base[i], 0) || base[i] == math.MaxFloat64 {
				base[i] = -1e6
			}
		}
		cfg := ClassifierConfig{Direction: Direction(mode % 3), Band: Band(mode / 3 % 2)}
		r, err := Classify(c, base, cfg)
		if err != nil {
			t.Fatalf("Classify: %v", err)
		}
		if (len(c) == 0 || len(base) == 0) != (r.Class == NoData) {
			t.Fatalf("%d and %d values classified %v", len(c), len(base), r.Class)
		}
		if r.Class == NoData {
			return
		}
		if !(r.Lower <= r.Shift && r.Shift <= r.Upper) || r.P < 0 || r.P > 1 {
			t.Fatalf("shift %g, interval [%g, %g], p %g", r.Shift, r.Lower, r.Upper, r.P)
		}
	})
}

// kayentaStatistic is Kayenta's wilcoxonDiff (a port of R's asymptotic
// wilcox.test interval code), written independently from the ranks: the
// continuity-corrected standardised rank statistic of (c − mu) against b,
// minus the quantile. It decreases in mu.
func kayentaStatistic(c, b []float64, mu, quantile float64) float64 {
	x := make([]float64, len(c))
	for i, v := range c {
		x[i] = v - mu
	}
	r1, tieSum := rankSum(x, b)
	n1, n2 := float64(len(c)), float64(len(b))
	dz := r1 - n1*(n1+1)/2 - n1*n2/2
	corr := 0.0
	if dz > 0 {
		corr = 0.5
	} else if dz < 0 {
		corr = -0.5
	}
	n := n1 + n2
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - tieSum/(n*(n-1))))
	return (dz-corr)/sigma - quantile
}

// TestShiftIntervalMatchesKayentaRoots: each end of the interval is the
// pairwise difference at which Kayenta's statistic changes sign, which is
// where its root finder converges.
func TestShiftIntervalMatchesKayentaRoots(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(19, 20))
	checked := 0
	for range 300 {
		n1, n2 := 5+rng.IntN(30), 5+rng.IntN(30)
		c, b := make([]float64, n1), make([]float64, n2)
		shift := float64(rng.IntN(3))
		for i := range c {
			c[i] = math.Round(rng.NormFloat64()*4) + shift
		}
		for i := range b {
			b[i] = math.Round(rng.NormFloat64() * 4)
		}
		slices.Sort(c)
		slices.Sort(b)
		conf := []float64{0.9, 0.95, 0.98}[rng.IntN(3)]
		z := normalQuantile((1 + conf) / 2)
		var diffs []float64
		for _, x := range c {
			for _, y := range b {
				diffs = append(diffs, x-y)
			}
		}
		slices.Sort(diffs)
		diffs = slices.Compact(diffs)
		// root returns the difference d with f > 0 just below it and f <= 0
		// just above it, or NaN when f does not change sign inside.
		root := func(q float64) float64 {
			for i, d := range diffs {
				below := d - 0.5
				if i > 0 {
					below = (diffs[i-1] + d) / 2
				}
				above := d + 0.5
				if i+1 < len(diffs) {
					above = (d + diffs[i+1]) / 2
				}
				if kayentaStatistic(c, b, below, q) > 0 && kayentaStatistic(c, b, above, q) <= 0 {
					return d
				}
			}
			return math.NaN()
		}
		wantLo, wantHi := root(z), root(-z)
		if math.IsNaN(wantLo) || math.IsNaN(wantHi) {
			continue // Kayenta clamps to the extreme difference; not compared here
		}
		_, lo, hi := shiftInterval(c, b, conf)
		if lo != wantLo || hi != wantHi {
			t.Fatalf("n1=%d n2=%d conf=%g: interval [%g, %g], Kayenta's roots [%g, %g]\nc=%v\nb=%v", n1, n2, conf, lo, hi, wantLo, wantHi, c, b)
		}
		checked++
	}
	if checked < 200 {
		t.Fatalf("only %d of 300 cases compared", checked)
	}
}
