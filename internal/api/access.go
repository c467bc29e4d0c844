package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/airlock-dev/airlock/internal/access"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/store"
)

func (a *API) registerAccessRoutes() {
	a.handle("POST", "/api/v1/access", "Ask for just-in-time access (body: {environment, resource, role, for, reason, incident, publicKey}); the caller is the requester.", rule{action: auth.RequestAccess, inHandler: true}, a.requestAccess)
	a.handle("POST", "/api/v1/access/{name}/approve", "Approve an access request (body: {reason}); the caller's roles in its environment are recorded. The last approval needed issues the credential.", rule{action: auth.Approve, inHandler: true}, a.voteAccess(access.Approve))
	a.handle("POST", "/api/v1/access/{name}/deny", "Deny an access request (body: {reason}).", rule{action: auth.Approve, inHandler: true}, a.voteAccess(access.Deny))
	a.handle("POST", "/api/v1/access/{name}/revoke", "Revoke an access now (body: {reason}): the requester their own, access.manage anyone's.", rule{action: auth.RequestAccess, inHandler: true}, a.revokeAccess)
	a.handle("POST", "/api/v1/access/{name}/credentials", "Hand the issued credential to its requester, once; it is then gone from airlock.", rule{action: auth.RequestAccess, inHandler: true}, a.accessCredentials)
	a.handle("GET", "/api/v1/access-report", "Who held access to an environment in a period, next to its promotions and rollouts (query: environment, since as a duration such as 30d or 72h).", rule{action: auth.ReadAccess, inHandler: true}, a.accessReport)
}

func (a *API) requestAccess(w http.ResponseWriter, r *http.Request, c *call) error {
	var ask access.Ask
	if err := readJSON(r, &ask); err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.RequestAccess, ask.Environment); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = fmt.Sprintf("access request: %s on %s in %s for %s: %s", ask.Role, ask.Resource, ask.Environment, ask.For, ask.Reason)
	obj, err := a.Access.Request(r.Context(), actor, ask)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

func (a *API) accessTarget(ctx context.Context, name string) (string, error) {
	env, _, err := a.Access.Target(ctx, name)
	return env, err
}

func (a *API) voteAccess(d string) func(http.ResponseWriter, *http.Request, *call) error {
	return a.decision(a.accessTarget, auth.Approve, d, func(ctx context.Context, actor store.Actor, name, reason string, roles []string) (any, error) {
		return a.Access.Vote(ctx, actor, access.VoteRequest{Request: name, Decision: d, Reason: reason, Roles: roles})
	})
}

func (a *API) revokeAccess(w http.ResponseWriter, r *http.Request, c *call) error {
	var req VoteRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	env, requester, err := a.Access.Target(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if c.principal.Name != requester {
		if err := auth.Authorize(c.principal, auth.ManageAccess, env); err != nil {
			return err
		}
	}
	actor := c.actor(r)
	actor.Reason = "revoke: " + req.Reason
	obj, err := a.Access.Revoke(r.Context(), actor, r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}

func (a *API) accessCredentials(w http.ResponseWriter, r *http.Request, c *call) error {
	env, _, err := a.Access.Target(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.RequestAccess, env); err != nil {
		return err
	}
	cred, err := a.Access.Credentials(r.Context(), c.actor(r), r.PathValue("name"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, cred)
}

func (a *API) accessReport(w http.ResponseWriter, r *http.Request, c *call) error {
	env := r.URL.Query().Get("environment")
	if env == "" {
		return badRequestf("the report is of one environment: ?environment=ENV")
	}
	if err := auth.Authorize(c.principal, auth.ReadAccess, env); err != nil {
		return err
	}
	since := 30 * 24 * time.Hour
	if s := r.URL.Query().Get("since"); s != "" {
		d, err := access.ParseSince(s)
		if err != nil {
			return badRequestf("%v", err)
		}
		since = d
	}
	now := a.Now()
	rep, err := access.BuildReport(r.Context(), a.Store, env, now.Add(-since), now)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
