// Package api is airlock's HTTP transport: routes under /api/v1, each with
// the authorization rule it is checked against, JSON bodies, problem+json
// errors (mapped in errors.go only), an OpenAPI document generated from the
// same route table, and the service endpoints /healthz, /readyz and /metrics.
package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlock-dev/airlock/internal/access"
	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/breakglass"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/cluster"
	"github.com/airlock-dev/airlock/internal/flagchange"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/store"
)

// maxBody limits every request body.
const maxBody = resource.MaxInputBytes

// Checkpointer signs checkpoints of the audit log.
type Checkpointer interface {
	// Checkpoint signs and stores a checkpoint of the current head (or
	// returns the latest one when the log has not grown since).
	Checkpoint(ctx context.Context) (audit.Checkpoint, error)
	// CheckpointAt signs the first size entries, ending in head, unless a
	// checkpoint already covers them; it returns the latest checkpoint.
	CheckpointAt(ctx context.Context, size int64, head string) (audit.Checkpoint, error)
	PublicKey() ed25519.PublicKey
}

// Deps are what the API serves from.
type Deps struct {
	Store store.Store
	// FlagPlans advances, pauses, resumes and cancels flag release plans.
	FlagPlans  *plan.Service
	Scheme     *resource.Scheme
	Catalog    *catalog.Service
	Tokens     *auth.Tokens
	Ingest     *ingest.Service
	Promotions *promotion.Service
	Incidents  *incident.Service
	Changes    *change.Service
	// BreakGlass keeps sealed emergency credentials; nil answers 503.
	BreakGlass *breakglass.Service
	// Access is just-in-time access to production resources.
	Access *access.Service
	// FlagChanges is the change control every flag write goes through.
	FlagChanges *flagchange.Service
	Rollouts    *rollout.Service
	// Cluster is the database the replicas share (replicas and the
	// leader lease); nil answers 503 on /api/v1/cluster.
	Cluster *cluster.DB
	// WakeRollouts tells the rollout reconciler to act at once (after a
	// decision on a verdict); nil: it acts within a second anyway.
	WakeRollouts func()
	// Runtime is the local runtime; nil when the server runs none (the
	// artifact upload then answers 503).
	Runtime *local.Target
	// OFREPRate is the OFREP requests per second one evaluation key may
	// make (bursts of twice that); 0 means DefaultOFREPRate.
	OFREPRate float64
	// Rehearser runs rollback rehearsals; nil answers 503.
	Rehearser    *rollout.Rehearser
	Checkpointer Checkpointer
	Now          func() time.Time
	Logger       *slog.Logger
	Registry     *prometheus.Registry
	Version      string
}

// API is the HTTP handler set.
type API struct {
	Deps
	ofrepLimit *keyLimiter
	ofrep      ofrepCache  // compiled flags and evaluation keys (flagindex.go)
	statusIdx  statusIndex // the status matrix (statusindex.go)
	usage      flagUsage   // the days flags were evaluated, until flushed (flagusage.go)
	logger     *slog.Logger
	routes     []route
	mux        *http.ServeMux
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// New builds the handler. It registers its metrics in deps.Registry.
func New(d Deps) *API {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.OFREPRate <= 0 {
		d.OFREPRate = DefaultOFREPRate
	}
	a := &API{Deps: d, logger: d.Logger, mux: http.NewServeMux(), ofrepLimit: newKeyLimiter(d.OFREPRate, d.Now)}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airlock_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	a.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "airlock_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route"})
	d.Registry.MustRegister(a.requests, a.latency)
	a.registerRoutes()
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	return a
}

// ServeHTTP serves every route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// ofrepSources are the route prefixes whose writes may change what OFREP
// serves from its cache, besides the kind-generic routes.
var ofrepSources = []string{"/api/v1/apply", "/api/v1/tokens", "/api/v1/flags/", "/api/v1/flagchanges/", "/api/v1/flagplans/"}

// rule is how a route is authorized. Exactly one of its fields says how.
type rule struct {
	public bool        // no token needed (health, readiness, the OpenAPI document)
	action auth.Action // a fixed action
	verb   string      // a kind-generic route: ActionFor(verb, kind of {resource})
	// inHandler is for routes whose body names what is acted on (apply's
	// objects, a promotion's environment): the handler authorizes action
	// (or, for apply, each object's write action) once it has read the body.
	inHandler bool
}

type route struct {
	method, path string
	summary      string
	rule         rule
	bodyLimit    int64
	handler      func(w http.ResponseWriter, r *http.Request, c *call) error
}

// routeOption adjusts one route.
type routeOption func(*route)

// bodyLimit raises or lowers a route's request body limit (default maxBody).
func bodyLimit(n int64) routeOption { return func(r *route) { r.bodyLimit = n } }

// call is one authorized request.
type call struct {
	principal *auth.Principal
	kind      *resource.Kind // for kind-generic routes
}

func (c *call) actor(r *http.Request) store.Actor {
	return store.Actor{Name: c.principal.Name, Reason: r.URL.Query().Get("reason")}
}

// handle registers a route. Every route passes through here, so none can
// exist without an authorization rule.
func (a *API) handle(method, path, summary string, rl rule, h func(http.ResponseWriter, *http.Request, *call) error, opts ...routeOption) {
	n := 0
	for _, set := range []bool{rl.public, rl.action != "", rl.verb != ""} {
		if set {
			n++
		}
	}
	if n != 1 || (rl.inHandler && rl.action == "") {
		panic(fmt.Sprintf("api: route %s %s must have exactly one authorization rule", method, path))
	}
	rt := route{method: method, path: path, summary: summary, rule: rl, handler: h, bodyLimit: maxBody}
	for _, o := range opts {
		o(&rt)
	}
	a.routes = append(a.routes, rt)
	latency := a.latency.WithLabelValues(method + " " + path)
	// A write that may change what OFREP serves (flags, segments, tokens,
	// role bindings) starts a new cache generation once it is done, so the
	// writer's next evaluation sees it; the store watch catches every other
	// writer a moment later.
	writes := method != http.MethodGet && (rl.verb != "" || slices.ContainsFunc(ofrepSources, func(p string) bool { return strings.HasPrefix(path, p) }))
	a.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		err := a.safeServe(rec, r, rt)
		if writes {
			a.ofrep.invalidate()
		}
		if err != nil {
			a.writeError(rec, r, err)
		}
		a.requests.WithLabelValues(method+" "+path, strconv.Itoa(rec.status)).Inc()
		latency.Observe(time.Since(start).Seconds())
	})
}

// safeServe turns a panic in a handler into a 500 for that request alone.
func (a *API) safeServe(w http.ResponseWriter, r *http.Request, rt route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in %s %s: %v", rt.method, rt.path, p)
		}
	}()
	return a.serve(w, r, rt)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	r.Body = http.MaxBytesReader(w, r.Body, rt.bodyLimit)
	c := &call{}
	if rt.rule.public {
		return rt.handler(w, r, c)
	}
	token, ok := bearer(r)
	if !ok {
		return fmt.Errorf("%w: no bearer token", auth.ErrUnauthenticated)
	}
	var p *auth.Principal
	var err error
	if rt.rule.action == auth.EvaluateFlags {
		p, err = a.authenticateOFREP(r.Context(), token)
	} else {
		p, err = auth.Authenticate(r.Context(), a.Store, token, a.Now())
	}
	if err != nil {
		return err
	}
	c.principal = p
	switch {
	case rt.rule.inHandler:
		// The handler authorizes against what the body names; a caller
		// whose roles could never do this is refused before it is read.
		if err := auth.MayEver(p, rt.rule.action); err != nil {
			return err
		}
	case rt.rule.action != "":
		if err := auth.Authorize(p, rt.rule.action, ""); err != nil {
			return err
		}
	case rt.rule.verb != "":
		k, ok := a.Scheme.Lookup(r.PathValue("resource"))
		if !ok {
			return &resource.UnknownKindError{Word: r.PathValue("resource"), Allowed: a.Scheme.KindNames(false)}
		}
		c.kind = k
		env := ""
		if k.Name == catalog.EnvironmentKind {
			env = r.PathValue("name")
		}
		if err := auth.Authorize(p, auth.ActionFor(rt.rule.verb, k.Name), env); err != nil {
			return err
		}
	}
	return rt.handler(w, r, c)
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || h[:len(prefix)] != prefix {
		return "", false
	}
	return h[len(prefix):], true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readJSON decodes a JSON body into v, rejecting unknown fields.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return badRequestf("request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequestf("request body: %v", err)
	}
	return nil
}

// RouteInfo describes one route and its authorization rule.
type RouteInfo struct {
	Method, Path, Summary string
	Public                bool
	Action                auth.Action // fixed action, if any
	Verb                  string      // kind-generic verb, if any
	InHandler             bool        // authorized by the handler against the body
}

// Routes lists every route, in registration order.
func (a *API) Routes() []RouteInfo {
	out := make([]RouteInfo, len(a.routes))
	for i, rt := range a.routes {
		out[i] = RouteInfo{Method: rt.method, Path: rt.path, Summary: rt.summary, Public: rt.rule.public,
			Action: rt.rule.action, Verb: rt.rule.verb, InHandler: rt.rule.inHandler}
	}
	return out
}
