package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/airlock-dev/airlock/internal/analysis"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

func (a *API) registerVerdictRoutes() {
	a.handle("POST", "/api/v1/verdicts/{name}/accept", "Accept a verdict as its judge made it (body: {reason}); the caller may not be its judge. Audited; refusals are audited as refused-accept.", rule{action: auth.Approve, inHandler: true}, a.acceptVerdict())
	a.handle("POST", "/api/v1/verdicts/{name}/override", "Override a verdict's outcome (body: {reason, outcome: pass|fail|inconclusive}); the caller may not be its judge. Audited and counted per signal; refusals are audited as refused-override.", rule{action: auth.Approve, inHandler: true}, a.overrideVerdict)
	a.handle("GET", "/api/v1/verdicts/overrides", "Per signal: the verdicts that carried it, how many a person overrode against it, and the rate (query: app, environment).", rule{action: auth.ReadResources}, a.verdictOverrides)
}

// OverrideVerdictRequest is the body of a verdict override.
type OverrideVerdictRequest struct {
	Reason  string          `json:"reason"`
	Outcome verdict.Outcome `json:"outcome"`
}

// OverridesResponse is the body of GET /api/v1/verdicts/overrides.
type OverridesResponse struct {
	Items []verdict.SignalCount `json:"items"`
}

func (a *API) verdictTarget(ctx context.Context, name string) (string, error) {
	return verdict.Target(ctx, a.Store, name)
}

func (a *API) acceptVerdict() func(http.ResponseWriter, *http.Request, *call) error {
	return a.decision(a.verdictTarget, auth.Approve, "verdict accept", func(ctx context.Context, actor store.Actor, name, reason string, _ []string) (any, error) {
		return verdict.Decide(ctx, a.Store, actor, verdict.DecideRequest{Name: name, Decision: verdict.AcceptDecision, Reason: reason, Then: analysis.Decided(a.WakeRollouts)})
	})
}

// overrideVerdict is a decision (see decision.go) whose body also names
// the outcome that counts instead.
func (a *API) overrideVerdict(w http.ResponseWriter, r *http.Request, c *call) error {
	var req OverrideVerdictRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	env, err := a.verdictTarget(r.Context(), name)
	if err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.Approve, env); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = fmt.Sprintf("verdict override to %s: %s", req.Outcome, req.Reason)
	obj, err := verdict.Decide(r.Context(), a.Store, actor, verdict.DecideRequest{Name: name, Decision: verdict.OverrideDecision, Reason: req.Reason, Outcome: req.Outcome, Then: analysis.Decided(a.WakeRollouts)})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}

func (a *API) verdictOverrides(w http.ResponseWriter, r *http.Request, _ *call) error {
	q := r.URL.Query()
	items, err := verdict.OverrideCounts(r.Context(), a.Store, q.Get("app"), q.Get("environment"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, OverridesResponse{Items: items})
}
