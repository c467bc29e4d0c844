// Package router is airlock's built-in weighted reverse proxy: one Router
// per application per environment spreads requests over the instances of
// the versions in its Config by weight, keeps users on one version when
// asked (cookie or header), lets testers pick a version with an override
// header, checks instances actively and ejects failing ones passively, and
// keeps per-version metrics for the analysis code and Prometheus.
//
// A Config is validated whole and swapped in atomically by Update: a request
// keeps the pool it was picked from until it ends, new requests see the new
// config, and no request is lost to a change.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the settings of a Router fixed at construction.
type Options struct {
	// App and Environment label the metrics and the error bodies.
	App         string
	Environment string
	// Logger receives health changes and ejections; nil discards them.
	Logger *slog.Logger
	// Transport carries proxied requests that have a body or switch
	// protocols; nil means a transport tuned for many keep-alive
	// connections to few local hosts (see NewTransport). Bodyless GET,
	// HEAD and OPTIONS requests use the router's own connections.
	Transport *http.Transport
	// Now is the clock of passive ejection; nil means time.Now.
	Now func() time.Time
}

// Router is an http.Handler that proxies each request to one instance of
// one version. It is safe for concurrent use; Update may be called at any
// time while requests are served.
type Router struct {
	opts      Options
	logger    *slog.Logger
	transport *http.Transport
	dialer    *net.Dialer
	health    *http.Client
	clock     func() time.Time

	state atomic.Pointer[state]
	seq   atomic.Uint64 // position in the weighted schedule, across updates

	bufs sync.Pool // *[]byte copy buffers

	srv server // the connection loops of Serve

	mu        sync.Mutex // guards the fields below and serialises Update
	metrics   map[string]*versionMetrics
	instances map[instanceKey]*instance
	hc        HealthCheck
	closed    bool
}

// New returns a router with an empty config: it answers 503 until Update
// gives it pools. Call Close (or Shutdown) to stop its health checks.
func New(opts Options) *Router {
	r := &Router{
		opts:      opts,
		logger:    opts.Logger,
		transport: opts.Transport,
		clock:     opts.Now,
		dialer:    &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		metrics:   make(map[string]*versionMetrics),
		instances: make(map[instanceKey]*instance),
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if r.transport == nil {
		r.transport = NewTransport()
	}
	r.health = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	cfg := Config{}.withDefaults()
	st, _ := r.build(cfg)
	r.state.Store(st)
	r.hc = cfg.HealthCheck
	return r
}

// NewTransport returns the transport a router uses by default: keep-alive
// connections kept in large numbers per instance, no proxy from the
// environment, no transparent compression, HTTP/1.1.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   2 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no global limit
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       60 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// now returns the ejection clock in Unix nanoseconds.
func (r *Router) now() int64 {
	if r.clock != nil {
		return r.clock().UnixNano()
	}
	return time.Now().UnixNano()
}

// instanceKey names one instance of one version.
type instanceKey struct{ version, addr string }

// instance is one host:port of one version. Its health outlives configs:
// an Update that keeps the instance keeps its state.
type instance struct {
	version, addr string

	healthy      atomic.Bool  // active check verdict (true when checks are off)
	probed       atomic.Bool  // at least one active check ran
	passedOnce   atomic.Bool  // an active check has passed at least once
	fails        atomic.Int32 // consecutive passive failures
	ejections    atomic.Int32 // ejections since the last success
	ejectedUntil atomic.Int64 // Unix nanoseconds

	lastErr atomic.Pointer[string]

	conns connPool // keep-alive connections of the fast path

	upgradeOnce sync.Once
	upgrade     *httputil.ReverseProxy // for Upgrade requests (WebSocket)

	stop context.CancelFunc // stops the health checker; nil when none runs
	done chan struct{}
}

// available reports whether the instance may get traffic at time now.
func (in *instance) available(now int64) bool {
	return in.healthy.Load() && in.ejectedUntil.Load() <= now
}

// state is one immutable routing config, built by Update.
type state struct {
	cfg       Config
	pools     []*pool
	byVersion map[string]*pool
	schedule  []*pool // smooth weighted round-robin order of one period

	overrideKey string // canonical header, "" when disabled
	stickyMode  StickyMode
	stickyKey   string // cookie name or canonical header
	ejection    Ejection
	proto       []string // X-Forwarded-Proto value
	noVersions  string   // 503 body when there is no pool
}

// pool is the instances of one version in one state.
type pool struct {
	version   string
	weight    int
	instances []*instance
	next      atomic.Uint64
	metrics   *versionMetrics
	cookie    string // Set-Cookie value for StickyCookie
	lo, hi    uint64 // hash range in 1/10000 for StickyHeader
}

// pick returns the next available instance of the pool in round-robin
// order, skipping skip, or nil when none is available.
func (p *pool) pick(now int64, skip *instance) *instance {
	n := uint64(len(p.instances))
	if n == 0 {
		return nil
	}
	start := p.next.Add(1)
	for i := uint64(0); i < n; i++ {
		in := p.instances[(start+i)%n]
		if in != skip && in.available(now) {
			return in
		}
	}
	return nil
}

// Update validates cfg and, when it is valid, makes it the router's config
// for every request that starts afterwards; requests in flight finish on
// the instance they were sent to. It starts health checks for new instances
// and stops those of instances that left. The error names every invalid
// field; the previous config then stays in force.
func (r *Router) Update(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("router config: %w", err)
	}
	cfg = cfg.withDefaults()
	cfg.Pools = slices.Clone(cfg.Pools)
	for i := range cfg.Pools {
		cfg.Pools[i].Instances = slices.Clone(cfg.Pools[i].Instances)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("router config: router is closed")
	}
	st, added := r.build(cfg)
	hcChanged := cfg.HealthCheck != r.hc
	r.hc = cfg.HealthCheck

	// Instances that left the config.
	keep := make(map[instanceKey]bool)
	for _, p := range st.pools {
		for _, in := range p.instances {
			keep[instanceKey{in.version, in.addr}] = true
		}
	}
	var gone []*instance
	for k, in := range r.instances {
		if !keep[k] {
			gone = append(gone, in)
			delete(r.instances, k)
		}
	}

	// Health checks: new instances start; all restart when the settings changed.
	active := cfg.HealthCheck.Path != ""
	for _, in := range added {
		in.healthy.Store(!active)
	}
	if hcChanged {
		for _, in := range r.instances {
			if !slices.Contains(added, in) {
				r.stopCheck(in)
				if !active {
					in.healthy.Store(true)
				}
			}
		}
	}
	if active {
		for _, in := range r.instances {
			if in.stop == nil {
				r.startCheck(in, cfg.HealthCheck)
			}
		}
	}
	r.state.Store(st)
	for _, in := range gone {
		r.stopCheck(in)
		in.conns.close()
	}
	return nil
}

// build turns a valid config into a state, reusing the router's instances
// and returning those it had to create. The caller holds r.mu (or is New).
func (r *Router) build(cfg Config) (*state, []*instance) {
	st := &state{
		cfg:         cfg,
		byVersion:   make(map[string]*pool, len(cfg.Pools)),
		overrideKey: canonicalHeader(cfg.OverrideHeader),
		stickyMode:  cfg.Sticky.Mode,
		ejection:    cfg.Ejection,
		proto:       []string{"http"},
		noVersions:  fmt.Sprintf("airlock router: app %q in environment %q has no version configured\n", r.opts.App, r.opts.Environment),
	}
	switch cfg.Sticky.Mode {
	case StickyCookie:
		st.stickyKey = cfg.Sticky.Name
	case StickyHeader:
		st.stickyKey = http.CanonicalHeaderKey(cfg.Sticky.Name)
	}
	var added []*instance
	var lo uint64
	for _, pc := range cfg.Pools {
		p := &pool{
			version: pc.Version,
			weight:  pc.Weight,
			metrics: r.metricsFor(pc.Version),
			cookie:  cfg.Sticky.Name + "=" + pc.Version + "; Path=/; HttpOnly; SameSite=Lax",
			lo:      lo,
			hi:      lo + uint64(pc.Weight)*100,
		}
		lo = p.hi
		for _, a := range pc.Instances {
			k := instanceKey{pc.Version, a}
			in, ok := r.instances[k]
			if !ok {
				in = &instance{version: pc.Version, addr: a}
				r.instances[k] = in
				added = append(added, in)
			}
			p.instances = append(p.instances, in)
		}
		st.pools = append(st.pools, p)
		st.byVersion[p.version] = p
	}
	st.schedule = smoothSchedule(st.pools)
	return st, added
}

// smoothSchedule lays out one period of nginx's smooth weighted round-robin
// over the pools with a weight: every period holds each pool exactly
// weight/g times (g the weights' gcd), spread as evenly as possible.
func smoothSchedule(pools []*pool) []*pool {
	g, total := 0, 0
	for _, p := range pools {
		if p.weight > 0 {
			g = gcd(g, p.weight)
			total += p.weight
		}
	}
	if total == 0 {
		return nil
	}
	period := total / g
	current := make([]int, len(pools))
	out := make([]*pool, 0, period)
	for range period {
		best := -1
		for i, p := range pools {
			if p.weight == 0 {
				continue
			}
			current[i] += p.weight / g
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= period
		out = append(out, pools[best])
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Config returns the config in force, with defaults applied.
func (r *Router) Config() Config {
	return r.state.Load().cfg
}

// Shutdown stops Serve gracefully: the listeners close, idle connections
// close, and in-flight requests finish unless ctx ends first. It then stops
// the health checks.
func (r *Router) Shutdown(ctx context.Context) error {
	var errs []error
	if err := r.srv.shutdown(ctx.Done()); err != nil {
		errs = append(errs, err)
	}
	r.srv.mu.Lock()
	fb := r.srv.fallback
	r.srv.mu.Unlock()
	if fb != nil {
		if err := fb.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	r.Close()
	return errors.Join(errs...)
}

// isClosed reports whether Close has been called.
func (r *Router) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close stops every health check and waits for them to end. The router
// still serves requests with its last config; Update fails afterwards.
func (r *Router) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	var ins []*instance
	for _, in := range r.instances {
		ins = append(ins, in)
	}
	r.mu.Unlock()
	for _, in := range ins {
		r.stopCheck(in)
		in.conns.close()
	}
	r.transport.CloseIdleConnections()
}

// upgradeProxy returns the instance's proxy for Upgrade requests, which
// httputil.ReverseProxy handles in full (101 Switching Protocols, the
// bidirectional copy).
func (in *instance) upgradeProxy(r *Router) *httputil.ReverseProxy {
	in.upgradeOnce.Do(func() {
		target := &url.URL{Scheme: "http", Host: in.addr}
		in.upgrade = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			Transport: r.transport,
			ErrorLog:  slog.NewLogLogger(r.logger.Handler(), slog.LevelDebug),
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, fmt.Sprintf("airlock router: version %s instance %s: %v", in.version, in.addr, err), http.StatusBadGateway)
			},
		}
	})
	return in.upgrade
}
