package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/flag"
)

func (a *API) registerFlagStaleRoutes() {
	a.handle("GET", "/api/v1/flags/stale", "Stale flags: serving one variant to everyone past their lifetime, or not evaluated for 30 days, each with a suggested removal (filters: environment, app).", rule{action: auth.ReadResources}, a.staleFlags)
}

// StaleFlags is the body of GET /api/v1/flags/stale: the findings at Now.
type StaleFlags struct {
	Items []flag.StaleFinding `json:"items"`
	Now   time.Time           `json:"now"`
}

func (a *API) staleFlags(w http.ResponseWriter, r *http.Request, _ *call) error {
	q := r.URL.Query()
	env, app := q.Get("environment"), q.Get("app")
	objs, err := a.Store.List(r.Context(), flag.KindName, nil)
	if err != nil {
		return err
	}
	in := make([]flag.StaleInput, 0, len(objs))
	for _, o := range objs {
		f := flag.StaleInput{Name: o.Metadata.Name, CreatedAt: o.Metadata.CreatedAt, UpdatedAt: o.Metadata.UpdatedAt}
		if err := o.DecodeSpec(&f.Spec); err != nil {
			return fmt.Errorf("decode spec of %s: %w", o.Ref(), err)
		}
		if (env != "" && f.Spec.Environment != env) || (app != "" && f.Spec.App != app) {
			continue
		}
		if err := o.DecodeStatus(&f.Status); err != nil {
			return fmt.Errorf("decode status of %s: %w", o.Ref(), err)
		}
		in = append(in, f)
	}
	now := a.Now().UTC()
	items := flag.FindStale(in, now)
	if items == nil {
		items = []flag.StaleFinding{}
	}
	return writeJSON(w, http.StatusOK, StaleFlags{Items: items, Now: now})
}
