package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 10 * time.Second,
	}
}

// do sends one GET and returns the version that answered, or an error for
// a transport failure or a status other than 200.
func do(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Version"), nil
}

// latencyResult is one open-loop run.
type latencyResult struct {
	offered  int
	n        int
	errors   int
	achieved float64
	sched    []time.Duration // from the scheduled start, sorted
	service  []time.Duration // from the actual send, sorted
	late     int             // requests sent more than 1 ms after their schedule
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (r latencyResult) String() string {
	return fmt.Sprintf("offered=%d/s achieved=%.0f/s n=%d errors=%d p50=%s p90=%s p99=%s p999=%s max=%s | service p50=%s p99=%s | sent>1ms late=%d",
		r.offered, r.achieved, r.n, r.errors,
		ms(quantile(r.sched, .5)), ms(quantile(r.sched, .9)), ms(quantile(r.sched, .99)), ms(quantile(r.sched, .999)), ms(quantile(r.sched, 1)),
		ms(quantile(r.service, .5)), ms(quantile(r.service, .99)), r.late)
}

// openLoop sends rate requests per second for warmup+dur, spread over urls
// in turn. A pacer releases request i at start+i/rate to a pool of workers
// whatever happened to earlier requests; its latency runs from that
// scheduled time, so queueing behind a slow request is counted (no
// coordinated omission). Requests scheduled in the warm-up are not counted.
func openLoop(ctx context.Context, urls []string, rate int, warmup, dur time.Duration) latencyResult {
	const workers = 256
	c := newClient(workers)
	interval := time.Second / time.Duration(rate)
	total := int((warmup + dur) / interval)
	type job struct {
		i  int
		at time.Time
	}
	jobs := make(chan job, total)
	start := time.Now().Add(20 * time.Millisecond)
	measureFrom := start.Add(warmup)
	var mu sync.Mutex
	res := latencyResult{offered: rate}
	var wg sync.WaitGroup
	var lastDone atomic.Int64
	for range workers {
		wg.Go(func() {
			var sched, service []time.Duration
			errs, late := 0, 0
			for j := range jobs {
				sent := time.Now()
				_, err := do(c, urls[j.i%len(urls)])
				done := time.Now()
				if j.at.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs++
					continue
				}
				if sent.Sub(j.at) > time.Millisecond {
					late++
				}
				sched = append(sched, done.Sub(j.at))
				service = append(service, done.Sub(sent))
				if n := done.UnixNano(); n > lastDone.Load() {
					lastDone.Store(n)
				}
			}
			mu.Lock()
			res.sched = append(res.sched, sched...)
			res.service = append(res.service, service...)
			res.errors += errs
			res.late += late
			mu.Unlock()
		})
	}
	// The pacer sleeps in the kernel (nanosleep on a locked thread): Go's
	// timers round sub-millisecond sleeps up to the netpoller's 1 ms when
	// the process is otherwise idle, which would release requests late and
	// in bursts.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			ts := syscall.NsecToTimespec(int64(d))
			syscall.Nanosleep(&ts, nil)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- job{i, at}
	}
	close(jobs)
	wg.Wait()
	slices.Sort(res.sched)
	slices.Sort(res.service)
	res.n = len(res.sched) + res.errors
	if el := time.Unix(0, lastDone.Load()).Sub(measureFrom); el > 0 {
		res.achieved = float64(len(res.sched)) / el.Seconds()
	}
	c.CloseIdleConnections()
	return res
}

// loadResult is one closed-loop run.
type loadResult struct {
	n         int
	errors    int
	elapsed   time.Duration
	byVersion map[string]int
	firstErrs []string
}

func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.n) / r.elapsed.Seconds()
}

func (r loadResult) String() string {
	var vs []string
	for v, n := range r.byVersion {
		vs = append(vs, fmt.Sprintf("%s=%d (%.2f%%)", v, n, 100*float64(n)/float64(max(1, r.n-r.errors))))
	}
	sort.Strings(vs)
	s := fmt.Sprintf("n=%d errors=%d elapsed=%.1fs rate=%.0f/s versions: %s", r.n, r.errors, r.elapsed.Seconds(), r.rate(), strings.Join(vs, " "))
	if len(r.firstErrs) > 0 {
		s += " first errors: " + strings.Join(r.firstErrs, "; ")
	}
	return s
}

// closedLoop runs conns workers that each send a request as soon as the
// previous one ended. It stops after warmup+dur, or after total measured
// requests when total > 0; requests in the warm-up are not counted.
func closedLoop(ctx context.Context, urls []string, conns int, warmup, dur time.Duration, total int) loadResult {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	if warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, warmup)
		var wg sync.WaitGroup
		for w := range conns {
			wg.Go(func() {
				for i := w; wctx.Err() == nil; i++ {
					do(c, urls[i%len(urls)])
				}
			})
		}
		wg.Wait()
		cancel()
	}
	runCtx := ctx
	if total == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	var issued atomic.Int64
	var mu sync.Mutex
	res := loadResult{byVersion: map[string]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			n, errs := 0, 0
			by := map[string]int{}
			var first []string
			for i := w; runCtx.Err() == nil; i++ {
				if total > 0 && issued.Add(1) > int64(total) {
					break
				}
				v, err := do(c, urls[i%len(urls)])
				if runCtx.Err() != nil && err != nil && total == 0 {
					break // cut off by the end of the run, not a failure
				}
				n++
				if err != nil {
					errs++
					if len(first) < 3 {
						first = append(first, err.Error())
					}
					continue
				}
				by[v]++
			}
			mu.Lock()
			res.n += n
			res.errors += errs
			for v, k := range by {
				res.byVersion[v] += k
			}
			if len(res.firstErrs) < 3 {
				res.firstErrs = append(res.firstErrs, first...)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}
