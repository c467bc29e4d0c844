// Package local is the local runtime target's process supervisor: it runs
// each deployed version of an application as supervised processes on this
// machine.
//
// An artifact is an executable (or a .tar.gz holding one) identified by its
// sha256 digest; it is copied into a content-addressed store and its digest
// is checked again before every start. Each instance gets its own port
// (PORT), working directory, environment (only what the Spec gives, never
// airlock's own), process group and size-capped stdout/stderr log files. The
// supervisor restarts crashed instances with exponential backoff, marks an
// instance failed after repeated quick crashes, checks health over HTTP,
// stops gracefully (SIGTERM, then SIGKILL after a grace period), and
// persists what it runs so that a restarted airlock adopts the live
// processes again and restarts the dead ones.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// State is where an instance is in its life.
type State string

// Instance states.
const (
	// StateStarting: the process runs but has not yet passed a health check.
	StateStarting State = "starting"
	// StateHealthy: the process passed its health check (it is ready and
	// may get traffic) and has not failed it UnhealthyAfter times in a row since.
	StateHealthy State = "healthy"
	// StateUnhealthy: the process was healthy, then failed its health check
	// UnhealthyAfter times in a row. It is not restarted for that.
	StateUnhealthy State = "unhealthy"
	// StateBackoff: the process exited on its own and waits to be restarted.
	StateBackoff State = "backoff"
	// StateFailed: the instance gave up (repeated quick crashes, an
	// artifact that fails verification, a binary that cannot be executed);
	// Reason says why. Only a Stop followed by an Ensure starts it again.
	StateFailed State = "failed"
	// StateStopped: the instance was stopped on request.
	StateStopped State = "stopped"
)

// Defaults of Options.
const (
	DefaultStopGrace         = 10 * time.Second
	DefaultHealthPath        = "/healthz"
	DefaultHealthInterval    = time.Second
	DefaultHealthTimeout     = 2 * time.Second
	DefaultUnhealthyAfter    = 3
	DefaultAdoptPollInterval = 500 * time.Millisecond
	DefaultLogCheckInterval  = time.Second
	DefaultPortRetries       = 5
	defaultPath              = "/usr/local/bin:/usr/bin:/bin"
	// portCheckWindow: an exit this soon after the start, with the port then
	// held by another process, is a lost port race rather than a crash.
	portCheckWindow = 5 * time.Second
)

// ErrClosed is returned by a Supervisor after Close.
var ErrClosed = errors.New("local runtime: supervisor is closed")

// Options configure a Supervisor. Only Dir is required.
type Options struct {
	// Dir is the data directory: artifacts/, units/ (records, working
	// directories and logs) and a lock file. It is created if missing; only
	// one Supervisor may use it at a time.
	Dir string
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger
	// Clock stamps events and feeds backoff decisions; nil is time.Now.
	Clock func() time.Time

	// MaxArtifactSize bounds a stored artifact; default 1 GiB.
	MaxArtifactSize int64
	// Unpack bounds what a .tar.gz artifact may unpack to.
	Unpack UnpackLimits
	// LogMaxBytes is the size at which an instance's stdout or stderr log
	// is rotated (one previous file is kept); default 10 MiB.
	LogMaxBytes int64
	// LogCheckInterval is how often log sizes are checked; default 1s.
	LogCheckInterval time.Duration

	// Backoff decides restarts after crashes.
	Backoff BackoffPolicy
	// HealthInterval and HealthTimeout pace the HTTP health checks;
	// defaults 1s and 2s.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// UnhealthyAfter consecutive failed checks turn a healthy instance
	// unhealthy; default 3.
	UnhealthyAfter int
	// AdoptPollInterval is how often an adopted process (one started by an
	// earlier airlock, so not a child of this one) is checked for exit;
	// default 500ms.
	AdoptPollInterval time.Duration
	// PortRetries bounds how many times in a row an instance that lost its
	// port to another process is started again on a new port; default 5.
	PortRetries int
	// Path is the PATH given to instances unless the Spec sets one; default
	// /usr/local/bin:/usr/bin:/bin.
	Path string

	// pickPort, when set, replaces the free port finder (tests).
	pickPort func() (int, error)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.LogMaxBytes <= 0 {
		o.LogMaxBytes = DefaultLogMaxBytes
	}
	if o.LogCheckInterval <= 0 {
		o.LogCheckInterval = DefaultLogCheckInterval
	}
	o.Backoff = o.Backoff.withDefaults()
	if o.HealthInterval <= 0 {
		o.HealthInterval = DefaultHealthInterval
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = DefaultHealthTimeout
	}
	if o.UnhealthyAfter <= 0 {
		o.UnhealthyAfter = DefaultUnhealthyAfter
	}
	if o.AdoptPollInterval <= 0 {
		o.AdoptPollInterval = DefaultAdoptPollInterval
	}
	if o.PortRetries <= 0 {
		o.PortRetries = DefaultPortRetries
	}
	if o.Path == "" {
		o.Path = defaultPath
	}
	return o
}

// Spec is one deployment unit: a version of an application in an
// environment, and how to run it.
type Spec struct {
	App     string `json:"app"`
	Env     string `json:"env"`
	Version string `json:"version"`
	// Digest names the artifact in the store ("sha256:<hex>").
	Digest string `json:"digest"`
	// Entrypoint is the file to run inside a .tar.gz artifact (a slash
	// path); empty means its single executable file.
	Entrypoint string `json:"entrypoint,omitempty"`
	// Replicas is how many instances run; zero is allowed.
	Replicas int `json:"replicas"`
	// Vars and Secrets are the instance's environment variables, besides
	// PORT, HOME (the working directory) and PATH. They must not set PORT or
	// HOME, and must not share a name.
	Vars    map[string]string `json:"vars,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
	// Args are the command line arguments.
	Args []string `json:"args,omitempty"`
	// HealthPath is the HTTP path checked on each instance; default /healthz.
	HealthPath string `json:"health_path,omitempty"`
	// StopGrace is how long a stopping process has between SIGTERM and
	// SIGKILL; default 10s.
	StopGrace time.Duration `json:"stop_grace,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (sp Spec) normalize() (Spec, error) {
	for _, f := range []struct{ what, v string }{{"app", sp.App}, {"env", sp.Env}, {"version", sp.Version}} {
		if !nameRE.MatchString(f.v) {
			return sp, fmt.Errorf("%s %q: use letters, digits, '.', '_', '+' or '-', starting with a letter or digit", f.what, f.v)
		}
	}
	if _, err := ParseDigest(sp.Digest); err != nil {
		return sp, err
	}
	if sp.Replicas < 0 {
		return sp, fmt.Errorf("replicas %d must not be negative", sp.Replicas)
	}
	for _, m := range []map[string]string{sp.Vars, sp.Secrets} {
		for k, v := range m {
			if !envNameRE.MatchString(k) {
				return sp, fmt.Errorf("environment variable name %q is not valid", k)
			}
			if k == "PORT" || k == "HOME" {
				return sp, fmt.Errorf("environment variable %s is set by the local runtime", k)
			}
			if strings.ContainsRune(v, 0) {
				return sp, fmt.Errorf("environment variable %s holds a NUL byte", k)
			}
		}
	}
	for k := range sp.Secrets {
		if _, ok := sp.Vars[k]; ok {
			return sp, fmt.Errorf("%s is both a variable and a secret", k)
		}
	}
	if sp.HealthPath == "" {
		sp.HealthPath = DefaultHealthPath
	}
	if !strings.HasPrefix(sp.HealthPath, "/") {
		return sp, fmt.Errorf("health path %q must start with /", sp.HealthPath)
	}
	if sp.StopGrace <= 0 {
		sp.StopGrace = DefaultStopGrace
	}
	return sp, nil
}

// withoutSecretValues keeps a spec's secret names and drops their values:
// what the supervisor writes to disk.
func withoutSecretValues(sp Spec) Spec {
	if len(sp.Secrets) == 0 {
		return sp
	}
	names := make(map[string]string, len(sp.Secrets))
	for k := range sp.Secrets {
		names[k] = ""
	}
	sp.Secrets = names
	return sp
}

// sameRun reports whether two specs run the same processes (everything but
// the replica count is equal).
func sameRun(a, b Spec) bool {
	a.Replicas, b.Replicas = 0, 0
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// LogPaths are an instance's log files. Each is rotated at
// Options.LogMaxBytes to the same name with ".1" appended.
type LogPaths struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// Instance is a snapshot of one supervised instance.
type Instance struct {
	// ID is "app/env/version/index".
	ID      string `json:"id"`
	App     string `json:"app"`
	Env     string `json:"env"`
	Version string `json:"version"`
	Index   int    `json:"index"`
	Digest  string `json:"digest"`
	// PID is the process (and process group) id; 0 when none runs.
	PID int `json:"pid"`
	// Port and Address (127.0.0.1:port) are where it serves; 0 and "" when
	// no process runs.
	Port    int    `json:"port"`
	Address string `json:"address"`
	State   State  `json:"state"`
	// Reason explains a state other than healthy (the last health check
	// error, the backoff, why it failed).
	Reason string `json:"reason,omitempty"`
	// Restarts counts process starts after the first.
	Restarts int `json:"restarts"`
	// LastExit is how the last process ended ("exit status 1", "signal:
	// killed"; "unknown" for an adopted process).
	LastExit  string    `json:"last_exit,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// Adopted is true for a process started by an earlier airlock.
	Adopted bool     `json:"adopted"`
	Logs    LogPaths `json:"logs"`
	WorkDir string   `json:"work_dir"`
}

type unitKey struct{ app, env, version string }

func (k unitKey) String() string { return k.app + "/" + k.env + "/" + k.version }

type unit struct {
	key       unitKey
	dir       string
	spec      Spec
	instances []*instance // by index
	stopping  bool
	// needSecrets is set on a unit recovered from its record, which names
	// its secrets but never holds their values: its dead instances wait
	// until the Ensure that supplies them closes secretsReady.
	needSecrets  bool
	secretsReady chan struct{}
}

// instance is the supervisor's view of one instance. Fields below mu are
// guarded by Supervisor.mu.
type instance struct {
	u     *unit
	index int
	id    string
	dir   string

	stop     chan struct{} // closed to ask the runner to stop
	stopOnce sync.Once
	done     chan struct{} // closed when the runner returned

	// mu: Supervisor.mu
	gen          int // bumped at every process start and exit; stale health results are dropped
	pid          int
	ticks        uint64
	port         int
	digest       string
	state        State
	reason       string
	restarts     int
	crashes      int
	lastExit     string
	startedAt    time.Time
	healthySince time.Time
	healthFails  int
	adopted      bool
	stopping     bool
}

func (in *instance) logs() LogPaths {
	return LogPaths{Stdout: filepath.Join(in.dir, "stdout.log"), Stderr: filepath.Join(in.dir, "stderr.log")}
}

func (in *instance) requestStop() { in.stopOnce.Do(func() { close(in.stop) }) }

// Supervisor runs deployment units as supervised processes. It is safe for
// concurrent use. Create it with New; call Close to let go of the processes
// (they keep running, for the next Supervisor on the same Dir to adopt) or
// StopAll to end them.
type Supervisor struct {
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	artifacts *Artifacts
	lockFile  *os.File
	client    *http.Client

	ctx    context.Context // ends at Close: runners let go of their processes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	opLocks sync.Map // unitKey -> chan struct{} (cap 1): one Ensure/Stop per unit at a time

	mu      sync.Mutex
	units   map[unitKey]*unit
	ports   map[int]bool // ports of this supervisor's processes
	changed chan struct{}
	closed  bool
}

// New opens the supervisor on opts.Dir. Instances recorded there by an
// earlier supervisor are taken over: a live process (same pid and start
// time) is adopted and watched; a dead one is started again; a failed one
// stays failed. It fails if another supervisor holds the directory.
func New(opts Options) (*Supervisor, error) {
	if opts.Dir == "" {
		return nil, errors.New("local runtime: Options.Dir is required")
	}
	opts = opts.withDefaults()
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(filepath.Join(dir, "units"), 0o700); err != nil {
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "supervisor.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("local runtime: data directory %s is in use by another supervisor: %w", dir, err)
	}
	art, err := NewArtifacts(filepath.Join(dir, "artifacts"), opts.MaxArtifactSize, opts.Unpack)
	if err != nil {
		lf.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{
		opts:      opts,
		log:       opts.Logger,
		now:       opts.Clock,
		artifacts: art,
		lockFile:  lf,
		client: &http.Client{
			Timeout:       opts.HealthTimeout,
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:     ctx,
		cancel:  cancel,
		units:   map[unitKey]*unit{},
		ports:   map[int]bool{},
		changed: make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Artifacts returns the supervisor's artifact store.
func (s *Supervisor) Artifacts() *Artifacts { return s.artifacts }

// Put stores an artifact; see Artifacts.Put.
func (s *Supervisor) Put(r io.Reader, digest string) (string, error) {
	return s.artifacts.Put(r, digest)
}

func (s *Supervisor) unitDir(k unitKey) string {
	return filepath.Join(s.opts.Dir, "units", k.app, k.env, k.version)
}

// opLock serialises Ensure and Stop of one unit; it gives up when ctx ends.
func (s *Supervisor) opLock(ctx context.Context, k unitKey) (func(), error) {
	v, _ := s.opLocks.LoadOrStore(k, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for another change of this version: %w", k, ctx.Err())
	}
}

// notifyLocked wakes everyone waiting for a state change. s.mu is held.
func (s *Supervisor) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Ensure makes exactly spec.Replicas instances of the unit (app, env,
// version) run: it starts missing instances and stops surplus ones (highest
// index first, waiting for them to exit). When the unit already runs with a
// different spec (other than the replica count) its instances are all
// stopped and started again with the new one. Failed instances count as
// present: Stop and Ensure again to retry them. Ensure returns once the
// processes are started, not when they are healthy (see WaitHealthy); an
// artifact missing from the store or failing verification is an error and
// starts nothing.
func (s *Supervisor) Ensure(ctx context.Context, spec Spec) error {
	spec, err := spec.normalize()
	if err != nil {
		return fmt.Errorf("ensure: %w", err)
	}
	k := unitKey{spec.App, spec.Env, spec.Version}
	if _, err := s.artifacts.Executable(spec.Digest, spec.Entrypoint); err != nil {
		return fmt.Errorf("ensure %s: %w", k, err)
	}
	unlock, err := s.opLock(ctx, k)
	if err != nil {
		return err
	}
	defer unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	u := s.units[k]
	var surplus []*instance
	switch {
	case u == nil:
		u = &unit{key: k, dir: s.unitDir(k), spec: spec}
		s.units[k] = u
	case u.needSecrets && sameRun(withoutSecretValues(u.spec), withoutSecretValues(spec)):
		// Recovered after a restart: the same deployment, its secrets
		// supplied again. Adopted instances keep running; the ones that
		// waited for the secrets start now.
		u.spec, u.needSecrets = spec, false
		close(u.secretsReady)
		u.spec.Replicas = spec.Replicas
		if len(u.instances) > spec.Replicas {
			for _, in := range u.instances[spec.Replicas:] {
				in.stopping = true
				surplus = append(surplus, in)
			}
		}
	case !sameRun(u.spec, spec):
		surplus = u.instances
		u.spec = spec
	default:
		u.spec.Replicas = spec.Replicas
		if len(u.instances) > spec.Replicas {
			for _, in := range u.instances[spec.Replicas:] {
				in.stopping = true
			}
		}
		// Includes instances an earlier Ensure began to stop but gave up
		// waiting for.
		for _, in := range u.instances {
			if in.stopping {
				surplus = append(surplus, in)
			}
		}
	}
	for _, in := range surplus {
		in.stopping = true
	}
	s.persistLocked(u)
	s.mu.Unlock()

	if err := s.stopInstances(ctx, surplus); err != nil {
		return fmt.Errorf("ensure %s: %w", k, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	u.instances = removeStopping(u.instances)
	if s.closed {
		return ErrClosed
	}
	for i := len(u.instances); i < spec.Replicas; i++ {
		in := s.newInstanceLocked(u, i)
		u.instances = append(u.instances, in)
		s.wg.Add(1)
		go s.run(in, nil)
	}
	s.persistLocked(u)
	s.notifyLocked()
	s.log.InfoContext(ctx, "deployment ensured", slog.String("app", k.app), slog.String("env", k.env),
		slog.String("version", k.version), slog.Int("replicas", spec.Replicas), slog.String("digest", spec.Digest))
	return nil
}

func removeStopping(ins []*instance) []*instance {
	var out []*instance
	for _, in := range ins {
		if !in.stopping {
			out = append(out, in)
		}
	}
	return out
}

func (s *Supervisor) newInstanceLocked(u *unit, index int) *instance {
	in := &instance{
		u:     u,
		index: index,
		id:    u.key.String() + "/" + strconv.Itoa(index),
		dir:   filepath.Join(u.dir, strconv.Itoa(index)),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		state: StateStarting,
	}
	return in
}

// stopInstances asks each instance to stop and waits until all are done or
// ctx ends (the stops carry on in the background).
func (s *Supervisor) stopInstances(ctx context.Context, ins []*instance) error {
	for _, in := range ins {
		in.requestStop()
	}
	for _, in := range ins {
		select {
		case <-in.done:
		case <-ctx.Done():
			return fmt.Errorf("stopping instance %s: %w", in.id, ctx.Err())
		}
	}
	return nil
}

// Stop stops every instance of the unit (SIGTERM to each process group,
// SIGKILL after the spec's StopGrace) and forgets the unit. It waits until
// the processes exited; if ctx ends first it returns the context's error
// and the stop completes in the background. Stopping an unknown unit is not
// an error.
func (s *Supervisor) Stop(ctx context.Context, app, env, version string) error {
	k := unitKey{app, env, version}
	unlock, err := s.opLock(ctx, k)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		unlock()
		return ErrClosed
	}
	u := s.units[k]
	if u == nil {
		s.mu.Unlock()
		unlock()
		return nil
	}
	u.stopping = true
	for _, in := range u.instances {
		in.stopping = true
		in.requestStop()
	}
	s.persistLocked(u)
	delete(s.units, k)
	s.notifyLocked()
	ins := u.instances
	s.wg.Add(1) // under s.mu, before Close can wait
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		// Holds the unit's op lock until every process is gone, so a new
		// Ensure of the same unit never overlaps the old processes.
		defer s.wg.Done()
		defer unlock()
		defer close(finished)
		for _, in := range ins {
			<-in.done
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			os.Remove(filepath.Join(u.dir, "unit.json"))
		}
	}()
	select {
	case <-finished:
		s.log.InfoContext(ctx, "deployment stopped", slog.String("app", app), slog.String("env", env), slog.String("version", version))
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w (the stop goes on in the background)", k, ctx.Err())
	}
}

// StopAll stops every unit; see Stop.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.mu.Lock()
	var keys []unitKey
	for k := range s.units {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Stop(ctx, k.app, k.env, k.version); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close lets go of the processes without stopping them: watchers, health
// checks and pending restarts end, the records stay on disk, and the next
// Supervisor on the same Dir adopts the processes. It waits for the
// supervisor's goroutines and releases the directory lock.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.notifyLocked()
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
	return s.lockFile.Close()
}

// Instances returns snapshots of the unit's instances by index; none if the
// unit is unknown.
func (s *Supervisor) Instances(app, env, version string) []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[unitKey{app, env, version}]
	if u == nil {
		return nil
	}
	out := make([]Instance, 0, len(u.instances))
	for _, in := range u.instances {
		out = append(out, s.snapshotLocked(in))
	}
	return out
}

// List returns snapshots of every instance, by app, env, version, index.
func (s *Supervisor) List() []Instance {
	s.mu.Lock()
	var out []Instance
	for _, u := range s.units {
		for _, in := range u.instances {
			out = append(out, s.snapshotLocked(in))
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.App != b.App {
			return a.App < b.App
		}
		if a.Env != b.Env {
			return a.Env < b.Env
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Index < b.Index
	})
	return out
}

func (s *Supervisor) snapshotLocked(in *instance) Instance {
	x := Instance{
		ID: in.id, App: in.u.key.app, Env: in.u.key.env, Version: in.u.key.version, Index: in.index,
		Digest: in.digest, PID: in.pid, Port: in.port, State: in.state, Reason: in.reason,
		Restarts: in.restarts, LastExit: in.lastExit, StartedAt: in.startedAt, Adopted: in.adopted,
		Logs: in.logs(), WorkDir: filepath.Join(in.dir, "work"),
	}
	if in.port != 0 {
		x.Address = net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port))
	}
	return x
}

// Tail returns the last n lines of an instance's "stdout" or "stderr" log
// (including the rotated previous file). id is Instance.ID.
func (s *Supervisor) Tail(id, stream string, n int) ([]string, error) {
	s.mu.Lock()
	var found *instance
	for _, u := range s.units {
		for _, in := range u.instances {
			if in.id == id {
				found = in
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		return nil, fmt.Errorf("no instance %q", id)
	}
	switch stream {
	case "stdout":
		return TailLog(found.logs().Stdout, n)
	case "stderr":
		return TailLog(found.logs().Stderr, n)
	}
	return nil, fmt.Errorf("log stream %q: want stdout or stderr", stream)
}

// Changed returns a channel that is closed at the next change of any
// instance's state (started, healthy, unhealthy, exited, failed, stopped) or
// of the set of units. Call it again after each wake-up; a consumer such as
// the router re-reads Instances then.
func (s *Supervisor) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// WaitHealthy waits until every instance of the unit is healthy. It returns
// an error naming the instance and the reason as soon as one is failed, and
// when ctx ends, an error naming each instance that is not healthy and why
// (the last health check error, the backoff, the exit).
func (s *Supervisor) WaitHealthy(ctx context.Context, app, env, version string) error {
	k := unitKey{app, env, version}
	for {
		s.mu.Lock()
		u := s.units[k]
		if u == nil {
			s.mu.Unlock()
			return fmt.Errorf("%s is not deployed", k)
		}
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		var notHealthy []string
		current := 0
		for _, in := range u.instances {
			if in.stopping {
				continue // on its way out of a scale-down or a replacement
			}
			current++
			switch in.state {
			case StateHealthy:
				continue
			case StateFailed:
				err := fmt.Errorf("%s: instance %s failed: %s", k, in.id, in.reason)
				s.mu.Unlock()
				return err
			}
			d := fmt.Sprintf("instance %s is %s", in.id, in.state)
			if in.reason != "" {
				d += ": " + in.reason
			}
			notHealthy = append(notHealthy, d)
		}
		if len(notHealthy) == 0 && current == u.spec.Replicas {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if len(notHealthy) == 0 {
				notHealthy = []string{fmt.Sprintf("%d of %d instances exist", current, u.spec.Replicas)}
			}
			return fmt.Errorf("%s did not become healthy (%w): %s", k, ctx.Err(), strings.Join(notHealthy, "; "))
		}
	}
}
