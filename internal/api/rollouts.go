package api

import (
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/release"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/runtime/local"
	"github.com/airlock-dev/airlock/internal/store"
)

func (a *API) registerRolloutRoutes() {
	a.handle("PUT", "/api/v1/releases/{name}/artifact", "Upload a release's artifact (body: its bytes, at most 1 GiB) into the local runtime's content store; bytes whose sha256 differs from the release's digest are refused.", rule{action: auth.CreateRelease}, a.uploadArtifact, bodyLimit(local.DefaultMaxArtifactSize))
	a.handle("POST", "/api/v1/rollouts/{app}/{env}/{command}", "Steer the current rollout of an application in an environment: pause, resume, promote (skip the remaining steps), abort or rollback (body: {reason}; required for abort and rollback); rehearsal rolls the serving release back and forward in a non-production environment and records the result as rollback evidence on it (answers when done, with passed and the steps).", rule{action: auth.ManageRollouts, inHandler: true}, a.rolloutCommand)
	a.handle("GET", "/api/v1/status", "What runs where: for every application (query: app) and environment with a rollout, the serving version, the candidate, the weights and the instances' health.", rule{action: auth.ReadResources}, a.status)
}

func (a *API) uploadArtifact(w http.ResponseWriter, r *http.Request, c *call) error {
	if a.Runtime == nil {
		return &unavailable{msg: "this server runs no local runtime to store artifacts in"}
	}
	name := r.PathValue("name")
	obj, err := a.Store.Get(r.Context(), "Release", name)
	if err != nil {
		return fmt.Errorf("release %s: %w", name, err)
	}
	var spec release.Spec
	if err := obj.DecodeSpec(&spec); err != nil {
		return err
	}
	if _, err := a.Runtime.Artifacts().Put(r.Body, spec.Artifact.Digest); err != nil {
		var mm *local.DigestMismatchError
		if errors.As(err, &mm) {
			return badRequestf("the uploaded bytes are not release %s's artifact: %v", name, err)
		}
		return err
	}
	actor := c.actor(r)
	actor.Reason = "artifact stored in the local runtime's content store"
	if err := a.Store.Write(r.Context(), actor, func(tx store.Tx) error {
		return tx.Record(r.Context(), "store-artifact", "Release", name, spec.Artifact.Digest)
	}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"release": name, "digest": spec.Artifact.Digest, "stored": "true"})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// unavailable is a capability this server does not have (503).
type unavailable struct{ msg string }

func (e *unavailable) Error() string { return e.msg }

// RolloutCommandRequest is the body of a rollout command.
type RolloutCommandRequest struct {
	Reason string `json:"reason"`
}

func (a *API) rolloutCommand(w http.ResponseWriter, r *http.Request, c *call) error {
	var req RolloutCommandRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	app, env, cmd := r.PathValue("app"), r.PathValue("env"), rollout.Command(r.PathValue("command"))
	switch cmd {
	case rollout.Pause, rollout.Resume, rollout.Promote, rollout.Abort, rollout.Rollback, "rehearsal":
	default:
		return badRequestf("unknown rollout command %q; use pause, resume, promote, abort, rollback or rehearsal", cmd)
	}
	if err := auth.Authorize(c.principal, auth.ManageRollouts, env); err != nil {
		return err
	}
	if cmd == "rehearsal" {
		if a.Rehearser == nil {
			return &unavailable{msg: "this server runs no rollback rehearsals"}
		}
		actor := c.actor(r)
		actor.Reason = "rollback rehearsal: " + req.Reason
		reh, err := a.Rehearser.Rehearse(r.Context(), actor, app, env)
		if reh == nil {
			return err
		}
		// The rehearsal ran and is recorded either way: 200, with passed
		// and the error saying how it went.
		return writeJSON(w, http.StatusOK, map[string]any{"rehearsal": reh, "error": errString(err)})
	}
	actor := c.actor(r)
	actor.Reason = fmt.Sprintf("rollout %s: %s", cmd, req.Reason)
	obj, err := a.Rollouts.Do(r.Context(), actor, app, env, cmd, req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}

// StatusRow is what runs for one application in one environment.
type StatusRow struct {
	App         string         `json:"app"`
	Environment string         `json:"environment"`
	Rollout     string         `json:"rollout"`
	Phase       string         `json:"phase"`
	Serving     string         `json:"serving,omitempty"`   // the version that takes the traffic, or the stable one during a rollout
	Candidate   string         `json:"candidate,omitempty"` // during a rollout
	Weight      int            `json:"weight"`              // the candidate's share, in percent
	Address     string         `json:"address,omitempty"`   // the router's listen address
	Healthy     map[string]int `json:"healthy,omitempty"`   // healthy instances per version, as the router sees them
	Replicas    int            `json:"replicas"`
	Message     string         `json:"message,omitempty"`
}

func (a *API) status(w http.ResponseWriter, r *http.Request, c *call) error {
	app := r.URL.Query().Get("app")
	if app == "" && (a.Runtime == nil || !a.Runtime.Routers()) {
		// No live runtime fields to add: the encoded matrix as it is.
		if body, ok := a.statusBody(); ok {
			w.Header().Set("Content-Type", "application/json")
			_, err := w.Write(body)
			return err
		}
	}
	rows, ok := a.statusRows(app)
	if !ok { // no index: read the store
		sel := resource.Selector{{Key: rollout.CurrentLabel, Op: resource.Equals, Values: []string{"true"}}}
		if app != "" {
			sel = append(sel, resource.Requirement{Key: "app", Op: resource.Equals, Values: []string{app}})
		}
		objs, err := a.Store.List(r.Context(), rollout.Kind, sel)
		if err != nil {
			return err
		}
		rows = make([]StatusRow, 0, len(objs))
		for _, o := range objs {
			row, err := statusRowOf(o)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		sortRows(rows)
	}
	if a.Runtime != nil {
		for i := range rows {
			rows[i].Address = a.Runtime.Address(rows[i].App, rows[i].Environment)
			if rt := a.Runtime.Router(rows[i].App, rows[i].Environment); rt != nil {
				rows[i].Healthy = rt.HealthyInstances()
			}
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": rows})
}

// statusRowOf is a current rollout's row of the status matrix, without
// the runtime's live part (address, health).
func statusRowOf(o *resource.Object) (StatusRow, error) {
	spec, st, err := rollout.Decode(o)
	if err != nil {
		return StatusRow{}, err
	}
	row := StatusRow{App: spec.App, Environment: spec.Environment, Rollout: o.Metadata.Name, Phase: string(st.Phase),
		Weight: st.Weight, Replicas: spec.Replicas, Message: st.Message}
	switch {
	case st.Phase.Active():
		row.Candidate = spec.Candidate.Version
		if spec.Stable != nil {
			row.Serving = spec.Stable.Version
		}
	case st.Phase == rollout.Succeeded:
		row.Serving, row.Weight = spec.Candidate.Version, 100
	case spec.Stable != nil:
		row.Serving, row.Weight = spec.Stable.Version, 0
	}
	return row, nil
}

func sortRows(rows []StatusRow) {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].App != rows[j].App {
			return rows[i].App < rows[j].App
		}
		return rows[i].Environment < rows[j].Environment
	})
}
