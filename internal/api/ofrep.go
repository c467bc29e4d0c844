package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/store"
)

// OFREP, the OpenFeature Remote Evaluation Protocol: applications evaluate
// the flags of one environment with an evaluation key (a token holding the
// evaluator role for exactly that environment).
func (a *API) registerOFREPRoutes() {
	a.handle("POST", "/ofrep/v1/evaluate/flags/{key}", "OFREP: evaluate one flag of the evaluation key's environment (body: {context}).", rule{action: auth.EvaluateFlags, inHandler: true}, a.ofrepOne, bodyLimit(64<<10))
	a.handle("POST", "/ofrep/v1/evaluate/flags", "OFREP: evaluate every flag of the evaluation key's environment (body: {context}; ETag / If-None-Match → 304).", rule{action: auth.EvaluateFlags, inHandler: true}, a.ofrepBulk, bodyLimit(64<<10))
	a.handle("GET", "/ofrep/v1/configuration", "OFREP: the provider configuration (capabilities).", rule{action: auth.EvaluateFlags, inHandler: true}, a.ofrepConfiguration)
	a.handle("GET", "/ofrep/v1/changes", "Flag changes of the evaluation key's environment as server-sent events (event: flags-changed, data: {keys, revision}), so clients refresh at once.", rule{action: auth.EvaluateFlags, inHandler: true}, a.ofrepChanges)
}

// ofrepChanges streams, as server-sent events, that the flags of the
// key's environment changed: a flag of it was created, updated or
// deleted, or any segment changed (segments serve every environment).
func (a *API) ofrepChanges(w http.ResponseWriter, r *http.Request, c *call) error {
	env, err := evaluationEnv(r, c.principal)
	if err != nil {
		return err
	}
	seq, _, err := a.Store.Audit().Head(r.Context())
	if err != nil {
		return err
	}
	events, err := a.Store.Watch(r.Context(), "", seq)
	if err != nil {
		return err
	}
	// A flag's status changes (the day it was last evaluated) are not
	// news to clients: only a spec that differs from the last one seen is.
	seen := map[string][sha256.Size]byte{}
	current, err := a.Store.List(r.Context(), flag.KindName, nil)
	if err != nil {
		return err
	}
	for _, o := range current {
		seen[o.Metadata.Name] = sha256.Sum256(o.Spec)
	}
	return streamEvents(w, r, events, func(ev store.Event) (string, any, bool) {
		var keys []string
		switch ev.Kind {
		case flag.SegmentKindName:
		case flag.KindName:
			if ev.Object != nil {
				var s flag.Spec
				if err := ev.Object.DecodeSpec(&s); err != nil || s.Environment != env {
					return "", nil, false
				}
				sum := sha256.Sum256(ev.Object.Spec)
				if prev, ok := seen[ev.Name]; ok && prev == sum && ev.Type == store.Updated {
					return "", nil, false
				}
				seen[ev.Name] = sum
				keys = []string{s.Key}
			} else {
				delete(seen, ev.Name)
			}
		default:
			return "", nil, false
		}
		return "flags-changed", map[string]any{"keys": keys, "revision": ev.Revision}, true
	})
}

// keyScopeError is an evaluation key not limited to exactly one
// environment (403).
type keyScopeError struct{ name string }

func (e *keyScopeError) Error() string {
	return fmt.Sprintf("%s may not evaluate flags: an evaluation key holds the evaluator role for exactly one environment; create one with airlock flags key create --env ENV", e.name)
}

// evaluationEnv is the one environment a caller evaluates flags of: the
// environment of an evaluation key, or, for an admin, the environment the
// request names (?environment=ENV).
func evaluationEnv(r *http.Request, p *auth.Principal) (string, error) {
	if p.HoldsRole(auth.Admin) {
		env := r.URL.Query().Get("environment")
		if env == "" {
			return "", badRequestf("an admin evaluates the flags of the environment named by ?environment=ENV")
		}
		return env, nil
	}
	env := ""
	for _, g := range p.Grants {
		for _, role := range g.Roles {
			if role != auth.Evaluator {
				continue
			}
			if len(g.Environments) != 1 || (env != "" && env != g.Environments[0]) {
				return "", &keyScopeError{name: p.Name}
			}
			env = g.Environments[0]
		}
	}
	if env == "" {
		return "", &keyScopeError{name: p.Name}
	}
	return env, nil
}

// ofrepResult is OFREP's evaluation success or failure body: a success
// always carries its value (false and "" too), a failure never does.
type ofrepResult struct {
	Key          string
	Reason       string
	Variant      string
	Value        any
	Metadata     map[string]any
	ErrorCode    string
	ErrorDetails string
}

func (r ofrepResult) MarshalJSON() ([]byte, error) {
	if r.ErrorCode != "" {
		return json.Marshal(struct {
			Key          string `json:"key"`
			ErrorCode    string `json:"errorCode"`
			ErrorDetails string `json:"errorDetails,omitempty"`
		}{r.Key, r.ErrorCode, r.ErrorDetails})
	}
	return json.Marshal(struct {
		Key      string         `json:"key"`
		Reason   string         `json:"reason"`
		Variant  string         `json:"variant"`
		Value    any            `json:"value"`
		Metadata map[string]any `json:"metadata,omitempty"`
	}{r.Key, r.Reason, r.Variant, r.Value, r.Metadata})
}

func ofrepError(key, code, details string) ofrepResult {
	return ofrepResult{Key: key, ErrorCode: code, ErrorDetails: details}
}

func evaluate(key string, evs []*flag.Evaluator, c flag.Context) (ofrepResult, int) {
	switch len(evs) {
	case 0:
		return ofrepError(key, flag.ErrFlagNotFound, "flag "+key+" does not exist in this environment"), http.StatusNotFound
	case 1:
	default:
		return ofrepError(key, flag.ErrGeneral, "several applications declare flag "+key+" in this environment"), http.StatusBadRequest
	}
	res := evs[0].Evaluate(c)
	if res.Reason == flag.ReasonError {
		return ofrepError(key, res.ErrorCode, res.ErrorMessage), http.StatusBadRequest
	}
	return ofrepResult{Key: key, Reason: res.Reason, Variant: res.Variant, Value: res.Value,
		Metadata: map[string]any{"app": evs[0].Spec().App}}, http.StatusOK
}

func (a *API) ofrepContext(r *http.Request) (flag.Context, *flag.EvalError, error) {
	c, err := flag.DecodeRequest(r.Body)
	var ee *flag.EvalError
	if errors.As(err, &ee) {
		return c, ee, nil
	}
	return c, nil, err
}

// limited answers 429 with Retry-After when the caller's key is over its
// rate; it reports whether it did.
func (a *API) limited(w http.ResponseWriter, c *call) bool {
	ok, wait := a.ofrepLimit.allow(c.principal.Name)
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, "{\"errorCode\":\"GENERAL\",\"errorDetails\":\"evaluation key %s is over its rate of %g requests per second\"}\n", c.principal.Name, a.OFREPRate)
	return true
}

func (a *API) ofrepOne(w http.ResponseWriter, r *http.Request, c *call) error {
	env, err := evaluationEnv(r, c.principal)
	if err != nil {
		return err
	}
	if a.limited(w, c) {
		return nil
	}
	key := r.PathValue("key")
	ctx, ee, err := a.ofrepContext(r)
	if err != nil {
		return err
	}
	if ee != nil {
		return writeJSON(w, http.StatusBadRequest, ofrepError(key, ee.Code, ee.Msg))
	}
	set, _, err := a.flagSet(r.Context(), env)
	if err != nil {
		return err
	}
	res, code := evaluate(key, set[key], ctx)
	if code == http.StatusOK {
		a.usage.noteOne(c, env, set[key], a.Now())
	}
	return writeJSON(w, code, res)
}

func (a *API) ofrepBulk(w http.ResponseWriter, r *http.Request, c *call) error {
	env, err := evaluationEnv(r, c.principal)
	if err != nil {
		return err
	}
	if a.limited(w, c) {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	ctx, derr := flag.DecodeRequestBytes(body)
	var ee *flag.EvalError
	if errors.As(derr, &ee) {
		return writeJSON(w, http.StatusBadRequest, map[string]string{"errorCode": ee.Code, "errorDetails": ee.Msg})
	} else if derr != nil {
		return derr
	}
	set, tag, err := a.flagSet(r.Context(), env)
	if err != nil {
		return err
	}
	a.usage.noteAll(c, env, set, a.Now()) // answered or 304, the client holds every flag
	sum := sha256.Sum256(append([]byte(tag+"\x00"), body...))
	etag := strconv.Quote(hex.EncodeToString(sum[:12]))
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	flags := make([]ofrepResult, 0, len(keys))
	for _, k := range keys {
		res, _ := evaluate(k, set[k], ctx)
		flags = append(flags, res)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"flags": flags})
}

func (a *API) ofrepConfiguration(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := evaluationEnv(r, c.principal); err != nil {
		return err
	}
	cfg := map[string]any{
		"name": "airlock",
		"capabilities": map[string]any{
			"cacheInvalidation": map[string]any{"polling": map[string]any{"enabled": true, "minPollingIntervalMs": 1000}},
			"flagEvaluation":    map[string]any{"supportedTypes": []string{"boolean", "string", "number", "object"}},
		},
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(cfg)
}
