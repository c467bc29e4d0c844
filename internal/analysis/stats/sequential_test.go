package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// binomial draws from Binomial(n, p) by inversion; fast for small n·p.
func binomial(rng *rand.Rand, n int64, p float64) int64 {
	q := math.Pow(1-p, float64(n)) // P(X = 0)
	u := rng.Float64()
	var k int64
	for u > q && k < n {
		u -= q
		q *= float64(n-k) / float64(k+1) * p / (1 - p)
		k++
	}
	return k
}

// trafficRun feeds one simulated canary to a new test: perSecond requests
// per version each second, checked every second for at most seconds, with
// error probabilities pc and pb. It returns the candidate requests seen
// when the test rejected, or -1 if it never did.
func trafficRun(t testing.TB, rng *rand.Rand, cfg SequentialConfig, perSecond int64, seconds int, pc, pb float64) int64 {
	test, err := NewErrorRateTest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ce, ct, be, bt int64
	for range seconds {
		ce += binomial(rng, perSecond, pc)
		be += binomial(rng, perSecond, pb)
		ct += perSecond
		bt += perSecond
		r, err := test.Update(ce, ct, be, bt)
		if err != nil {
			t.Fatal(err)
		}
		if r.Decision == Reject {
			return ct
		}
	}
	return -1
}

// TestErrorRateTestFalseRejections: with equal 1% error rates at 50 req/s
// per version, checked every second for 1,000 s, the chance of ever
// rejecting stays at most alpha plus Monte Carlo slack.
func TestErrorRateTestFalseRejections(t *testing.T) {
	t.Parallel()
	const runs = 2000
	cfg := SequentialConfig{Alpha: 0.01}
	rng := rand.New(rand.NewPCG(11, 12))
	rejected := 0
	for range runs {
		if trafficRun(t, rng, cfg, 50, 1000, 0.01, 0.01) >= 0 {
			rejected++
		}
	}
	rate := float64(rejected) / runs
	slack := 3 * math.Sqrt(cfg.Alpha*(1-cfg.Alpha)/runs)
	t.Logf("false rejection rate over %d runs of 1,000 checks: %.4f (alpha %.2f)", runs, rate, cfg.Alpha)
	if rate > cfg.Alpha+slack {
		t.Errorf("false rejection rate %.4f > alpha %.2f + slack %.4f", rate, cfg.Alpha, slack)
	}
}

// TestErrorRateTestBurstsAreNotRegressions: a shared error rate that jumps
// between 0.2% and 20% (incidents hitting both versions) is no reason to
// reject, because the test conditions on the errors.
func TestErrorRateTestBurstsAreNotRegressions(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(13, 14))
	const runs = 500
	rejected := 0
	for range runs {
		test, _ := NewErrorRateTest(SequentialConfig{Alpha: 0.01})
		var ce, ct, be, bt int64
		for s := range 600 {
			p := 0.002
			if s%60 < 5 {
				p = 0.2
			}
			// Unequal traffic split: 20 candidate, 80 baseline requests/s.
			ce += binomial(rng, 20, p)
			be += binomial(rng, 80, p)
			ct += 20
			bt += 80
			r, err := test.Update(ce, ct, be, bt)
			if err != nil {
				t.Fatal(err)
			}
			if r.Decision == Reject {
				rejected++
				break
			}
		}
	}
	rate := float64(rejected) / runs
	t.Logf("bursty shared errors, 20/80 split: false rejection rate %.4f", rate)
	if rate > 0.01+3*math.Sqrt(0.01*0.99/runs) {
		t.Errorf("false rejection rate %.4f with bursty shared errors", rate)
	}
}

// TestErrorRateTestDetection: a 1% → 6% regression at 50 req/s per version
// is rejected in a median well under the 30 s target.
func TestErrorRateTestDetection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		pc           float64
		maxMedianReq int64 // candidate requests
	}{
		{"1% to 6%", 0.06, 30 * 50},
		{"1% to 2%", 0.02, 600 * 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(15, 16))
			const runs = 400
			var times []int64
			missed := 0
			for range runs {
				n := trafficRun(t, rng, SequentialConfig{Alpha: 0.01}, 50, 1800, tt.pc, 0.01)
				if n < 0 {
					missed++
					n = math.MaxInt64
				}
				times = append(times, n)
			}
			slices.Sort(times)
			median, p90 := times[runs/2], times[runs*9/10]
			t.Logf("%s at 50 req/s: median detection after %d candidate requests (%.0f s), 90th percentile %d, undetected in 30 min: %d/%d",
				tt.name, median, float64(median)/50, p90, missed, runs)
			if median > tt.maxMedianReq {
				t.Errorf("median detection after %d candidate requests, want at most %d", median, tt.maxMedianReq)
			}
		})
	}
}

func TestErrorRateTestUpdate(t *testing.T) {
	t.Parallel()
	test, err := NewErrorRateTest(SequentialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := test.Update(0, 0, 0, 0)
	if err != nil || r.Decision != Continue || r.PValue != 1 {
		t.Fatalf("no data: %+v, %v; want continue with p = 1", r, err)
	}
	// Only the candidate gets traffic: nothing to compare, no rejection.
	r, _ = test.Update(500, 1000, 0, 0)
	if r.Decision != Continue || r.PValue != 1 || r.Errors != 0 {
		t.Fatalf("one-sided traffic: %+v", r)
	}
	// Candidate 30 errors, baseline 0, equal traffic: strong evidence.
	r, _ = test.Update(530, 2000, 0, 1000)
	if r.Decision != Reject || !(r.PValue <= 0.01) || r.Errors != 30 {
		t.Fatalf("30 vs 0 errors: %+v, want reject", r)
	}
	// Rejection is final and the p-value never rises.
	p := r.PValue
	r, _ = test.Update(530, 100000, 5000, 100000)
	if r.Decision != Reject || r.PValue != p {
		t.Fatalf("after baseline errors: %+v, want reject with p %g", r, p)
	}

	// More baseline errors than candidate errors never rejects.
	good, _ := NewErrorRateTest(SequentialConfig{})
	r, _ = good.Update(0, 1000, 60, 1000)
	if r.Decision != Continue || r.PValue != 1 {
		t.Fatalf("baseline worse: %+v, want continue with p = 1", r)
	}
}

func TestErrorRateTestBadInput(t *testing.T) {
	t.Parallel()
	for _, cfg := range []SequentialConfig{{Alpha: 1}, {Alpha: -0.1}, {Ratios: []float64{1}}, {Ratios: []float64{2, math.Inf(1)}}, {Ratios: []float64{math.NaN()}}} {
		if _, err := NewErrorRateTest(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	test, _ := NewErrorRateTest(SequentialConfig{})
	if _, err := test.Update(5, 100, 1, 100); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][4]int64{{4, 100, 1, 100}, {5, 99, 1, 100}, {101, 100, 1, 100}, {-1, 100, 1, 100}, {5, 100, 1, 50}} {
		if _, err := test.Update(c[0], c[1], c[2], c[3]); !errors.Is(err, ErrCounts) {
			t.Errorf("Update%v: err = %v, want ErrCounts", c, err)
		}
	}
	// The rejected updates left the state alone: the same counts are a no-op.
	if _, err := test.Update(5, 100, 1, 100); err != nil {
		t.Errorf("state changed by rejected updates: %v", err)
	}
}

func BenchmarkErrorRateTestUpdate(b *testing.B) {
	test, _ := NewErrorRateTest(SequentialConfig{})
	var n int64
	for b.Loop() {
		n += 50
		if _, err := test.Update(n/100, n, n/120, n); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNaiveRepeatedTestInflates is the reason ErrorRateTest exists: a
// fixed-sample one-sided two-proportion z-test at 1%, checked every second,
// rejects healthy canaries far more often than 1%.
func TestNaiveRepeatedTestInflates(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 18))
	const runs = 500
	zCrit := normalQuantile(0.99)
	rejected := 0
	for range runs {
		var ce, be, n int64
		for range 1000 {
			ce += binomial(rng, 50, 0.01)
			be += binomial(rng, 50, 0.01)
			n += 50
			pc, pb := float64(ce)/float64(n), float64(be)/float64(n)
			pool := (pc + pb) / 2
			if se := math.Sqrt(2 * pool * (1 - pool) / float64(n)); se > 0 && (pc-pb)/se > zCrit {
				rejected++
				break
			}
		}
	}
	rate := float64(rejected) / runs
	t.Logf("naive z-test at 1%% checked every second for 1,000 s: false rejection rate %.3f", rate)
	if rate < 0.03 {
		t.Errorf("naive repeated test rejected only %.3f of healthy runs; the simulation no longer shows the peeking problem", rate)
	}
}
