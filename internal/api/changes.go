package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/store"
)

func (a *API) registerChangeRoutes() {
	a.handle("POST", "/api/v1/changes", "Raise a change request (body: {app, version, environment, summary, risk, rollbackPlan, external: {system, key}}); the caller is recorded as raising it.", rule{action: auth.ManageChanges, inHandler: true}, a.createChange)
	a.handle("POST", "/api/v1/changes/{name}/approve", "Approve an internal change request (body: {reason}); the caller's roles for its environment are recorded.", rule{action: auth.Approve, inHandler: true}, a.voteChange(change.Approve))
	a.handle("POST", "/api/v1/changes/{name}/reject", "Reject an internal change request (body: {reason}).", rule{action: auth.Approve, inHandler: true}, a.voteChange(change.Reject))
	a.handle("POST", "/api/v1/changes/{name}/confirm", "Ask an external change request's system for its approval now and record the answer.", rule{action: auth.ManageChanges, inHandler: true}, a.confirmChange)
	a.handle("POST", "/api/v1/changes/{name}/close", "Close (withdraw) a change request (body: {reason}).", rule{action: auth.ManageChanges, inHandler: true}, a.closeChange())
}

func (a *API) createChange(w http.ResponseWriter, r *http.Request, c *call) error {
	var req change.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.ManageChanges, req.Environment); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = fmt.Sprintf("change request (%s risk): %s", req.Risk, req.Summary)
	obj, err := a.Changes.Create(r.Context(), actor, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

// authorizeChange authorizes action on the environment of the change
// request named in the path, and returns that environment.
func (a *API) authorizeChange(r *http.Request, c *call, action auth.Action) (string, error) {
	env, err := a.Changes.Target(r.Context(), r.PathValue("name"))
	if err != nil {
		return "", err
	}
	return env, auth.Authorize(c.principal, action, env)
}

func (a *API) voteChange(d string) func(http.ResponseWriter, *http.Request, *call) error {
	return a.decision(a.Changes.Target, auth.Approve, d, func(ctx context.Context, actor store.Actor, name, reason string, roles []string) (any, error) {
		return a.Changes.Vote(ctx, actor, change.VoteRequest{Name: name, Decision: d, Reason: reason, Roles: roles})
	})
}

func (a *API) confirmChange(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := a.authorizeChange(r, c, auth.ManageChanges); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = "confirmation asked of the change system"
	obj, err := a.Changes.Confirm(r.Context(), actor, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}

func (a *API) closeChange() func(http.ResponseWriter, *http.Request, *call) error {
	return a.decision(a.Changes.Target, auth.ManageChanges, "closed", func(ctx context.Context, actor store.Actor, name, reason string, _ []string) (any, error) {
		return a.Changes.Close(ctx, actor, name, reason)
	})
}
