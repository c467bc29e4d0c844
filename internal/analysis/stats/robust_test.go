package stats

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// burstyVersion is one version's Gilbert–Elliott error process, stepped
// once a second: good (goodRate) or in a burst (badRate, mean length
// meanBad seconds), entered so that the average rate is avgRate.
type burstyVersion struct {
	bad                  bool
	good, badRate        float64
	leave, enter         float64
	fixedRate, fixedUsed bool
}

func newBursty(goodRate, badRate, avgRate, meanBad float64) *burstyVersion {
	piBad := (avgRate - goodRate) / (badRate - goodRate)
	leave := 1 / meanBad
	return &burstyVersion{good: goodRate, badRate: badRate, leave: leave, enter: leave * piBad / (1 - piBad)}
}

// rate steps the chain and returns this second's error probability.
func (b *burstyVersion) rate(rng *rand.Rand) float64 {
	if b.bad {
		b.bad = rng.Float64() >= b.leave
	} else {
		b.bad = rng.Float64() < b.enter
	}
	if b.bad {
		return b.badRate
	}
	return b.good
}

// robustRun feeds one simulated canary, checked every `every` seconds for
// at most seconds, to a new RobustErrorTest (and, when plain is non-nil,
// to an ErrorRateTest too). rates returns the candidate's and baseline's
// error probabilities and request counts for each second. It returns the
// second at which each test rejected, 0 if never.
func robustRun(t testing.TB, cfg RobustConfig, plain *SequentialConfig, seconds, every int, rng *rand.Rand,
	rates func(rng *rand.Rand) (pc, pb float64, nc, nb int64)) (robustAt, plainAt int) {
	test, err := NewRobustErrorTest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pt *ErrorRateTest
	if plain != nil {
		if pt, err = NewErrorRateTest(*plain); err != nil {
			t.Fatal(err)
		}
	}
	var ce, ct, be, bt int64
	for s := 1; s <= seconds; s++ {
		pc, pb, nc, nb := rates(rng)
		ce += binomial(rng, nc, pc)
		be += binomial(rng, nb, pb)
		ct += nc
		bt += nb
		if s%every != 0 {
			continue
		}
		if robustAt == 0 {
			r, err := test.Update(time.Duration(s)*time.Second, ce, ct, be, bt)
			if err != nil {
				t.Fatal(err)
			}
			if r.Decision == Reject {
				robustAt = s
			}
		}
		if pt != nil && plainAt == 0 {
			r, err := pt.Update(ce, ct, be, bt)
			if err != nil {
				t.Fatal(err)
			}
			if r.Decision == Reject {
				plainAt = s
			}
		}
		if robustAt != 0 && (pt == nil || plainAt != 0) {
			break
		}
	}
	return robustAt, plainAt
}

func steady(pc, pb float64, nc, nb int64) func(*rand.Rand) (float64, float64, int64, int64) {
	return func(*rand.Rand) (float64, float64, int64, int64) { return pc, pb, nc, nb }
}

// TestRobustErrorTestFalseRejections: under its null (errors equally
// likely in both versions, bursts shared), the test rejects at most alpha
// of the runs, plus Monte Carlo slack, whatever the traffic split and the
// update interval. Alpha is 5% here so that the bound is tested, not just
// the far tail.
func TestRobustErrorTestFalseRejections(t *testing.T) {
	t.Parallel()
	const alpha = 0.05
	shared := func(nc, nb int64) func(*rand.Rand) (float64, float64, int64, int64) {
		b := newBursty(0.002, 0.2, 0.01, 5)
		return func(rng *rand.Rand) (float64, float64, int64, int64) {
			p := b.rate(rng)
			return p, p, nc, nb
		}
	}
	tests := []struct {
		name    string
		runs    int
		seconds int
		every   int
		rates   func(*rand.Rand) (float64, float64, int64, int64)
	}{
		{"iid 1%, 50/50 req/s, every second", 600, 600, 1, steady(0.01, 0.01, 50, 50)},
		{"shared bursts 0.2%-20%, 20/80 split", 400, 600, 1, shared(20, 80)},
		{"shared bursts 0.2%-20%, 80/20 split", 400, 600, 1, shared(80, 20)},
		{"iid 1%, 10/90 split", 400, 600, 1, steady(0.01, 0.01, 10, 90)},
		{"iid 1%, 50/50, every 60 s", 1000, 1200, 60, steady(0.01, 0.01, 50, 50)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(41, uint64(i)))
			rejected := 0
			for range tt.runs {
				if at, _ := robustRun(t, RobustConfig{Alpha: alpha}, nil, tt.seconds, tt.every, rng, tt.rates); at > 0 {
					rejected++
				}
			}
			rate := float64(rejected) / float64(tt.runs)
			limit := alpha + 3*math.Sqrt(alpha*(1-alpha)/float64(tt.runs))
			t.Logf("false rejection rate %.4f (%d of %d), alpha %g, limit %.4f", rate, rejected, tt.runs, alpha, limit)
			if rate > limit {
				t.Errorf("false rejection rate %.4f above %.4f", rate, limit)
			}
		})
	}
}

// TestRobustErrorTestLocalBursts: bursts local to one version (10% errors
// for a second, about every 18 s, each version on its own) push the plain
// mSPRT to reject many healthy canaries; the robust test at its defaults
// keeps within 1%.
func TestRobustErrorTestLocalBursts(t *testing.T) {
	t.Parallel()
	const runs = 300
	rng := rand.New(rand.NewPCG(43, 44))
	robust, plain := 0, 0
	for range runs {
		c, b := newBursty(0.005, 0.10, 0.01, 1), newBursty(0.005, 0.10, 0.01, 1)
		rAt, pAt := robustRun(t, RobustConfig{}, &SequentialConfig{}, 600, 1, rng, func(rng *rand.Rand) (float64, float64, int64, int64) {
			return c.rate(rng), b.rate(rng), 50, 50
		})
		if rAt > 0 {
			robust++
		}
		if pAt > 0 {
			plain++
		}
	}
	t.Logf("1-second local bursts, %d runs of 600 s: robust test rejected %d, ErrorRateTest %d", runs, robust, plain)
	if robust > runs/100 {
		t.Errorf("robust test rejected %d of %d healthy runs, want at most 1%%", robust, runs)
	}
	if plain < runs/20 {
		t.Errorf("ErrorRateTest rejected only %d of %d runs: the scenario no longer shows local bursts", plain, runs)
	}
}

// TestRobustErrorTestDetection: 1% → 6% at 50 requests/s per version is
// detected in a median under 30 s at the defaults (about 27 s).
func TestRobustErrorTestDetection(t *testing.T) {
	t.Parallel()
	const runs = 200
	rng := rand.New(rand.NewPCG(45, 46))
	var at []int
	missed := 0
	for range runs {
		s, _ := robustRun(t, RobustConfig{}, nil, 300, 1, rng, steady(0.06, 0.01, 50, 50))
		if s == 0 {
			missed++
			s = math.MaxInt
		}
		at = append(at, s)
	}
	slices.Sort(at)
	median, p90 := at[runs/2], at[runs*9/10]
	t.Logf("1%% -> 6%%: median %d s, p90 %d s, missed %d of %d within 300 s", median, p90, missed, runs)
	if median >= 30 || missed > 0 {
		t.Errorf("median detection %d s (want < 30), %d runs missed", median, missed)
	}
}

// TestRobustErrorTestBoundedEvidence: however lopsided a block, it adds
// at most half a nat: a 5-second candidate-only burst (25 errors against
// none) does not reject, where ErrorRateTest rejects in the first second;
// a candidate failing every request is rejected only after
// 2·(ln(1/alpha) − ln 2) blocks at the earliest.
func TestRobustErrorTestBoundedEvidence(t *testing.T) {
	t.Parallel()
	rt, _ := NewRobustErrorTest(RobustConfig{})
	pt, _ := NewErrorRateTest(SequentialConfig{})
	var ce int64
	for s := int64(1); s <= 5; s++ {
		ce += 5
		r, err := rt.Update(time.Duration(s)*time.Second, ce, 50*s, 0, 50*s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Decision == Reject || r.LogLR > float64(s)/2+math.Ln2 {
			t.Fatalf("second %d: %+v, want continue with log M <= %g", s, r, float64(s)/2+math.Ln2)
		}
	}
	if r, _ := pt.Update(ce, 250, 0, 250); r.Decision != Reject {
		t.Fatalf("ErrorRateTest after 25 vs 0 errors: %+v, want reject", r)
	}

	all, _ := NewRobustErrorTest(RobustConfig{})
	minBlocks := 2 * (math.Log(1/DefaultRobustAlpha) - math.Ln2)
	for s := int64(1); s <= 100; s++ {
		r, err := all.Update(time.Duration(s)*time.Second, 50*s, 50*s, 0, 50*s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Decision == Reject {
			t.Logf("every candidate request failing: rejected after %d blocks (bound %.1f)", s, minBlocks)
			if float64(s) < minBlocks {
				t.Errorf("rejected after %d blocks, fewer than the bound %.1f", s, minBlocks)
			}
			if s > 30 {
				t.Errorf("rejected only after %d blocks", s)
			}
			return
		}
	}
	t.Fatal("a candidate failing every request was never rejected")
}

func TestRobustErrorTestUpdate(t *testing.T) {
	t.Parallel()
	test, err := NewRobustErrorTest(RobustConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := test.Update(0, 0, 0, 0, 0)
	if err != nil || r.Decision != Continue || r.PValue != 1 || test.Blocks() != 0 {
		t.Fatalf("no data: %+v, %v, %g blocks; want continue with p = 1", r, err, test.Blocks())
	}
	// Updates closer than a block accumulate: two half seconds are one
	// block, counted when the second half arrives.
	test.Update(500*time.Millisecond, 3, 25, 0, 25)
	if test.Blocks() != 0 {
		t.Fatalf("half a block counted: %g blocks", test.Blocks())
	}
	r, _ = test.Update(time.Second, 5, 50, 1, 50)
	if test.Blocks() != 1 || r.Errors != 6 {
		t.Fatalf("after one block: %g blocks, %+v", test.Blocks(), r)
	}
	// R = 5 − 6·½ = 2, V = 4: log M = ln 2 + ½ ln(1/5) + 0.4 + ln Φ(2/√5).
	want := math.Ln2 + 0.5*math.Log(1.0/5) + 4.0/10 + math.Log(0.5*math.Erfc(-2/math.Sqrt(5)/math.Sqrt2))
	if math.Abs(r.LogLR-want) > 1e-12 {
		t.Fatalf("log M = %g, want %g", r.LogLR, want)
	}
	// One-sided traffic carries no information.
	r2, _ := test.Update(2*time.Second, 30, 100, 1, 50)
	if test.Blocks() != 1 || r2.LogLR != r.LogLR {
		t.Fatalf("candidate-only block counted: %g blocks, %+v", test.Blocks(), r2)
	}
	// An update spanning a minute counts as 60 blocks.
	test.Update(62*time.Second, 60, 3100, 31, 3050)
	if test.Blocks() != 61 {
		t.Fatalf("a 60-s update: %g blocks, want 61", test.Blocks())
	}

	// Counters near the int64 limit do not wrap the error count.
	big, _ := NewRobustErrorTest(RobustConfig{})
	const m = math.MaxInt64
	if r, err := big.Update(time.Second, m, m, m, m); err != nil || r.Errors != m || math.IsNaN(r.LogLR) {
		t.Fatalf("counters at the int64 limit: %+v, %v", r, err)
	}

	// The first update, at any time, is one block.
	first, _ := NewRobustErrorTest(RobustConfig{})
	first.Update(time.Hour, 3, 100, 1, 100)
	if first.Blocks() != 1 {
		t.Fatalf("first update: %g blocks, want 1", first.Blocks())
	}

	// Rejection is final and the p-value never rises.
	rej, _ := NewRobustErrorTest(RobustConfig{})
	var p float64
	for s := int64(1); s <= 40; s++ {
		r, _ = rej.Update(time.Duration(s)*time.Second, 10*s, 50*s, 0, 50*s)
		if s > 1 && r.PValue > p {
			t.Fatalf("p-value rose from %g to %g", p, r.PValue)
		}
		p = r.PValue
	}
	if r.Decision != Reject || !(r.PValue <= DefaultRobustAlpha) {
		t.Fatalf("40 s of 10 vs 0 errors: %+v, want reject", r)
	}
	r, _ = rej.Update(time.Hour, 400, 100000, 50000, 100000)
	if r.Decision != Reject || r.PValue != p {
		t.Fatalf("after many baseline errors: %+v, want reject with p %g", r, p)
	}

	// A baseline failing more never rejects.
	good, _ := NewRobustErrorTest(RobustConfig{})
	for s := int64(1); s <= 100; s++ {
		r, _ = good.Update(time.Duration(s)*time.Second, 0, 50*s, 5*s, 50*s)
	}
	if r.Decision != Continue || r.PValue != 1 {
		t.Fatalf("baseline worse: %+v, want continue with p = 1", r)
	}
	if math.IsInf(r.LogLR, 0) || math.IsNaN(r.LogLR) {
		t.Fatalf("baseline worse: log M = %g, want finite", r.LogLR)
	}
}

func TestRobustErrorTestBadInput(t *testing.T) {
	t.Parallel()
	for _, cfg := range []RobustConfig{{Alpha: 1}, {Alpha: -0.1}, {Alpha: math.NaN()}, {Block: -time.Second},
		{Prior: -1}, {Prior: math.Inf(1)}, {Prior: math.NaN()}} {
		if _, err := NewRobustErrorTest(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	test, _ := NewRobustErrorTest(RobustConfig{})
	twin, _ := NewRobustErrorTest(RobustConfig{})
	for _, tt := range []*RobustErrorTest{test, twin} {
		if _, err := tt.Update(10*time.Second, 5, 100, 1, 100); err != nil {
			t.Fatal(err)
		}
	}
	bad := []struct {
		at   time.Duration
		c    [4]int64
		want error
	}{
		{11 * time.Second, [4]int64{4, 100, 1, 100}, ErrCounts},   // errors decreased
		{11 * time.Second, [4]int64{5, 99, 1, 100}, ErrCounts},    // requests decreased
		{11 * time.Second, [4]int64{101, 100, 1, 100}, ErrCounts}, // errors > total
		{11 * time.Second, [4]int64{-1, 100, 1, 100}, ErrCounts},
		{11 * time.Second, [4]int64{5, 100, 1, 50}, ErrCounts},
		{11 * time.Second, [4]int64{5, 100, 200, 150}, ErrCounts},
		{9 * time.Second, [4]int64{6, 110, 1, 110}, ErrTime}, // time went backwards
		{-time.Second, [4]int64{6, 110, 1, 110}, ErrTime},
	}
	for _, b := range bad {
		before := test.result()
		r, err := test.Update(b.at, b.c[0], b.c[1], b.c[2], b.c[3])
		if !errors.Is(err, b.want) {
			t.Errorf("Update(%v, %v): err = %v, want %v", b.at, b.c, err, b.want)
		}
		if r != before {
			t.Errorf("Update(%v, %v) returned %+v, want the unchanged %+v", b.at, b.c, r, before)
		}
	}
	// The rejected updates left the state alone: the test and its twin,
	// which never saw them, agree from now on.
	for s := int64(11); s <= 60; s++ {
		a, errA := test.Update(time.Duration(s)*time.Second, 5+8*s, 100+50*s, 1+s/3, 100+50*s)
		b, errB := twin.Update(time.Duration(s)*time.Second, 5+8*s, 100+50*s, 1+s/3, 100+50*s)
		if errA != nil || errB != nil || a != b {
			t.Fatalf("second %d: %+v (%v) vs twin %+v (%v)", s, a, errA, b, errB)
		}
	}
	if test.Blocks() != twin.Blocks() {
		t.Fatalf("blocks %g vs twin %g", test.Blocks(), twin.Blocks())
	}
}

// TestRobustBlockBound checks numerically the inequality the test's
// validity rests on: for a block whose k errors are each the candidate's
// with probability π0 (binomial) or drawn without replacement from dc
// candidate and db baseline requests (hypergeometric), with
// R = xc − k·π0 and w = skewTerm(k, dc, db),
//
//	E[exp(λR − λ²(R² + w)/2)] ≤ 1  for every λ ≥ 0.
//
// For π0 = ½ it is de la Peña's bound for symmetric R; where the
// attribution is skewed to the right it holds with w = 0; skewed to the
// left it needs w, and fails without it (checked).
func TestRobustBlockBound(t *testing.T) {
	t.Parallel()
	lambdas := make([]float64, 0, 300)
	for l := 0.01; l <= 3; l += 0.01 {
		lambdas = append(lambdas, l)
	}
	lambdas = append(lambdas, 5, 10, 100)
	// worst returns the largest expectation over λ for the pmf of xc.
	worst := func(pmf []float64, k int, dc, db float64, skew bool) float64 {
		pi0 := dc / (dc + db)
		w := 0.0
		if skew {
			w = skewTerm(float64(k), dc, db)
		}
		m := 0.0
		for _, l := range lambdas {
			var e float64
			for x, p := range pmf {
				if p == 0 {
					continue
				}
				r := float64(x) - float64(k)*pi0
				e += p * math.Exp(l*r-l*l*(r*r+w)/2)
			}
			m = math.Max(m, e)
		}
		return m
	}
	const tol = 1e-9
	for pi0 := 0.05; pi0 < 0.96; pi0 += 0.05 {
		for k := 1; k <= 40; k++ {
			if e := worst(binomialPMF(k, pi0), k, pi0*1e12, (1-pi0)*1e12, true); e > 1+tol {
				t.Errorf("binomial k=%d π0=%.2f: E = %.6f > 1", k, pi0, e)
			}
		}
	}
	for _, d := range [][2]int{{50, 50}, {10, 40}, {40, 10}, {20, 80}, {80, 20}, {3, 7}, {7, 3}, {1, 9}, {9, 1}, {5, 1}, {1, 5}} {
		dc, db := d[0], d[1]
		for k := 1; k <= min(40, dc+db); k++ {
			if e := worst(hypergeomPMF(k, dc, db), k, float64(dc), float64(db), true); e > 1+tol {
				t.Errorf("hypergeometric k=%d dc=%d db=%d: E = %.6f > 1", k, dc, db, e)
			}
		}
	}
	// Without w the bound fails for a candidate with most of the traffic:
	// the check can fail.
	if e := worst(binomialPMF(10, 0.8), 10, 0.8e12, 0.2e12, false); e <= 1 {
		t.Errorf("π0 = 0.8 without w: E = %.6f, expected above 1", e)
	}
}

func binomialPMF(k int, p float64) []float64 {
	out := make([]float64, k+1)
	for x := range out {
		out[x] = math.Exp(lchoose(k, x) + float64(x)*math.Log(p) + float64(k-x)*math.Log1p(-p))
	}
	return out
}

// hypergeomPMF is P(xc = x) for k draws without replacement from dc
// candidate and db baseline requests.
func hypergeomPMF(k, dc, db int) []float64 {
	out := make([]float64, k+1)
	for x := range out {
		if x <= dc && k-x <= db {
			out[x] = math.Exp(lchoose(dc, x) + lchoose(db, k-x) - lchoose(dc+db, k))
		}
	}
	return out
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

func BenchmarkRobustErrorTestUpdate(b *testing.B) {
	test, _ := NewRobustErrorTest(RobustConfig{})
	var n int64
	var at time.Duration
	for b.Loop() {
		n += 50
		at += time.Second
		if _, err := test.Update(at, n/100, n, n/120, n); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzRobustErrorTest feeds arbitrary update sequences: the test never
// panics, rejects bad input without changing, keeps p in [0, 1] and
// non-increasing, and a rejection is final.
func FuzzRobustErrorTest(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 5, 10, 0, 0, 3, 10, 0, 0, 1, 0, 0, 0}, uint8(0))
	f.Add([]byte{255, 255, 0, 0, 200, 255, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9}, uint8(3))
	f.Add(make([]byte, 64), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, knobs uint8) {
		cfg := RobustConfig{
			Alpha: []float64{0, 0.01, 0.2, 1e-9}[knobs&3],
			Block: []time.Duration{0, time.Nanosecond, 5 * time.Second, time.Hour}[knobs>>2&3],
			Prior: []float64{0, 0.001, 50, 1e12}[knobs>>4&3],
		}
		test, err := NewRobustErrorTest(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var at time.Duration
		var c [4]int64
		prev := test.result()
		for len(data) >= 8 {
			// Each step: a signed time step and four signed counter steps,
			// scaled so that some steps go backwards or overflow.
			dt := time.Duration(int16(binary.LittleEndian.Uint16(data))) * 10 * time.Millisecond
			next := c
			for i := range 4 {
				d := int64(int8(data[2+i]))
				if data[6]&(1<<i) != 0 {
					d <<= 40
				}
				next[i] = c[i] + d
			}
			if data[7] == 255 {
				dt = time.Duration(math.MaxInt64)
			}
			data = data[8:]
			r, err := test.Update(at+dt, next[0], next[1], next[2], next[3])
			if err != nil {
				if r != prev {
					t.Fatalf("rejected update changed the result: %+v -> %+v", prev, r)
				}
				if !errors.Is(err, ErrCounts) && !errors.Is(err, ErrTime) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			at, c = at+dt, next
			if !(r.PValue >= 0 && r.PValue <= 1) || r.PValue > prev.PValue {
				t.Fatalf("p-value %g after %g", r.PValue, prev.PValue)
			}
			if math.IsNaN(r.LogLR) || math.IsInf(r.LogLR, 0) {
				t.Fatalf("log M = %g", r.LogLR)
			}
			if prev.Decision == Reject && r.Decision != Reject {
				t.Fatal("rejection undone")
			}
			if r.Errors < prev.Errors {
				t.Fatalf("errors went from %d to %d", prev.Errors, r.Errors)
			}
			prev = r
		}
	})
}
