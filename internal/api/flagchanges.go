package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
	"github.com/airlock-dev/airlock/internal/flagchange"
	"github.com/airlock-dev/airlock/internal/store"
)

func (a *API) registerFlagChangeRoutes() {
	a.handle("POST", "/api/v1/flags/{name}/set", "Change a flag's kill switch, default variant or split (body: {enabled, defaultVariant, fractional, clearFractional, reason, emergency: {incident}}); applied at once or proposed for approval under the environment's policy.", rule{action: auth.ManageFlags, inHandler: true}, a.setFlag)
	a.handle("POST", "/api/v1/flagchanges/{name}/approve", "Approve a pending flag change (body: {reason}); the caller's roles for its environment are recorded. The last approval needed applies it.", rule{action: auth.Approve, inHandler: true}, a.voteFlagChange(flagchange.Approve))
	a.handle("POST", "/api/v1/flagchanges/{name}/reject", "Reject a pending flag change (body: {reason}).", rule{action: auth.Approve, inHandler: true}, a.voteFlagChange(flagchange.Reject))
	a.handle("POST", "/api/v1/flagchanges/{name}/withdraw", "Withdraw a flag change that has not applied (body: {reason}).", rule{action: auth.ManageFlags, inHandler: true}, a.withdrawFlagChange())
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

func (a *API) flagChangeTarget(ctx context.Context, name string) (string, error) {
	return a.FlagChanges.Target(ctx, flagchange.Kind, name)
}

func (a *API) voteFlagChange(d string) func(http.ResponseWriter, *http.Request, *call) error {
	return a.decision(a.flagChangeTarget, auth.Approve, d, func(ctx context.Context, actor store.Actor, name, reason string, roles []string) (any, error) {
		return a.FlagChanges.Vote(ctx, actor, flagchange.VoteRequest{Change: name, Decision: d, Reason: reason, Roles: roles})
	})
}

func (a *API) withdrawFlagChange() func(http.ResponseWriter, *http.Request, *call) error {
	return a.decision(a.flagChangeTarget, auth.ManageFlags, "withdrawn", func(ctx context.Context, actor store.Actor, name, reason string, _ []string) (any, error) {
		return a.FlagChanges.Withdraw(ctx, actor, name, reason)
	})
}
