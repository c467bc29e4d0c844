package stats

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrTime means the time passed to RobustErrorTest.Update was negative or
// earlier than at the previous update.
var ErrTime = errors.New("stats: time went backwards")

// Defaults of RobustConfig.
const (
	// DefaultRobustAlpha is the default bound on false rejections when the
	// versions' errors are exchangeable. It is lower than DefaultAlpha
	// because bursts local to one version are outside that null: at
	// 0.0005 the false rollback rate measured with 2-second local bursts
	// is 0.8% (docs/analysis-stats.md, "Judge quality").
	DefaultRobustAlpha = 0.0005
	// DefaultRobustBlock is the default block length: the unit of time
	// whose evidence is bounded.
	DefaultRobustBlock = time.Second
	// DefaultRobustPrior is the default precision ρ, in errors², of the
	// half-normal mixture over the betting rate λ.
	DefaultRobustPrior = 1.0
)

// RobustConfig configures a RobustErrorTest. Zero fields take defaults.
type RobustConfig struct {
	// Alpha bounds the probability of ever rejecting, however often Update
	// is called, when in every block each error is the candidate's with
	// probability equal to its share of the block's requests (equal error
	// rates, bursts shared by both versions included). In (0, 1); default
	// DefaultRobustAlpha.
	Alpha float64
	// Block is the length of a block of time, the unit of evidence: n
	// blocks give at most about n/2 nats however many errors they hold,
	// so an excess must last about 2·ln(1/Alpha) blocks to be rejected.
	// A longer block tolerates longer bursts local to one version and
	// detects regressions later. Positive; default DefaultRobustBlock.
	Block time.Duration
	// Prior is the precision ρ, in errors², of the half-normal mixture
	// over the betting rate. Positive and finite; default
	// DefaultRobustPrior.
	Prior float64
}

// RobustErrorTest is a sequential test that the candidate's error rate is
// higher than the baseline's that is robust to error bursts local to one
// version (per-version overdispersion). Like ErrorRateTest it is fed
// cumulative counters and may be checked as often as wanted, but its unit
// of evidence is a block of time, not an error. Each block's attribution
// residual R = xc − k·π0 (xc candidate errors of k, π0 the candidate's
// share of the block's N requests, f = k/N) enters a self-normalised mixture
//
//	S = Σ R,  V = Σ (R² + w),  w = (2π0 − 1)⁺·k·π0·(1 − π0) + (2f − 1)⁺·dc·f·(1 − f)
//	M = 2·√(ρ/(V+ρ))·exp(S²/(2(V+ρ)))·Φ(S/√(V+ρ))
//
// and the test rejects once M ≥ 1/Alpha. Since S² ≤ n·V after n blocks,
// log M ≤ n/2 + log 2: a 5-second burst of 25 candidate errors is worth
// what 5 seconds of any steady excess are worth (at most 2.5 nats), not
// the e¹¹ ErrorRateTest gives it.
//
// Validity: when, given the past and the block's error total, each error
// is the candidate's with probability π0, exp(λS − λ²V/2) is a
// supermartingale for every λ ≥ 0 — de la Peña's bound for conditionally
// symmetric increments when π0 = ½, and for other splits a bound checked
// numerically (TestRobustBlockBound) — so M is one too (a mixture over λ)
// and P(ever M ≥ 1/Alpha) ≤ Alpha by Ville's inequality. Bursts local to
// one version are outside that null; for them the false rejection rate is
// measured (docs/analysis-stats.md): small when bursts last a second or
// two, large when they last as long as the test takes to detect.
//
// Updates closer than Block accumulate into one block. An update that
// spans n ≥ 2 blocks cannot show how its errors were spread; it counts as
// n blocks with the residual spread evenly (V += R²/n + k·π0·(1−π0)),
// which is valid for normal residuals but gives no protection against
// bursts shorter than the update interval.
//
// A RobustErrorTest is not safe for concurrent use.
type RobustErrorTest struct {
	alpha     float64
	block     time.Duration
	rho       float64
	threshold float64 // log(1/alpha)

	started    bool
	lastAt     time.Duration
	last       [4]int64 // counters at the last update
	blockAt    time.Duration
	blockStart [4]int64 // counters at the start of the open block

	s, v     float64
	blocks   float64
	errors   int64
	curLog   float64 // log M after the last closed block
	maxLog   float64
	rejected bool
}

// NewRobustErrorTest returns a test with no data. It fails when Alpha is
// outside (0, 1), Block is negative, or Prior is negative or not finite.
func NewRobustErrorTest(cfg RobustConfig) (*RobustErrorTest, error) {
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultRobustAlpha
	}
	if !(cfg.Alpha > 0 && cfg.Alpha < 1) {
		return nil, fmt.Errorf("stats: alpha %g must be between 0 and 1 (exclusive)", cfg.Alpha)
	}
	if cfg.Block == 0 {
		cfg.Block = DefaultRobustBlock
	}
	if cfg.Block < 0 {
		return nil, fmt.Errorf("stats: block %v must be positive", cfg.Block)
	}
	if cfg.Prior == 0 {
		cfg.Prior = DefaultRobustPrior
	}
	if !(cfg.Prior > 0) || math.IsInf(cfg.Prior, 0) {
		return nil, fmt.Errorf("stats: prior %g must be a finite number above 0", cfg.Prior)
	}
	return &RobustErrorTest{
		alpha:     cfg.Alpha,
		block:     cfg.Block,
		rho:       cfg.Prior,
		threshold: -math.Log(cfg.Alpha),
	}, nil
}

// Update takes the cumulative error and request counts of both versions at
// time at and returns the test's state. at is any monotonic clock (time
// since the rollout step began, say); the counters of the first update
// are counted from zero and form one block. Counters must never decrease
// and time must not go backwards: otherwise Update returns an error
// wrapping ErrCounts or ErrTime and the test is unchanged.
func (t *RobustErrorTest) Update(at time.Duration, candErrors, candTotal, baseErrors, baseTotal int64) (SequentialResult, error) {
	now := [4]int64{candErrors, candTotal, baseErrors, baseTotal}
	if err := checkCounts(now, t.last); err != nil {
		return t.result(), err
	}
	if at < 0 || (t.started && at < t.lastAt) {
		return t.result(), fmt.Errorf("update at %v after %v: %w", at, t.lastAt, ErrTime)
	}
	first := !t.started
	t.started = true
	t.last, t.lastAt = now, at
	switch {
	case first:
		// The counters so far, whose timing is unknown, are one block.
		t.closeBlock(t.block)
	case at-t.blockAt >= t.block:
		t.closeBlock(at - t.blockAt)
	}
	t.maxLog = math.Max(t.maxLog, t.curLog)
	if t.maxLog >= t.threshold {
		t.rejected = true
	}
	return t.result(), nil
}

// closeBlock adds the open block, which lasted span, to the mixture and
// opens the next one at the last update. A block in which one version had
// no requests or nobody failed carries no information and is skipped.
func (t *RobustErrorTest) closeBlock(span time.Duration) {
	xc := float64(t.last[0] - t.blockStart[0])
	dc := float64(t.last[1] - t.blockStart[1])
	xb := float64(t.last[2] - t.blockStart[2])
	db := float64(t.last[3] - t.blockStart[3])
	k := xc + xb
	if dc > 0 && db > 0 && k > 0 {
		pi0 := dc / (dc + db)
		r := xc - k*pi0
		vNull := k * pi0 * (1 - pi0)
		if n := float64(span / t.block); n >= 2 {
			t.v += r*r/n + vNull
			t.blocks += n
		} else {
			t.v += r*r + skewTerm(k, dc, db)
			t.blocks++
		}
		t.s += r
		t.errors = satAdd(satAdd(t.errors, t.last[0]-t.blockStart[0]), t.last[2]-t.blockStart[2])
		t.curLog = t.logMixture()
	}
	t.blockStart, t.blockAt = t.last, t.lastAt
}

// satAdd returns a + b for b ≥ 0, saturating at math.MaxInt64 (counters
// near the int64 limit must not wrap Errors around).
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// skewTerm is w, what V needs besides R² for a block with k errors among
// dc candidate and db baseline requests. The attribution xc is
// hypergeometric: k draws from N = dc + db, or equally dc draws with
// success fraction f = k/N, and the bound needs an extra term only when it
// is skewed to the left, which takes π0 = dc/N > ½ or f > ½. Then
// w = (2π0 − 1)⁺·k·π0·(1 − π0) + (2f − 1)⁺·dc·f·(1 − f): 0 for the usual
// block (π0 ≤ ½, fewer errors than half the requests) and for π0 = ½
// with f ≤ ½. TestRobustBlockBound checks the bound numerically.
func skewTerm(k, dc, db float64) float64 {
	n := dc + db
	pi0, f := dc/n, k/n
	return math.Max(0, 2*pi0-1)*k*pi0*(1-pi0) + math.Max(0, 2*f-1)*dc*f*(1-f)
}

// logMixture returns log M for the current S and V.
func (t *RobustErrorTest) logMixture() float64 {
	vr := t.v + t.rho
	z := t.s / math.Sqrt(vr)
	base := math.Ln2 + 0.5*math.Log(t.rho/vr)
	if z < -20 {
		// exp(z²/2)·Φ(z) → 1/(−z·√(2π)) (Mills' ratio): keep it finite.
		return base - math.Log(-z*math.Sqrt(2*math.Pi))
	}
	return base + z*z/2 + math.Log(0.5*math.Erfc(-z/math.Sqrt2))
}

func (t *RobustErrorTest) result() SequentialResult {
	r := SequentialResult{
		PValue: math.Min(1, math.Exp(-t.maxLog)),
		LogLR:  t.curLog,
		Errors: t.errors,
	}
	if t.rejected {
		r.Decision = Reject
	}
	return r
}

// Blocks returns the number of blocks counted so far: those in which both
// versions had requests and at least one failed (an update spanning n
// blocks counts n).
func (t *RobustErrorTest) Blocks() float64 { return t.blocks }
