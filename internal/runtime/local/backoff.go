package local

import "time"

// BackoffPolicy decides how an instance that exited on its own is restarted.
// The zero value takes the defaults below.
type BackoffPolicy struct {
	// Initial is the delay before the first restart; it doubles with each
	// consecutive crash. Default 1s.
	Initial time.Duration
	// Max caps the delay. Default 1m.
	Max time.Duration
	// ResetAfter: an instance that was healthy for at least this long before
	// it exited starts counting crashes from zero again. Default 30s.
	ResetAfter time.Duration
	// MaxCrashes consecutive crashes (without a healthy ResetAfter in
	// between) mark the instance failed instead of restarting it. Default 5.
	MaxCrashes int
}

func (p BackoffPolicy) withDefaults() BackoffPolicy {
	if p.Initial <= 0 {
		p.Initial = time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Minute
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.ResetAfter <= 0 {
		p.ResetAfter = 30 * time.Second
	}
	if p.MaxCrashes <= 0 {
		p.MaxCrashes = 5
	}
	return p
}

// Crash describes one unexpected exit of an instance's process.
type Crash struct {
	// Before is the number of consecutive crashes before this one.
	Before int
	// HealthySince is when the exited process first passed its health
	// check; zero if it never did.
	HealthySince time.Time
	// At is when the process exited.
	At time.Time
}

// Decision is what to do after a crash.
type Decision struct {
	// Crashes is the consecutive crash count including this one.
	Crashes int
	// Fail means: give up, the instance is failed.
	Fail bool
	// Delay is how long to wait before the restart when not Fail.
	Delay time.Duration
}

// Next decides the restart after crash c. It is a pure function: the clock
// is the caller's (c.At).
func (p BackoffPolicy) Next(c Crash) Decision {
	p = p.withDefaults()
	n := c.Before
	if !c.HealthySince.IsZero() && c.At.Sub(c.HealthySince) >= p.ResetAfter {
		n = 0
	}
	n++
	if n >= p.MaxCrashes {
		return Decision{Crashes: n, Fail: true}
	}
	d := p.Initial
	for i := 1; i < n; i++ {
		d *= 2
		if d >= p.Max {
			d = p.Max
			break
		}
	}
	return Decision{Crashes: n, Delay: d}
}
