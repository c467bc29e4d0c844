package api

import (
	"fmt"
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flagchange"
)

func (a *API) registerFlagChangeRoutes() {
	a.handle("POST", "/api/v1/flags/{name}/set", "Change a flag's kill switch, default variant or split (body: {enabled, defaultVariant, fractional, clearFractional, reason, emergency: {incident}}); applied at once or proposed for approval under the environment's policy.", rule{action: auth.ManageFlags, inHandler: true}, a.setFlag)
	a.handle("POST", "/api/v1/flagchanges/{name}/approve", "Approve a pending flag change (body: {reason}); the caller's roles for its environment are recorded. The last approval needed applies it.", rule{action: auth.Approve, inHandler: true}, a.voteFlagChange(flagchange.Approve))
	a.handle("POST", "/api/v1/flagchanges/{name}/reject", "Reject a pending flag change (body: {reason}).", rule{action: auth.Approve, inHandler: true}, a.voteFlagChange(flagchange.Reject))
	a.handle("POST", "/api/v1/flagchanges/{name}/withdraw", "Withdraw a flag change that has not applied (body: {reason}).", rule{action: auth.ManageFlags, inHandler: true}, a.withdrawFlagChange)
}

func (a *API) setFlag(w http.ResponseWriter, r *http.Request, c *call) error {
	var req flagchange.SetRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	req.Flag = r.PathValue("name")
	env, err := a.FlagChanges.Target(r.Context(), flag.KindName, req.Flag)
	if err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.ManageFlags, env); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = "flags set: " + req.Reason
	if req.Emergency != nil {
		actor.Reason = fmt.Sprintf("emergency flag change (incident %s): %s", req.Emergency.Incident, req.Reason)
	}
	res, err := a.FlagChanges.Set(r.Context(), actor, req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Phase != flagchange.Applied {
		status = http.StatusAccepted
	}
	return writeJSON(w, status, res)
}

func (a *API) voteFlagChange(d string) func(http.ResponseWriter, *http.Request, *call) error {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var req VoteRequest
		if err := readJSON(r, &req); err != nil {
			return err
		}
		env, err := a.FlagChanges.Target(r.Context(), flagchange.Kind, r.PathValue("name"))
		if err != nil {
			return err
		}
		if err := auth.Authorize(c.principal, auth.Approve, env); err != nil {
			return err
		}
		actor := c.actor(r)
		actor.Reason = fmt.Sprintf("%s: %s", d, req.Reason)
		obj, err := a.FlagChanges.Vote(r.Context(), actor, flagchange.VoteRequest{Change: r.PathValue("name"), Decision: d, Reason: req.Reason, Roles: rolesFor(c.principal)(env)})
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, obj)
	}
}

func (a *API) withdrawFlagChange(w http.ResponseWriter, r *http.Request, c *call) error {
	var req VoteRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	env, err := a.FlagChanges.Target(r.Context(), flagchange.Kind, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.ManageFlags, env); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = "withdrawn: " + req.Reason
	obj, err := a.FlagChanges.Withdraw(r.Context(), actor, r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}
