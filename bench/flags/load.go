package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/airlock-dev/airlock/bench/internal/sysinfo"
)

// target is one OFREP server under load.
type target struct {
	name string
	base string   // http://127.0.0.1:PORT
	keys []string // bearer tokens, rotated per request; none for flagd
	pid  int      // the server process, for its CPU time
}

// loadGen sends single-flag OFREP evaluations: a random flag of keys with
// a random request body, the same for every target.
type loadGen struct {
	urls   []string // one per flag key, relative to the target's base
	bodies [][]byte
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     0,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		Timeout: 10 * time.Second,
	}
}

// outcome classes of one request.
const (
	ok = iota
	limited
	failed
)

// do sends one evaluation of a random flag with a random body; seq picks
// the evaluation key.
func (g *loadGen) do(c *http.Client, t *target, rng *rand.Rand, seq uint64) int {
	req, err := http.NewRequest(http.MethodPost, t.base+g.urls[rng.IntN(len(g.urls))], bytes.NewReader(g.bodies[rng.IntN(len(g.bodies))]))
	if err != nil {
		return failed
	}
	req.Header["Content-Type"] = []string{"application/json"}
	if len(t.keys) > 0 {
		req.Header["Authorization"] = []string{"Bearer " + t.keys[seq%uint64(len(t.keys))]}
	}
	resp, err := c.Do(req)
	if err != nil {
		return failed
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return failed
	case resp.StatusCode == http.StatusOK:
		return ok
	case resp.StatusCode == http.StatusTooManyRequests:
		return limited
	default:
		return failed
	}
}

// result is one measured run.
type result struct {
	Server    string  `json:"server"`
	Mode      string  `json:"mode"` // closed or open
	Conns     int     `json:"connections,omitempty"`
	Offered   int     `json:"offeredPerSecond,omitempty"`
	N         int     `json:"requests"`
	Rate      float64 `json:"requestsPerSecond"`
	Errors    int     `json:"errors"`  // non-200 answers and transport failures, 429s included
	Limited   int     `json:"limited"` // 429 answers (airlock's per-key rate limit)
	P50       float64 `json:"p50Micros"`
	P99       float64 `json:"p99Micros"`
	P999      float64 `json:"p999Micros"`
	Max       float64 `json:"maxMicros"`
	ServerCPU float64 `json:"serverCPUMicrosPerRequest,omitempty"`
	ClientCPU float64 `json:"loadGeneratorCPUMicrosPerRequest,omitempty"`

	lat []time.Duration
}

// quantile returns the q-quantile (0 < q <= 1) of sorted latencies by the
// nearest-rank method: the smallest value at least q of them are <=.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (r *result) finish(lat []time.Duration) {
	slices.Sort(lat)
	r.lat = lat
	r.P50, r.P99, r.P999, r.Max = micros(quantile(lat, .5)), micros(quantile(lat, .99)), micros(quantile(lat, .999)), micros(quantile(lat, 1))
}

// closedLoop runs conns workers, each sending its next request as soon as
// the previous one is answered, for warmup (not counted) and then dur.
func (g *loadGen) closedLoop(ctx context.Context, t *target, conns int, warmup, dur time.Duration) result {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	var seq atomic.Uint64
	run := func(ctx context.Context, record bool) (n, limitedN, errs int, lat []time.Duration) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range conns {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 42))
				var my []time.Duration
				var myN, myLim, myErr int
				for ctx.Err() == nil {
					s := time.Now()
					o := g.do(c, t, rng, seq.Add(1))
					d := time.Since(s)
					if ctx.Err() != nil && o == failed {
						break // cut off by the end of the run
					}
					myN++
					switch o {
					case limited:
						myLim++
						myErr++
					case failed:
						myErr++
					}
					if record {
						my = append(my, d)
					}
				}
				mu.Lock()
				n, limitedN, errs = n+myN, limitedN+myLim, errs+myErr
				lat = append(lat, my...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return
	}
	if warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, warmup)
		run(wctx, false)
		cancel()
	}
	cpu0, self0 := sysinfo.ProcCPU(t.pid), selfCPU()
	rctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	n, lim, errs, lat := run(rctx, true)
	el := time.Since(start)
	r := result{Server: t.name, Mode: "closed", Conns: conns, N: n, Errors: errs, Limited: lim, Rate: float64(n) / el.Seconds()}
	if cpu := sysinfo.ProcCPU(t.pid) - cpu0; cpu > 0 && n > 0 {
		r.ServerCPU = micros(cpu) / float64(n)
	}
	if n > 0 {
		r.ClientCPU = micros(selfCPU()-self0) / float64(n)
	}
	r.finish(lat)
	return r
}

// openLoop offers rate requests a second for warmup (not counted) and then
// dur. A pacer releases request i at start+i/rate to a pool of workers
// whatever happened to earlier ones, and latency runs from that scheduled
// time, so a stall shows in the tail (no coordinated omission).
func (g *loadGen) openLoop(ctx context.Context, t *target, rate, workers int, warmup, dur time.Duration) result {
	c := newClient(workers)
	defer c.CloseIdleConnections()
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
	var lat []time.Duration
	var n, lim, errs int
	var lastDone atomic.Int64
	var seq atomic.Uint64
	var wg sync.WaitGroup
	cpu0, self0 := sysinfo.ProcCPU(t.pid), selfCPU()
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var my []time.Duration
			var myN, myLim, myErr int
			for j := range jobs {
				o := g.do(c, t, rng, seq.Add(1))
				done := time.Now()
				if j.at.Before(measureFrom) {
					continue
				}
				myN++
				switch o {
				case limited:
					myLim++
					myErr++
				case failed:
					myErr++
				}
				my = append(my, done.Sub(j.at))
				if d := done.UnixNano(); d > lastDone.Load() {
					lastDone.Store(d)
				}
			}
			mu.Lock()
			n, lim, errs = n+myN, lim+myLim, errs+myErr
			lat = append(lat, my...)
			mu.Unlock()
		})
	}
	// The pacer sleeps in the kernel on a locked thread: Go's timers round
	// sub-millisecond sleeps up when the process is otherwise idle, which
	// would release requests late and in bursts.
	runtime.LockOSThread()
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
	runtime.UnlockOSThread()
	close(jobs)
	wg.Wait()
	r := result{Server: t.name, Mode: "open", Offered: rate, N: n, Errors: errs, Limited: lim}
	if el := time.Unix(0, lastDone.Load()).Sub(measureFrom); el > 0 {
		r.Rate = float64(n-errs) / el.Seconds()
	}
	// CPU over the whole run, warm-up included, per request issued.
	if cpu := sysinfo.ProcCPU(t.pid) - cpu0; cpu > 0 && total > 0 {
		r.ServerCPU = micros(cpu) / float64(total)
	}
	if total > 0 {
		r.ClientCPU = micros(selfCPU()-self0) / float64(total)
	}
	r.finish(lat)
	return r
}

func (r result) String() string {
	s := fmt.Sprintf("%s %s", r.Server, r.Mode)
	if r.Mode == "open" {
		s += fmt.Sprintf(" offered=%d/s", r.Offered)
	} else {
		s += fmt.Sprintf(" conns=%d", r.Conns)
	}
	return s + fmt.Sprintf(" n=%d rate=%.0f/s errors=%d (429: %d) p50=%.0fµs p99=%.0fµs p99.9=%.0fµs max=%.0fµs server-cpu/req=%.1fµs loadgen-cpu/req=%.1fµs",
		r.N, r.Rate, r.Errors, r.Limited, r.P50, r.P99, r.P999, r.Max, r.ServerCPU, r.ClientCPU)
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
