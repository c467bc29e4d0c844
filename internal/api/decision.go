package api

import (
	"context"
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/store"
)

// decision serves a POST that decides something about the object named in
// the path with a reason (body {reason}): approve, reject, withdraw,
// close. It authorizes action in the object's environment, which target
// reads, and runs do as the caller, whose audit entries carry verb and the
// reason; roles are the caller's roles in that environment.
func (a *API) decision(target func(ctx context.Context, name string) (string, error), action auth.Action, verb string,
	do func(ctx context.Context, actor store.Actor, name, reason string, roles []string) (any, error)) func(http.ResponseWriter, *http.Request, *call) error {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var req VoteRequest
		if err := readJSON(r, &req); err != nil {
			return err
		}
		name := r.PathValue("name")
		env, err := target(r.Context(), name)
		if err != nil {
			return err
		}
		if err := auth.Authorize(c.principal, action, env); err != nil {
			return err
		}
		actor := c.actor(r)
		actor.Reason = verb + ": " + req.Reason
		out, err := do(r.Context(), actor, name, req.Reason, rolesFor(c.principal)(env))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, out)
	}
}
