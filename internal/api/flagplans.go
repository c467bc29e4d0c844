package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag/plan"
	"github.com/airlock-dev/airlock/internal/rollout"
)

func (a *API) registerFlagPlanRoutes() {
	for _, cmd := range []struct{ name, summary string }{
		{plan.CmdAdvance, "Apply a flag release plan's next step now, whatever its schedule (body: {reason}, required)."},
		{plan.CmdPause, "Pause a flag release plan where it is; the flag keeps serving the current step (body: {reason}, required)."},
		{plan.CmdResume, "Resume a paused flag release plan; verdicts count again from now and the next timed step is a full interval away (body: {reason}, required)."},
		{plan.CmdCancel, "Cancel a flag release plan for good; the flag stays as the plan left it (body: {reason}, required)."},
	} {
		a.handle("POST", "/api/v1/flagplans/{name}/"+cmd.name, cmd.summary, rule{action: auth.ManageRollouts, inHandler: true}, a.flagPlanCommand(cmd.name))
	}
}

// FlagPlanCommandRequest is the body of a flag plan command.
type FlagPlanCommandRequest struct {
	Reason string `json:"reason"`
}

// flagPlanCommand runs one command on the plan the URL names, authorized
// against the environment of the plan's flag.
func (a *API) flagPlanCommand(cmd string) func(http.ResponseWriter, *http.Request, *call) error {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if a.FlagPlans == nil {
			return &unavailable{msg: "this server runs no flag release plans"}
		}
		var req FlagPlanCommandRequest
		if err := readJSON(r, &req); err != nil {
			return err
		}
		if strings.TrimSpace(req.Reason) == "" {
			return badRequestf("%s needs a reason: send {\"reason\": \"...\"} (airlock flags plan %s NAME --reason TEXT)", cmd, cmd)
		}
		name := r.PathValue("name")
		env, err := a.FlagPlans.Environment(r.Context(), name)
		if err != nil {
			return err
		}
		if err := auth.Authorize(c.principal, auth.ManageRollouts, env); err != nil {
			return err
		}
		obj, err := a.FlagPlans.Do(r.Context(), c.actor(r), name, cmd, req.Reason)
		if err != nil {
			return flagPlanError(err)
		}
		return writeJSON(w, http.StatusOK, obj)
	}
}

// flagPlanError turns the plan service's error types into ones problemFor
// already maps (400 and 422). Once errors.go maps *plan.InvalidError and
// *plan.PolicyError itself, this can go.
func flagPlanError(err error) error {
	var (
		inv *plan.InvalidError
		pol *plan.PolicyError
	)
	switch {
	case errors.As(err, &inv):
		return badRequestf("%s", inv.Msg)
	case errors.As(err, &pol):
		return &rollout.PolicyError{Msg: pol.Msg}
	}
	return err
}
