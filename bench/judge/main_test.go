package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/airlock-dev/airlock/internal/analysis/stats"
)

func TestGeneratorErrorRates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sc       Scenario
		seconds  int
		cand     float64 // expected error rates
		base     float64
		relTol   float64
		burstier bool // per-second counts overdispersed
	}{
		{"iid", Scenario{Latency: LogNormal, Errors: IID}, 20_000, 0.01, 0.01, 0.05, false},
		{"iid +5 points", Scenario{Latency: LogNormal, Errors: IID, ErrorAdd: 0.05}, 20_000, 0.06, 0.01, 0.05, false},
		// Bursts last 5 s and come every ~95 s: 100,000 s hold ~1,050 of
		// them, so the rate is within a few per cent of 1%.
		{"bursty shared", Scenario{Latency: LogNormal, Errors: BurstyShared}, 100_000, 0.01, 0.01, 0.10, true},
		{"bursty independent", Scenario{Latency: LogNormal, Errors: BurstyIndependent}, 100_000, 0.01, 0.01, 0.10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const rate = 10
			tr := newTraffic(tt.sc, rate, DefaultBursts, rand.New(rand.NewPCG(7, 11)))
			var sec [2]second
			var errs [2]int
			var sq [2]float64 // Σ errors² per second, for the dispersion
			sameSeconds := 0
			for range tt.seconds {
				tr.next(&sec)
				for v := range 2 {
					if len(sec[v].logLat) != rate {
						t.Fatalf("%d requests in a second, want %d", len(sec[v].logLat), rate)
					}
					errs[v] += sec[v].errors
					sq[v] += float64(sec[v].errors * sec[v].errors)
				}
				if tr.chains[0] == tr.chains[1] {
					sameSeconds++
				}
			}
			n := float64(tt.seconds * rate)
			for v, want := range []float64{tt.cand, tt.base} {
				got := float64(errs[v]) / n
				if math.Abs(got-want) > tt.relTol*want {
					t.Errorf("version %d: error rate %.4f, want %.4f ± %.0f%%", v, got, want, 100*tt.relTol)
				}
			}
			// A binomial count has variance/mean < 1; the bursts make it
			// about 1.4 at 10 requests a second (more at higher rates).
			mean := float64(errs[1]) / float64(tt.seconds)
			disp := (sq[1]/float64(tt.seconds) - mean*mean) / mean
			if tt.burstier != (disp > 1.2) {
				t.Errorf("variance/mean of per-second errors %.2f, bursty %t", disp, tt.burstier)
			}
			switch tt.sc.Errors {
			case BurstyShared:
				if sameSeconds != tt.seconds {
					t.Errorf("shared bursts: the chains differed in %d seconds", tt.seconds-sameSeconds)
				}
			case BurstyIndependent:
				if sameSeconds > tt.seconds*95/100 {
					t.Errorf("independent bursts: the chains agreed in %d of %d seconds", sameSeconds, tt.seconds)
				}
			}
		})
	}
}

// mixtureSF is P(latency > x ms) of the heavy-tailed mixture.
func mixtureSF(x float64) float64 {
	ln := 0.5 * math.Erfc((math.Log(x)-math.Log(lnMedianMS))/lnSigma/math.Sqrt2)
	pa := 1.0
	if x > paretoMinMS {
		pa = math.Pow(paretoMinMS/x, paretoShape)
	}
	return (1-paretoShare)*ln + paretoShare*pa
}

func TestGeneratorLatencies(t *testing.T) {
	t.Parallel()
	// The mixture's p99 by bisection on its survival function.
	lo, hi := 100.0, 10_000.0
	for range 100 {
		mid := (lo + hi) / 2
		if mixtureSF(mid) > 0.01 {
			lo = mid
		} else {
			hi = mid
		}
	}
	lnP99 := lnMedianMS * math.Exp(lnSigma*2.326347874)
	tests := []struct {
		name     string
		sc       Scenario
		p50, p99 float64 // of the baseline
	}{
		{"lognormal", Scenario{Latency: LogNormal, Errors: IID, LatencyScale: 1.5}, lnMedianMS, lnP99},
		{"pareto mixture", Scenario{Latency: ParetoMix, Errors: IID, LatencyScale: 2}, 0, lo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTraffic(tt.sc, 50, DefaultBursts, rand.New(rand.NewPCG(3, 5)))
			var sec [2]second
			var lat [2][]float64
			for range 2_000 { // 100,000 requests per version
				tr.next(&sec)
				for v := range 2 {
					for _, l := range sec[v].logLat {
						lat[v] = append(lat[v], math.Exp(l))
					}
				}
			}
			slices.Sort(lat[0])
			slices.Sort(lat[1])
			q := func(v int, p float64) float64 { return lat[v][int(p*float64(len(lat[v])))] }
			near := func(what string, got, want, tol float64) {
				t.Helper()
				if math.Abs(got/want-1) > tol {
					t.Errorf("%s: %.1f, want %.1f ± %.0f%%", what, got, want, 100*tol)
				}
			}
			if tt.p50 > 0 {
				near("baseline p50", q(1, 0.5), tt.p50, 0.02)
			}
			near("baseline p99", q(1, 0.99), tt.p99, 0.04)
			near("candidate p99 / baseline p99", q(0, 0.99)/q(1, 0.99), tt.sc.LatencyScale, 0.05)
		})
	}
}

// feed gives the rule n seconds in which each version has rate requests,
// errs[v] errors and every latency logLat[v].
func feed(f *fixedRule, n, rate int, errs [2]int, logLat [2]func(i int) float64) (firedAt int, why string) {
	var sec [2]second
	for t := 1; t <= n; t++ {
		for v := range 2 {
			sec[v].errors = errs[v]
			sec[v].logLat = sec[v].logLat[:0]
			for i := range rate {
				sec[v].logLat = append(sec[v].logLat, logLat[v](t*rate+i))
			}
		}
		f.observe(&sec)
		if ok, w := f.check(); ok {
			return t, w
		}
	}
	return 0, ""
}

func TestFixedRule(t *testing.T) {
	t.Parallel()
	// Latencies cycling over 10..~1,000 ms, the same for both versions
	// unless scaled.
	lat := func(scale float64) func(int) float64 {
		return func(i int) float64 { return math.Log(10*scale) + float64(i%97)*0.05 }
	}
	tests := []struct {
		name    string
		errs    [2]int // per second, of 50
		scale   float64
		firedAt int
		why     string
	}{
		{"identical", [2]int{1, 1}, 1, 0, ""},
		{"errors +4 points: not above 5", [2]int{3, 1}, 1, 0, ""},
		{"errors 2% -> 20%", [2]int{10, 1}, 1, 300, firedErrors},
		{"latency x1.9: not above +100%", [2]int{1, 1}, 1.9, 0, ""},
		{"latency x3", [2]int{1, 1}, 3, 300, firedLatency},
		{"both", [2]int{10, 1}, 3, 300, firedBoth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixedRule(300, 0.05, 1)
			at, why := feed(f, 600, 50, tt.errs, [2]func(int) float64{lat(tt.scale), lat(1)})
			if at != tt.firedAt || why != tt.why {
				t.Errorf("fired at %ds on %q, want %ds on %q", at, why, tt.firedAt, tt.why)
			}
		})
	}
}

// TestFixedRuleWindow checks that the window slides: errors and slow
// requests count while they are in the last window seconds, and not after.
func TestFixedRuleWindow(t *testing.T) {
	t.Parallel()
	observe := func(f *fixedRule, n, candErrs int, candLogLat float64) {
		var sec [2]second
		for range n {
			for v := range 2 {
				sec[v].errors = 0
				sec[v].logLat = sec[v].logLat[:0]
				l := math.Log(100)
				if v == 0 {
					sec[v].errors, l = candErrs, candLogLat
				}
				for range 50 {
					sec[v].logLat = append(sec[v].logLat, l)
				}
			}
			f.observe(&sec)
		}
	}
	for _, tt := range []struct {
		name   string
		errs   int
		logLat float64
		clean  int
		fired  bool
		why    string
	}{
		{"errors still in the window", 25, math.Log(100), 40, true, firedErrors},
		{"errors slid out", 25, math.Log(100), 50, false, ""},
		{"slow requests still in the window", 0, math.Log(1000), 40, true, firedLatency},
		{"slow requests slid out", 0, math.Log(1000), 50, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixedRule(50, 0.05, 1)
			observe(f, 10, tt.errs, tt.logLat) // 10 s of 50% errors or 10x latency
			if ok, _ := f.check(); ok {
				t.Fatal("fired before a whole window was seen")
			}
			observe(f, tt.clean, 0, math.Log(100))
			if ok, why := f.check(); ok != tt.fired || why != tt.why {
				t.Errorf("fired %t on %q, want %t on %q", ok, why, tt.fired, tt.why)
			}
			f.reset()
			observe(f, 60, 0, math.Log(100))
			if ok, why := f.check(); ok {
				t.Errorf("after reset and clean traffic: fired on %s", why)
			}
		})
	}
}

func TestKayentaVerdict(t *testing.T) {
	t.Parallel()
	c := config{pass: 95, errWeight: 50, latWeight: 50}
	for _, tt := range []struct {
		errHigh, latHigh bool
		ok               bool
		score            float64
	}{
		{false, false, true, 100},
		{false, true, false, 50},
		{true, false, false, 50},
		{true, true, false, 0},
	} {
		ok, score := kayentaVerdict(c, tt.errHigh, tt.latHigh)
		if ok != tt.ok || score != tt.score {
			t.Errorf("errors High %t, latency High %t: pass %t score %g, want %t %g",
				tt.errHigh, tt.latHigh, ok, score, tt.ok, tt.score)
		}
	}
}

func TestRunOneDeterministic(t *testing.T) {
	t.Parallel()
	c := config{
		rate: 50, bursts: DefaultBursts, duration: 600, interval: 300, sampleEvery: 8, alpha: 0.01, pass: 95,
		errWeight: 50, latWeight: 50, errPoints: 0.05, latIncrease: 1,
		classifier: stats.ClassifierConfig{Direction: stats.Increase, Band: stats.BandBaseline},
		robust:     stats.RobustConfig{Alpha: stats.DefaultRobustAlpha},
	}
	sc := Scenario{Latency: LogNormal, Errors: IID, ErrorAdd: 0.05}
	a, err := runOne(c, sc, 1, 42, newWorkspace(c))
	if err != nil {
		t.Fatal(err)
	}
	b, err := runOne(c, sc, 1, 42, newWorkspace(c))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("same seed, different outcomes: %+v and %+v", a, b)
	}
	// +5 points: the sequential test within a minute, Kayenta at the
	// first interval's end, the fixed rule not before its window is full.
	if s := a.At[judgeSequential]; s == 0 || s > 60 {
		t.Errorf("sequential judge at %ds, want within 60 s", s)
	}
	// The robust test's blocks give at most half a nat each: not before
	// about 14 s at α = 0.0005, and within a minute here.
	if r := a.At[judgeRobust]; r < 14 || r > 60 || a.Why[judgeRobust] != firedErrors {
		t.Errorf("robust judge at %ds on %q, want 14-60 s on errors", r, a.Why[judgeRobust])
	}
	if k := a.At[judgeKayenta]; k != 300 {
		t.Errorf("Kayenta-style judge at %ds, want 300", k)
	}
	if f := a.At[judgeFixed]; f != 0 && f < 300 {
		t.Errorf("fixed rule at %ds, before its 300 s window was full", f)
	}

	// p99 ×2: both sequential judges roll back on latency at the first
	// interval's end (their error tests see equal rates).
	lat, err := runOne(c, Scenario{Latency: LogNormal, Errors: IID, LatencyScale: 2}, 1, 43, newWorkspace(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []int{judgeSequential, judgeRobust} {
		if lat.At[j] != 300 || lat.Why[j] != firedLatency {
			t.Errorf("p99 x2: %s at %ds on %q, want 300 s on latency", judgeNames[j], lat.At[j], lat.Why[j])
		}
	}
}

func TestWilsonAndQuantile(t *testing.T) {
	t.Parallel()
	lo, hi := wilson(10, 1000)
	if !(lo > 0.004 && lo < 0.006 && hi > 0.017 && hi < 0.019) {
		t.Errorf("wilson(10, 1000) = [%g, %g], want about [0.0054, 0.0183]", lo, hi)
	}
	inf := math.Inf(1)
	if m := quantile([]float64{1, 2, 3, inf}, 0.5); m == nil || *m != 2 {
		t.Errorf("median of 1, 2, 3, never = %v, want 2", m)
	}
	if m := quantile([]float64{1, inf, inf}, 0.5); m != nil {
		t.Errorf("median with most runs undetected = %v, want nil", *m)
	}
}

func TestShellJoin(t *testing.T) {
	t.Parallel()
	got := shellJoin([]string{"-runs", "200", "-scenarios", "healthy,1% -> 6%", "it's", ""})
	want := `-runs 200 -scenarios 'healthy,1% -> 6%' 'it'\''s' ''`
	if got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}
