package api

import (
	"fmt"
	"io"
	"net/http"

	"github.com/airlock-dev/airlock/internal/access/seal"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/breakglass"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *API) registerBreakGlassRoutes() {
	a.handle("GET", "/api/v1/breakglass", "List break-glass credentials with their state, last drill and whether the drill is overdue (never a credential).", rule{action: auth.ReadResources}, a.listBreakGlass)
	a.handle("POST", "/api/v1/breakglass/{name}/credential", "Seal and store a break-glass credential (body: the credential, as text); the answer holds its fingerprint, never the value.", rule{action: auth.ManageBreakGlass, inHandler: true}, a.storeBreakGlass, bodyLimit(seal.MaxPlaintext+1))
	a.handle("POST", "/api/v1/breakglass/{name}/open", "Open a break-glass credential without approval (body: {reason}, at least 10 characters): alerts every sink, opens a sev1 incident and a review due in 24h; the credential is in this answer only.", rule{action: auth.OpenBreakGlass, inHandler: true}, a.openBreakGlass)
	a.handle("POST", "/api/v1/breakglass/{name}/drill", "Drill a break-glass: check the sealed credential opens (not shown) and the alert path works, open no incident, record the result.", rule{action: auth.OpenBreakGlass, inHandler: true}, a.drillBreakGlass)
}

// BreakGlassList is the body of GET /api/v1/breakglass: the objects, as
// any list (so `airlock get breakglass` reads it), and their summaries.
type BreakGlassList struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Items      []*resource.Object   `json:"items"`
	Summaries  []breakglass.Summary `json:"summaries"`
}

// OpenBreakGlassRequest is the body of an open.
type OpenBreakGlassRequest struct {
	Reason string `json:"reason"`
}

func (a *API) breakGlass() (*breakglass.Service, error) {
	if a.BreakGlass == nil {
		return nil, &unavailable{msg: "this server keeps no break-glass credentials (no seal key)"}
	}
	return a.BreakGlass, nil
}

// authorizeBreakGlass authorizes action on the environment of the
// break-glass named in the path.
func (a *API) authorizeBreakGlass(r *http.Request, c *call, action auth.Action) (*breakglass.Service, error) {
	bg, err := a.breakGlass()
	if err != nil {
		return nil, err
	}
	env, err := bg.Target(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return bg, auth.Authorize(c.principal, action, env)
}

func (a *API) listBreakGlass(w http.ResponseWriter, r *http.Request, _ *call) error {
	objs, err := a.Store.List(r.Context(), breakglass.Kind, nil)
	if err != nil {
		return err
	}
	sums, err := breakglass.List(r.Context(), a.Store, a.Now())
	if err != nil {
		return err
	}
	if objs == nil {
		objs = []*resource.Object{}
	}
	return writeJSON(w, http.StatusOK, BreakGlassList{APIVersion: resource.APIVersion, Kind: "List", Items: objs, Summaries: sums})
}

func (a *API) storeBreakGlass(w http.ResponseWriter, r *http.Request, c *call) error {
	bg, err := a.authorizeBreakGlass(r, c, auth.ManageBreakGlass)
	if err != nil {
		return err
	}
	cred, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	defer clear(cred)
	stored, err := bg.Store(r.Context(), c.actor(r), r.PathValue("name"), cred)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, stored)
}

func (a *API) openBreakGlass(w http.ResponseWriter, r *http.Request, c *call) error {
	var req OpenBreakGlassRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	bg, err := a.authorizeBreakGlass(r, c, auth.OpenBreakGlass)
	if err != nil {
		return err
	}
	opened, err := bg.Open(r.Context(), c.actor(r), r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	a.logger.WarnContext(r.Context(), "break-glass opened", "breakglass", opened.Name, "environment", opened.Environment,
		"opened_by", c.principal.Name, "incident", opened.Incident, "review", opened.Review, "fingerprint", opened.Fingerprint)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, opened)
}

func (a *API) drillBreakGlass(w http.ResponseWriter, r *http.Request, c *call) error {
	bg, err := a.authorizeBreakGlass(r, c, auth.OpenBreakGlass)
	if err != nil {
		return err
	}
	d, err := bg.Drill(r.Context(), c.actor(r), r.PathValue("name"))
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	return writeJSON(w, http.StatusOK, d)
}
