package router

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBounds are the upper bounds of the latency histogram buckets. A
// last, unbounded bucket follows them.
var latencyBounds = [...]time.Duration{
	50 * time.Microsecond,
	100 * time.Microsecond,
	250 * time.Microsecond,
	500 * time.Microsecond,
	time.Millisecond,
	2500 * time.Microsecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	25 * time.Millisecond,
	50 * time.Millisecond,
	100 * time.Millisecond,
	250 * time.Millisecond,
	500 * time.Millisecond,
	time.Second,
	2500 * time.Millisecond,
	5 * time.Second,
	10 * time.Second,
	30 * time.Second,
}

// LatencyBounds returns the upper bounds of the latency histogram buckets;
// Histogram.Counts has one more entry, for latencies above the last bound.
func LatencyBounds() []time.Duration {
	b := latencyBounds
	return b[:]
}

// versionMetrics are the counters of one version. They live as long as the
// router and only grow.
type versionMetrics struct {
	requests     atomic.Uint64
	errors       atomic.Uint64
	connFailures atomic.Uint64
	fallbacks    atomic.Uint64
	retries      atomic.Uint64
	latencySum   atomic.Int64
	buckets      [len(latencyBounds) + 1]atomic.Uint64
}

// observe records one finished request.
func (m *versionMetrics) observe(d time.Duration, failed bool) {
	m.requests.Add(1)
	if failed {
		m.errors.Add(1)
	}
	m.latencySum.Add(int64(d))
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	m.buckets[i].Add(1)
}

func (m *versionMetrics) snapshot(version string) Snapshot {
	s := Snapshot{
		Version:      version,
		Requests:     m.requests.Load(),
		Errors:       m.errors.Load(),
		ConnFailures: m.connFailures.Load(),
		Fallbacks:    m.fallbacks.Load(),
		Retries:      m.retries.Load(),
		Latency: Histogram{
			Counts: make([]uint64, len(m.buckets)),
			Sum:    time.Duration(m.latencySum.Load()),
		},
	}
	for i := range m.buckets {
		c := m.buckets[i].Load()
		s.Latency.Counts[i] = c
		s.Latency.Count += c
	}
	return s
}

// Snapshot holds the counters of one version since the router started. All
// counters only grow, so the difference of two snapshots (Sub) covers the
// time between them.
type Snapshot struct {
	Version string
	// Requests counts requests answered for the version, including
	// router errors (502, 503) attributed to it.
	Requests uint64
	// Errors counts 5xx answers and connection failures.
	Errors uint64
	// ConnFailures counts failed attempts to reach an instance (also the
	// ones a retry recovered from).
	ConnFailures uint64
	// Fallbacks counts requests picked for this version that went to
	// another one because it had no healthy instance.
	Fallbacks uint64
	// Retries counts requests retried on another instance after a
	// connection failure.
	Retries uint64
	// Latency is the time from the request's arrival to the end of the
	// response body.
	Latency Histogram
}

// Histogram is a latency histogram over LatencyBounds.
type Histogram struct {
	// Counts[i] counts latencies in (bound[i-1], bound[i]]; the last entry
	// counts those above the last bound. It is not cumulative.
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// Sub returns s minus an earlier snapshot of the same version.
func (s Snapshot) Sub(earlier Snapshot) Snapshot {
	d := Snapshot{
		Version:      s.Version,
		Requests:     s.Requests - earlier.Requests,
		Errors:       s.Errors - earlier.Errors,
		ConnFailures: s.ConnFailures - earlier.ConnFailures,
		Fallbacks:    s.Fallbacks - earlier.Fallbacks,
		Retries:      s.Retries - earlier.Retries,
		Latency: Histogram{
			Counts: make([]uint64, len(s.Latency.Counts)),
			Count:  s.Latency.Count - earlier.Latency.Count,
			Sum:    s.Latency.Sum - earlier.Latency.Sum,
		},
	}
	for i, c := range s.Latency.Counts {
		if i < len(earlier.Latency.Counts) {
			c -= earlier.Latency.Counts[i]
		}
		d.Latency.Counts[i] = c
	}
	return d
}

// ErrorRate returns Errors/Requests, or 0 without requests.
func (s Snapshot) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Quantile estimates the q-quantile (0 < q <= 1) by linear interpolation
// inside the bucket that holds it. Latencies above the last bound are
// reported as the last bound. It returns 0 for an empty histogram.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var cum float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			if i >= len(latencyBounds) {
				return latencyBounds[len(latencyBounds)-1]
			}
			lo := time.Duration(0)
			if i > 0 {
				lo = latencyBounds[i-1]
			}
			hi := latencyBounds[i]
			frac := (rank - cum) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		cum += float64(c)
	}
	return latencyBounds[len(latencyBounds)-1]
}

// Mean returns the mean latency, or 0 for an empty histogram.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Snapshot returns the counters of one version since the router started,
// and false when the router has never had that version.
func (r *Router) Snapshot(version string) (Snapshot, bool) {
	r.mu.Lock()
	m, ok := r.metrics[version]
	r.mu.Unlock()
	if !ok {
		return Snapshot{Version: version}, false
	}
	return m.snapshot(version), true
}

// Metrics returns a snapshot of every version the router has had, sorted
// by version.
func (r *Router) Metrics() []Snapshot {
	r.mu.Lock()
	out := make([]Snapshot, 0, len(r.metrics))
	for v, m := range r.metrics {
		out = append(out, m.snapshot(v))
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// metricsFor returns the counters of a version, creating them. The caller
// holds r.mu.
func (r *Router) metricsFor(version string) *versionMetrics {
	m, ok := r.metrics[version]
	if !ok {
		m = new(versionMetrics)
		r.metrics[version] = m
	}
	return m
}

// collector exports a router's metrics to Prometheus.
type collector struct {
	r         *Router
	requests  *prometheus.Desc
	errors    *prometheus.Desc
	connFails *prometheus.Desc
	fallbacks *prometheus.Desc
	retries   *prometheus.Desc
	latency   *prometheus.Desc
	weight    *prometheus.Desc
	healthy   *prometheus.Desc
	instances *prometheus.Desc
}

// Collector returns a prometheus.Collector of the router's metrics. Every
// series carries the labels app and environment (from Options) and version,
// so the collectors of several routers can be registered on one registry.
func (r *Router) Collector() prometheus.Collector {
	cl := prometheus.Labels{"app": r.opts.App, "environment": r.opts.Environment}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("airlock_router_"+name, help, []string{"version"}, cl)
	}
	return &collector{
		r:         r,
		requests:  desc("requests_total", "Requests answered per version."),
		errors:    desc("errors_total", "Requests answered with a 5xx or failed by a connection failure, per version."),
		connFails: desc("connection_failures_total", "Failed attempts to reach an instance, per version."),
		fallbacks: desc("fallbacks_total", "Requests picked for a version without a healthy instance and sent to another version."),
		retries:   desc("retries_total", "Requests retried on another instance after a connection failure."),
		latency:   desc("request_duration_seconds", "Time from request arrival to the end of the response body."),
		weight:    desc("weight_percent", "Configured share of new traffic per version."),
		healthy:   desc("healthy_instances", "Instances currently receiving traffic per version."),
		instances: desc("instances", "Configured instances per version."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.errors, c.connFails, c.fallbacks, c.retries, c.latency, c.weight, c.healthy, c.instances} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.Metrics() {
		v := s.Version
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.Requests), v)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors), v)
		ch <- prometheus.MustNewConstMetric(c.connFails, prometheus.CounterValue, float64(s.ConnFailures), v)
		ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(s.Fallbacks), v)
		ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(s.Retries), v)
		buckets := make(map[float64]uint64, len(latencyBounds))
		var cum uint64
		for i, b := range latencyBounds {
			cum += s.Latency.Counts[i]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, s.Latency.Count, s.Latency.Sum.Seconds(), buckets, v)
	}
	st := c.r.state.Load()
	now := c.r.now()
	for _, p := range st.pools {
		healthy := 0
		for _, in := range p.instances {
			if in.available(now) {
				healthy++
			}
		}
		ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, float64(p.weight), p.version)
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, float64(healthy), p.version)
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(len(p.instances)), p.version)
	}
}
