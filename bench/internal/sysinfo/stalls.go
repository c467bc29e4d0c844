package sysinfo

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Stalls is what a spinning thread on every CPU saw: the gaps in its own
// run of the clock, longer than the threshold, during which it did not run
// (preempted inside the machine, or the virtual CPU descheduled by its
// host). On a machine whose CPUs stop for milliseconds at a time, no
// process there has a p99 below that: a run whose Stalls are high
// measured the machine as much as the code.
type Stalls struct {
	CPUs      int
	Duration  time.Duration // how long each thread spun
	Threshold time.Duration
	Count     int           // gaps longer than Threshold, all threads
	Total     time.Duration // their sum, all threads
	Max       time.Duration
}

// String renders the stalls on one line.
func (s Stalls) String() string {
	frac := float64(s.Total) / float64(time.Duration(s.CPUs)*s.Duration)
	return fmt.Sprintf("CPU stalls over %s while spinning %s on %d CPUs: %d, %.2f%% of the time, longest %s",
		s.Threshold, s.Duration, s.CPUs, s.Count, 100*frac, s.Max.Round(10*time.Microsecond))
}

// MeasureStalls spins one locked thread per CPU for d and collects the
// gaps over threshold each saw between two readings of the clock. It
// takes every CPU for d: run it before a measurement, not during one.
func MeasureStalls(d, threshold time.Duration) Stalls {
	n := runtime.NumCPU()
	res := Stalls{CPUs: n, Duration: d, Threshold: threshold}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var count int
			var total, longest time.Duration
			last := time.Now()
			end := last.Add(d)
			for last.Before(end) {
				now := time.Now()
				if gap := now.Sub(last); gap > threshold {
					count++
					total += gap
					longest = max(longest, gap)
				}
				last = now
			}
			mu.Lock()
			res.Count += count
			res.Total += total
			res.Max = max(res.Max, longest)
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}
