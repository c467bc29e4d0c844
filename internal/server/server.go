// Package server is airlock's composition root: it opens the store, loads
// the audit signing key, bootstraps the admin identity, builds the services
// and the HTTP API, runs the background loops, and stops them all cleanly.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/airlock-dev/airlock/internal/access"
	_ "github.com/airlock-dev/airlock/internal/access/broker/hook"       // the exec and webhook brokers
	_ "github.com/airlock-dev/airlock/internal/access/broker/kubernetes" // RoleBindings for the requester or a ServiceAccount
	_ "github.com/airlock-dev/airlock/internal/access/broker/postgres"
	_ "github.com/airlock-dev/airlock/internal/access/broker/sshca"
	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/analysis"
	"github.com/airlock-dev/airlock/internal/api"
	"github.com/airlock-dev/airlock/internal/application"
	"github.com/airlock-dev/airlock/internal/approval"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/breakglass"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/cluster"
	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/flagchange"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/keys"
	"github.com/airlock-dev/airlock/internal/notify"
	"github.com/airlock-dev/airlock/internal/pipeline"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/router"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/store/postgres"
	"github.com/airlock-dev/airlock/internal/store/sqlite"
	"github.com/airlock-dev/airlock/internal/store/sqlstore"
	"github.com/airlock-dev/airlock/internal/verdict"
	"github.com/airlock-dev/airlock/internal/window"
)

// Version is set at build time with -ldflags "-X .../internal/server.Version=...".
var Version = "dev"

// DefaultListen is where airlock serves unless told otherwise.
const DefaultListen = "127.0.0.1:8640"

// NewScheme returns the registry of every kind airlock serves.
func NewScheme() *resource.Scheme {
	s := resource.NewScheme()
	environment.Register(s)
	pipeline.Register(s)
	application.Register(s)
	release.Register(s)
	auth.Register(s)
	keys.Register(s)
	ingest.Register(s)
	promotion.Register(s)
	incident.Register(s)
	window.Register(s)
	approval.Register(s)
	notify.Register(s)
	change.Register(s)
	rollout.Register(s)
	flag.Register(s)
	verdict.Register(s)
	analysis.Register(s)
	plan.Register(s)
	flagchange.Register(s)
	access.Register(s)
	breakglass.Register(s)
	return s
}

// Run serves until ctx is cancelled, then shuts down gracefully. It returns
// an error when the server cannot start or stops unexpectedly.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Minute
	}
	if cfg.DataDir == "" {
		return errors.New("--data is required: a directory for the database, the audit signing key and the admin token")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if cfg.SigningKey == "" {
		cfg.SigningKey = filepath.Join(cfg.DataDir, "audit.key")
	}
	logger := cfg.Logger

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := openStore(ctx, cfg, sqlstore.Options{ObserveBatch: storeMetrics(reg)})
	if err != nil {
		return err
	}
	defer st.Close()

	key, err := audit.LoadOrCreateKey(cfg.SigningKey)
	if err != nil {
		return err
	}
	signer := audit.NewSigner(key)
	pubPath := filepath.Join(cfg.DataDir, "audit.pub")
	if err := os.WriteFile(pubPath, audit.EncodePublicKey(signer.PublicKey()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", pubPath, err)
	}

	tokens := auth.NewTokens(st)
	created, err := tokens.Bootstrap(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	if created {
		logger.Info("bootstrap admin token written", slog.String("path", filepath.Join(cfg.DataDir, auth.AdminTokenFile)))
	}

	deps := NewDeps(st, signer, logger, reg)
	if cfg.OFREPRate < 0 {
		return fmt.Errorf("--ofrep-rate %v must not be negative", cfg.OFREPRate)
	}
	deps.OFREPRate = cfg.OFREPRate
	// Credentials waiting to be collected (and break-glass ones) are
	// sealed with a key kept beside the audit key, outside the database.
	if cfg.SealKey == "" {
		cfg.SealKey = filepath.Join(cfg.DataDir, "seal.key")
	}
	sealer, err := seal.LoadOrCreateKey(cfg.SealKey)
	if err != nil {
		return err
	}
	deps.Access = access.New(st, sealer, os.Getenv, time.Now)
	deps.BreakGlass = breakglass.New(st, sealer, time.Now)
	// Access that ran out while airlock was down is revoked before it
	// serves anything.
	if _, err := deps.Access.RunOnce(ctx); err != nil {
		logger.Warn("revoking overdue access at start failed; retrying in the background", slog.Any("error", err))
	}
	// The local runtime: versions run as supervised processes behind one
	// router per application and environment; instances outlive a restart
	// of the server and are adopted by the next one.
	sup, err := local.New(local.Options{Dir: filepath.Join(cfg.DataDir, "runtime"), Logger: logger})
	if err != nil {
		return fmt.Errorf("local runtime: %w", err)
	}
	defer sup.Close()
	target := local.NewTarget(sup, local.TargetOptions{Getenv: os.Getenv, Logger: logger, Registerer: reg})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		target.Close(ctx)
	}()
	// Each environment's rollouts go to its runtime: local processes, or a
	// Kubernetes namespace; finished rollouts are applied again every 30 s
	// so hand edits on Kubernetes are found and reverted.
	rts := newRuntimes(st, target)
	rec := &rollout.Reconciler{Store: st, Target: rts, Logger: logger, OnFinish: deps.Promotions.RolloutFinished, Resync: 30 * time.Second}
	deps.Runtime, deps.Rollouts, deps.WakeRollouts = target, rollout.NewService(st, rec.Wake), rec.Wake
	analyst := &analysis.Controller{Store: st, Source: analysisSource{target}, Bounds: router.LatencyBounds(),
		Logger: logger, Wake: rec.Wake, LookupEnv: os.LookupEnv}
	deps.Rehearser = &rollout.Rehearser{Store: st, Service: deps.Rollouts, Probe: probe(target)}
	planCtl := &plan.Controller{Store: st, Apply: applyPlanStep, Logger: logger}
	deps.FlagPlans.Wake = planCtl.Wake
	deps.FlagChanges.OnApplied = planCtl.Retry
	clusterDB, err := cluster.NewDB(st.DB(), storeName(cfg))
	if err != nil {
		return err
	}
	deps.Cluster = clusterDB
	handler := api.New(deps)
	cp, promotions := deps.Checkpointer.(*Checkpointer), deps.Promotions

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// The background loops run on the replica that holds the leader lease
	// (with SQLite, this one at once); every replica serves the API.
	member := &cluster.Member{DB: clusterDB, Replica: cluster.Replica{ID: replicaID(), Address: advertise(cfg, ln), Version: Version}, Logger: logger}
	wg.Go(func() {
		member.Run(ctx, func(ctx context.Context) {
			var lw sync.WaitGroup
			lw.Go(func() { rec.Loop(ctx) })     // rollouts
			lw.Go(func() { planCtl.Loop(ctx) }) // flag release plans
			lw.Go(func() { analyst.Loop(ctx) }) // canary analysis
			lw.Go(func() { isolationLoop(ctx, st, rts, logger) })
			lw.Go(func() {
				deps.BreakGlass.Loop(ctx, 30*time.Second, func(err error) {
					logger.WarnContext(ctx, "rotating break-glass credentials failed; retrying with backoff", slog.Any("error", err))
				})
			})
			lw.Go(func() { cp.Loop(ctx, cfg.CheckpointEvery, logger) })
			lw.Go(func() { reviewLoop(ctx, promotions, time.Minute, logger) })
			lw.Go(func() { changeLoop(ctx, deps.Changes, time.Minute, logger) })
			lw.Go(func() {
				deps.FlagChanges.Loop(ctx, 30*time.Second, func(err error) {
					logger.WarnContext(ctx, "applying approved flag changes failed", slog.Any("error", err))
				})
			})
			lw.Go(func() {
				deps.Access.Loop(ctx, func(err error) {
					logger.WarnContext(ctx, "just-in-time access: issuing or revoking failed; retrying", slog.Any("error", err))
				})
			})
			lw.Go(func() { notifyLoop(ctx, &notify.Deliverer{Store: st, Getenv: os.Getenv}, 5*time.Second, logger) })
			lw.Wait()
		})
	})
	wg.Go(func() { handler.FlagUsageLoop(ctx, api.FlagUsageEvery) }) // records the day flags were last evaluated, and once more at the end
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("airlock serving", slog.String("addr", ln.Addr().String()), slog.String("version", Version), slog.String("store", storeName(cfg)))
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		cancel()
		wg.Wait()
		return fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	err = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	// A last checkpoint, so a clean stop leaves the whole log signed.
	if _, cerr := cp.Checkpoint(shutdownCtx); cerr != nil && !errors.Is(cerr, errEmptyLog) {
		logger.Warn("final checkpoint failed", slog.Any("error", cerr))
	}
	logger.Info("airlock stopped")
	return err
}

// NewDeps builds every service the API serves from over one store. Tests
// use it to get exactly the server's wiring.
func NewDeps(st store.Store, signer *audit.Signer, logger *slog.Logger, reg *prometheus.Registry) api.Deps {
	scheme := NewScheme()
	promotions := promotion.New(st)
	cat, flags := catalog.New(st, scheme), flagchange.New(st)
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	cat.SetGuard(flag.KindName, flags.Guard)
	cat.SetGuard(plan.Kind, flagchange.PlanGuard)
	cat.SetGuard(breakglass.Kind, breakglass.Guard)
	return api.Deps{
		Store: st, Scheme: scheme, Catalog: cat, Tokens: auth.NewTokens(st), FlagChanges: flags,
		// Run replaces it with one whose seal key is kept in the data
		// directory; this one's key lives as long as the process.
		Access:     access.New(st, seal.New(key), os.Getenv, time.Now),
		BreakGlass: breakglass.New(st, seal.New(key), time.Now),
		Ingest:     ingest.New(st, promotions.Reevaluate), Promotions: promotions, Incidents: incident.New(st),
		Changes:      change.New(st, promotions.Reevaluate),
		FlagPlans:    plan.NewService(st, applyPlanStep, nil),
		Rollouts:     rollout.NewService(st, nil),
		Checkpointer: &Checkpointer{Store: st, Signer: signer, Now: time.Now},
		Logger:       logger, Registry: reg, Version: Version,
	}
}

func storeName(cfg Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

// storeMetrics exports the group-commit writer's batches: how many writes
// share a commit, how long a whole cycle takes, and how long the commit
// (the durable sync) alone takes. They tell an operator whether write
// latency comes from airlock or from the disk.
func storeMetrics(reg prometheus.Registerer) func(int, time.Duration, time.Duration) {
	writes := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "airlock_store_batch_writes", Help: "Writes committed together in one store transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 9),
	})
	cycle := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "airlock_store_batch_seconds", Help: "Time the store writer spent on one batch, commit included.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "airlock_store_commit_seconds", Help: "Time one store commit (the durable sync) took; on PostgreSQL with the batch's last statement, sent together with it.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
	reg.MustRegister(writes, cycle, commit)
	return func(n int, c, cm time.Duration) {
		writes.Observe(float64(n))
		cycle.Observe(c.Seconds())
		commit.Observe(cm.Seconds())
	}
}

func openStore(ctx context.Context, cfg Config, opts sqlstore.Options) (*sqlstore.Store, error) {
	if u := cfg.DatabaseURL; u != "" {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			return nil, fmt.Errorf("--database %q: only PostgreSQL URLs (postgres://user@host:port/db) are supported; leave it out to use SQLite in --data", redactURL(u))
		}
		st, err := postgres.Open(ctx, u, opts)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL %s: %w", redactURL(u), err)
		}
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, "airlock.db")
	st, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	return st, nil
}

// redactURL hides a password in a database URL, for messages and logs.
func redactURL(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	cred := u[scheme+3 : at]
	if i := strings.IndexByte(cred, ':'); i >= 0 {
		return u[:scheme+3] + cred[:i] + ":xxxxx" + u[at:]
	}
	return u
}

var errEmptyLog = errors.New("the audit log is empty")

// notifyLoop delivers due notifications every tick until ctx ends.
func notifyLoop(ctx context.Context, d *notify.Deliverer, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if ok, failed, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "delivering notifications failed", slog.Any("error", err))
		} else if failed > 0 {
			logger.WarnContext(ctx, "notifications not delivered", slog.Int("delivered", ok), slog.Int("failed", failed))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reviewLoop flags post-emergency reviews that pass their deadline and
// re-judges open promotions whose gates depend on time.
func reviewLoop(ctx context.Context, p *promotion.Service, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := p.FlagOverdue(ctx, store.Actor{Name: "system:reviews", Reason: "review deadline passed"}); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "flagging overdue reviews failed", slog.Any("error", err))
		} else if n > 0 {
			logger.WarnContext(ctx, "post-emergency reviews overdue", slog.Int("count", n))
		}
		if _, err := p.ReevaluateOpen(ctx, store.Actor{Name: "system:promotions", Reason: "periodic re-evaluation (windows, expiries)"}); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "re-evaluating open promotions failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe requests an application through its router and wants a 2xx.
func probe(t *local.Target) func(ctx context.Context, app, env string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context, app, env string) error {
		addr := t.Address(app, env)
		if addr == "" {
			return fmt.Errorf("%s has no router in %s", app, env)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("GET http://%s/ answered %s", addr, resp.Status)
		}
		return nil
	}
}

// changeLoop asks external change systems about open change requests
// every tick until ctx ends.
func changeLoop(ctx context.Context, c *change.Service, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.ConfirmOpen(ctx, store.Actor{Name: "system:changes", Reason: "periodic confirmation by the change system"}); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "confirming external change requests failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Checkpointer signs checkpoints of the audit head, on demand and
// periodically. It is safe for concurrent use.
type Checkpointer struct {
	Store  store.Store
	Signer *audit.Signer
	Now    func() time.Time

	mu   sync.Mutex
	last *audit.Checkpoint
}

// PublicKey returns the key that verifies the checkpoints.
func (c *Checkpointer) PublicKey() ed25519.PublicKey { return c.Signer.PublicKey() }

// Checkpoint signs the current head, or returns the latest checkpoint when
// the log has not grown since.
func (c *Checkpointer) Checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	seq, head, err := c.Store.Audit().Head(ctx)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("read audit head: %w", err)
	}
	return c.CheckpointAt(ctx, seq, head)
}

// CheckpointAt signs a checkpoint over the first size entries, whose last
// has hash head, unless the latest checkpoint already covers as much. The
// caller vouches that head is the stored hash of entry size (the verifier
// does, having just walked the chain).
func (c *Checkpointer) CheckpointAt(ctx context.Context, size int64, head string) (audit.Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if size == 0 {
		return audit.Checkpoint{}, errEmptyLog
	}
	if c.last == nil {
		cps, err := c.Store.Audit().Checkpoints(ctx)
		if err != nil {
			return audit.Checkpoint{}, fmt.Errorf("read checkpoints: %w", err)
		}
		if n := len(cps); n > 0 {
			c.last = &cps[n-1]
		}
	}
	if c.last != nil && c.last.Size >= size {
		return *c.last, nil
	}
	cp := c.Signer.Sign(size, head, c.Now())
	if err := c.Store.Audit().AddCheckpoint(ctx, cp); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			return audit.Checkpoint{}, fmt.Errorf("store checkpoint: %w", err)
		}
		// Another replica signed this size first; theirs stands.
		cps, err := c.Store.Audit().Checkpoints(ctx)
		if err != nil || len(cps) == 0 {
			return audit.Checkpoint{}, fmt.Errorf("read checkpoints: %v", err)
		}
		c.last = &cps[len(cps)-1]
		return *c.last, nil
	}
	c.last = &cp
	return cp, nil
}

// Loop signs a checkpoint every interval while the log grows, until ctx ends.
func (c *Checkpointer) Loop(ctx context.Context, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Checkpoint(ctx); err != nil && !errors.Is(err, errEmptyLog) && ctx.Err() == nil {
				logger.WarnContext(ctx, "periodic checkpoint failed", slog.Any("error", err))
			}
		}
	}
}

// applyPlanStep is the flag plans' ApplyFunc: a step goes through flag
// change control, held back (the plan controller waits) by a closed
// deployment window or, where the environment needs approvals, until the
// plan's first step is approved.
func applyPlanStep(ctx context.Context, tx store.Tx, actor store.Actor, planName, flagName string, next flag.Spec, note string) error {
	err := flagchange.ApplyPlanned(ctx, tx, actor, planName, flagName, next, note)
	switch {
	case errors.Is(err, flagchange.ErrWindowClosed):
		return &planWait{sentinel: plan.ErrWindowClosed, err: err}
	case errors.Is(err, flagchange.ErrAwaitingApproval):
		return &planWait{sentinel: plan.ErrAwaitingApproval, err: err}
	}
	return err
}

// planWait carries flag change control's reason to wait under the plan
// controller's sentinel, keeping the reason's words.
type planWait struct{ sentinel, err error }

func (e *planWait) Error() string   { return e.err.Error() }
func (e *planWait) Unwrap() []error { return []error{e.sentinel, e.err} }

// replicaID names this server among the replicas sharing a database: the
// host name, the process id and a random suffix.
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "airlock"
	}
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b)
}

// advertise is the address other people reach this replica at: --advertise,
// or the address it listens on.
func advertise(cfg Config, ln net.Listener) string {
	if cfg.Advertise != "" {
		return cfg.Advertise
	}
	return ln.Addr().String()
}
