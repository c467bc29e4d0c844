package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/router"
)

// Target is the local runtime as a rollout target: each version of an
// application in an environment runs as supervised processes, behind one
// built-in router per application and environment whose weights follow
// the rollout. It is safe for concurrent use.
type Target struct {
	sup    *Supervisor
	getenv func(string) string
	logger *slog.Logger
	client *http.Client
	reg    prometheus.Registerer

	mu     sync.Mutex
	served map[string]*served // "app/env"
	done   chan struct{}
	wg     sync.WaitGroup
}

type served struct {
	router  *router.Router
	ln      net.Listener
	listen  string // as asked ("" means any loopback port)
	desired rollout.Desired
}

// TargetOptions configure a Target.
type TargetOptions struct {
	// Getenv reads the airlock server's environment for secretEnv; nil
	// means no variable is set.
	Getenv func(string) string
	Logger *slog.Logger
	// Registerer receives each router's metrics; nil skips them.
	Registerer prometheus.Registerer
}

// NewTarget returns the local runtime over sup. It watches the
// supervisor, so a restarted instance (on a new port) gets traffic again.
func NewTarget(sup *Supervisor, opts TargetOptions) *Target {
	t := &Target{
		sup: sup, getenv: opts.Getenv, logger: opts.Logger, reg: opts.Registerer,
		client: &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		served: map[string]*served{}, done: make(chan struct{}),
	}
	if t.getenv == nil {
		t.getenv = func(string) string { return "" }
	}
	if t.logger == nil {
		t.logger = slog.New(slog.DiscardHandler)
	}
	t.wg.Add(1)
	go t.watch()
	return t
}

func key(app, env string) string { return app + "/" + env }

// watch re-points the routers whenever the supervisor's instances change.
func (t *Target) watch() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case <-t.sup.Changed():
		}
		t.mu.Lock()
		for _, s := range t.served {
			if err := t.point(s); err != nil {
				t.logger.Warn("updating a router failed", slog.String("app", s.desired.App), slog.String("environment", s.desired.Environment), slog.Any("error", err))
			}
		}
		t.mu.Unlock()
	}
}

// Apply makes the application's versions in the environment run as d
// says, stops the versions d does not list, and sets the router's weights.
func (t *Target) Apply(ctx context.Context, d rollout.Desired) error {
	for _, v := range d.Versions {
		if !t.sup.Artifacts().Has(v.Digest) {
			return fmt.Errorf("the artifact %s of %s %s is not in airlock's content store; upload it with airlock release create %s %s --artifact FILE", v.Digest, d.App, v.Version.Version, d.App, v.Version.Version)
		}
	}
	// The router lets go of instances about to be stopped (a version that
	// shrinks stops its highest indexes) before they get SIGTERM.
	t.mu.Lock()
	s, err := t.serve(d)
	if err == nil {
		s.desired = d
		err = t.point(s)
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	for _, v := range d.Versions {
		rt := d.Runtime
		if v.Runtime != nil {
			rt = *v.Runtime
		}
		secrets, err := t.secrets(d, rt)
		if err != nil {
			return err
		}
		vars := maps.Clone(rt.Env)
		if vars == nil {
			vars = map[string]string{}
		}
		// Each instance knows what it is.
		vars["AIRLOCK_APP"], vars["AIRLOCK_ENVIRONMENT"], vars["AIRLOCK_VERSION"] = d.App, d.Environment, v.Version.Version
		spec := Spec{App: d.App, Env: d.Environment, Version: v.Version.Version, Digest: v.Digest, Replicas: v.Replicas,
			Vars: vars, Secrets: secrets, HealthPath: rt.HealthPath, Args: rt.Args}
		if err := t.sup.Ensure(ctx, spec); err != nil {
			return fmt.Errorf("run %s %s in %s: %w", d.App, v.Version.Version, d.Environment, err)
		}
	}
	// New instances join the router; the versions d drops left it above,
	// so no new request goes to an instance that is shutting down.
	t.mu.Lock()
	err = t.point(s)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, v := range d.Versions {
		keep[v.Version.Version] = true
	}
	for _, v := range t.versions(d.App, d.Environment) {
		if !keep[v] {
			if err := t.sup.Stop(ctx, d.App, d.Environment, v); err != nil {
				return fmt.Errorf("stop %s %s in %s: %w", d.App, v, d.Environment, err)
			}
		}
	}
	return nil
}

// secrets reads a version's secrets from the server's environment.
func (t *Target) secrets(d rollout.Desired, rt rollout.Runtime) (map[string]string, error) {
	secrets := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(rt.SecretEnv)) {
		from := rt.SecretEnv[name]
		val := t.getenv(from)
		if val == "" {
			return nil, fmt.Errorf("secret %s of %s in %s: the airlock server's environment variable %s is not set", name, d.App, d.Environment, from)
		}
		secrets[name] = val
	}
	return secrets, nil
}

// versions lists the versions of app in env the supervisor runs.
func (t *Target) versions(app, env string) []string {
	var out []string
	for _, in := range t.sup.List() {
		if in.App == app && in.Env == env && in.State != StateStopped && !slices.Contains(out, in.Version) {
			out = append(out, in.Version)
		}
	}
	sort.Strings(out)
	return out
}

// serve returns the router of d's application and environment, listening
// on d.Runtime.Listen; t.mu is held.
func (t *Target) serve(d rollout.Desired) (*served, error) {
	k := key(d.App, d.Environment)
	s := t.served[k]
	if s != nil && s.listen == d.Runtime.Listen {
		return s, nil
	}
	addr := d.Runtime.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the router of %s in %s cannot listen on %s: %w", d.App, d.Environment, addr, err)
	}
	if s != nil { // the address changed: the new listener is up, the old one goes
		_ = s.ln.Close()
		s.ln, s.listen = ln, d.Runtime.Listen
	} else {
		r := router.New(router.Options{App: d.App, Environment: d.Environment, Logger: t.logger})
		if t.reg != nil {
			if err := t.reg.Register(r.Collector()); err != nil {
				t.logger.Warn("router metrics not registered", slog.Any("error", err))
			}
		}
		s = &served{router: r, ln: ln, listen: d.Runtime.Listen}
		t.served[k] = s
	}
	go func(r *router.Router, ln net.Listener) {
		if err := r.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			t.logger.Warn("router stopped", slog.String("addr", ln.Addr().String()), slog.Any("error", err))
		}
	}(s.router, ln)
	return s, nil
}

// point gives s's router the addresses of the instances of each desired
// version, with the desired weights; t.mu is held.
func (t *Target) point(s *served) error {
	d := s.desired
	cfg := router.Config{HealthCheck: router.HealthCheck{Path: d.Runtime.HealthPath}}
	if cfg.HealthCheck.Path == "" {
		cfg.HealthCheck.Path = DefaultHealthPath
	}
	for _, v := range d.Versions {
		p := router.Pool{Version: v.Version.Version, Weight: v.Weight}
		for _, in := range t.sup.Instances(d.App, d.Environment, v.Version.Version) {
			if in.Index < v.Replicas && in.Address != "" && (in.State == StateHealthy || in.State == StateStarting || in.State == StateUnhealthy) {
				p.Instances = append(p.Instances, in.Address)
			}
		}
		cfg.Pools = append(cfg.Pools, p)
	}
	// A version with no instance yet (starting, restarting on a new port)
	// cannot take its share: it goes to a version that has instances, so
	// traffic never goes to nothing.
	moved := 0
	for i := range cfg.Pools {
		if len(cfg.Pools[i].Instances) == 0 {
			moved, cfg.Pools[i].Weight = moved+cfg.Pools[i].Weight, 0
		}
	}
	if moved > 0 {
		for i := range cfg.Pools {
			if len(cfg.Pools[i].Instances) > 0 {
				cfg.Pools[i].Weight += moved
				moved = 0
				break
			}
		}
	}
	if moved > 0 { // nothing has instances: the router answers 503
		for i := range cfg.Pools {
			cfg.Pools[i].Weight = 0
		}
	}
	return s.router.Update(cfg)
}

// Observe reports the instances of the candidate and stable versions, and
// smoke-tests the candidate once it has a healthy instance.
func (t *Target) Observe(ctx context.Context, app, env string, candidate, stable *rollout.Version) (rollout.Observation, error) {
	var obs rollout.Observation
	t.mu.Lock()
	var rt rollout.Runtime
	var routed map[string]int
	if s := t.served[key(app, env)]; s != nil {
		rt, routed = s.desired.Runtime, s.router.HealthyInstances()
	}
	t.mu.Unlock()
	// An instance counts as healthy once the router, too, found it
	// healthy: only then does it get traffic.
	routable := func(vs rollout.VersionState, version string) rollout.VersionState {
		if routed != nil {
			vs.Healthy = min(vs.Healthy, routed[version])
		}
		return vs
	}
	if candidate != nil {
		obs.Candidate = routable(t.state(app, env, candidate.Version), candidate.Version)
		if obs.Candidate.Healthy > 0 {
			ok := t.smoke(ctx, app, env, candidate.Version, rt)
			obs.Candidate.SmokeOK = &ok
		}
	}
	if stable != nil {
		obs.Stable = routable(t.state(app, env, stable.Version), stable.Version)
	}
	return obs, nil
}

func (t *Target) state(app, env, version string) rollout.VersionState {
	var vs rollout.VersionState
	for _, in := range t.sup.Instances(app, env, version) {
		switch in.State {
		case StateHealthy:
			vs.Running++
			vs.Healthy++
		case StateFailed:
			if !vs.Failed {
				vs.Failed, vs.Reason = true, fmt.Sprintf("instance %d: %s", in.Index, in.Reason)
			}
		case StateStopped:
		default:
			vs.Running++
		}
	}
	return vs
}

// smoke requests the smoke path (or the health path) on every healthy
// instance of the version; all must answer 2xx.
func (t *Target) smoke(ctx context.Context, app, env, version string, rt rollout.Runtime) bool {
	path := rt.SmokePath
	if path == "" {
		path = rt.HealthPath
	}
	if path == "" {
		path = DefaultHealthPath
	}
	for _, in := range t.sup.Instances(app, env, version) {
		if in.State != StateHealthy {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.Address+path, nil)
		if err != nil {
			return false
		}
		resp, err := t.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return false
		}
	}
	return true
}

// Artifacts is the content store instances run from.
func (t *Target) Artifacts() *Artifacts { return t.sup.Artifacts() }

// Address returns where the router of app in env listens ("" when none).
func (t *Target) Address(app, env string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.served[key(app, env)]; s != nil {
		return s.ln.Addr().String()
	}
	return ""
}

// Router returns the router of app in env, for metrics (nil when none).
func (t *Target) Router(app, env string) *router.Router {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.served[key(app, env)]; s != nil {
		return s.router
	}
	return nil
}

// Close stops the routers (the instances keep running, for the next
// airlock to adopt).
func (t *Target) Close(ctx context.Context) error {
	close(t.done)
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, s := range t.served {
		errs = append(errs, s.router.Shutdown(ctx))
		s.router.Close()
	}
	return errors.Join(errs...)
}

// Health returns how many instances of a version run and how many are
// healthy (and routable, once the router found them healthy too).
func (t *Target) Health(app, env, version string) (running, healthy int) {
	vs := t.state(app, env, version)
	t.mu.Lock()
	if s := t.served[key(app, env)]; s != nil {
		vs.Healthy = min(vs.Healthy, s.router.HealthyInstances()[version])
	}
	t.mu.Unlock()
	return vs.Running, vs.Healthy
}

// Logs returns up to n of the newest lines of each instance of a version,
// its stdout then its stderr.
func (t *Target) Logs(app, env, version string, n int) ([]string, error) {
	var out []string
	for _, in := range t.sup.Instances(app, env, version) {
		for _, stream := range []string{"stdout", "stderr"} {
			lines, err := t.sup.Tail(in.ID, stream, n)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return out, err
			}
			out = append(out, lines...)
		}
	}
	return out, nil
}

// Routers reports whether this target serves any application (has a
// router up).
func (t *Target) Routers() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.served) > 0
}
