package api

import (
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/incident"
)

func (a *API) registerIncidentRoutes() {
	a.handle("POST", "/api/v1/incidents", "Open an incident (body: {severity, summary, reference}); the caller is recorded as its opener.", rule{action: auth.ManageIncidents}, a.openIncident)
	a.handle("POST", "/api/v1/incidents/{name}/close", "Close an open incident (body: {resolution}).", rule{action: auth.ManageIncidents}, a.closeIncident)
}

func (a *API) openIncident(w http.ResponseWriter, r *http.Request, c *call) error {
	var req incident.OpenRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	obj, err := a.Incidents.Open(r.Context(), c.actor(r), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, obj)
}

// CloseIncidentRequest is the body of a close request.
type CloseIncidentRequest struct {
	Resolution string `json:"resolution"`
}

func (a *API) closeIncident(w http.ResponseWriter, r *http.Request, c *call) error {
	var req CloseIncidentRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	obj, err := a.Incidents.Close(r.Context(), c.actor(r), r.PathValue("name"), req.Resolution)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}
