package signals

import (
	"errors"
	"sync"
)

// Health is what a Tracker says about a signal.
type Health string

// Tracker states.
const (
	// Healthy: the last attempt succeeded (or none was made yet).
	Healthy Health = "healthy"
	// Erroring: the last attempt failed, fewer than Limit in a row.
	Erroring Health = "erroring"
	// Inconclusive: Limit or more consecutive attempts failed; the judge
	// must not pass on this signal and should pause.
	Inconclusive Health = "inconclusive"
)

// DefaultErrorLimit is the number of consecutive errors after which a
// Tracker reports Inconclusive.
const DefaultErrorLimit = 3

// TrackerState is a snapshot of a Tracker.
type TrackerState struct {
	Health      Health
	Consecutive int // errors in a row, 0 after a success
	Errors      int // errors in total
	Successes   int // successes in total
	ByKind      map[Kind]int
	LastError   error // nil until the first error
}

// Tracker counts a signal's errors. Every non-nil error except a
// KindCanceled one counts; a success resets the consecutive count. It is
// safe for concurrent use.
type Tracker struct {
	limit int

	mu sync.Mutex
	st TrackerState
}

// NewTracker returns a tracker that reports Inconclusive after limit
// consecutive errors; limit <= 0 means DefaultErrorLimit.
func NewTracker(limit int) *Tracker {
	if limit <= 0 {
		limit = DefaultErrorLimit
	}
	return &Tracker{limit: limit, st: TrackerState{Health: Healthy, ByKind: map[Kind]int{}}}
}

// Record counts the outcome of one attempt (err == nil for a success) and
// returns the health after it.
func (t *Tracker) Record(err error) Health {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.st.Consecutive = 0
		t.st.Successes++
		t.st.Health = Healthy
		return t.st.Health
	}
	k := KindOf(err)
	if k == KindCanceled {
		return t.st.Health
	}
	var se *Error
	if !errors.As(err, &se) {
		err = &Error{Kind: k, Err: err}
	}
	t.st.Consecutive++
	t.st.Errors++
	t.st.ByKind[k]++
	t.st.LastError = err
	if t.st.Consecutive >= t.limit {
		t.st.Health = Inconclusive
	} else {
		t.st.Health = Erroring
	}
	return t.st.Health
}

// State returns a copy of the tracker's counts.
func (t *Tracker) State() TrackerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.st
	st.ByKind = make(map[Kind]int, len(t.st.ByKind))
	for k, v := range t.st.ByKind {
		st.ByKind[k] = v
	}
	return st
}
