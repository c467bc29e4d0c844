package api

import (
	"fmt"
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/cluster"
)

func (a *API) registerClusterRoutes() {
	a.handle("GET", "/api/v1/cluster", "The airlock replicas sharing this database that are alive, each with its address and whether it holds the leader lease (leader: true).", rule{action: auth.ReadResources}, a.clusterStatus)
}

// ClusterStatus is the body of GET /api/v1/cluster.
type ClusterStatus struct {
	Replicas []cluster.Replica `json:"replicas"`
}

func (a *API) clusterStatus(w http.ResponseWriter, r *http.Request, _ *call) error {
	if a.Cluster == nil {
		return &unavailable{msg: "this server keeps no replica records"}
	}
	rs, err := a.Cluster.Replicas(r.Context(), cluster.Alive)
	if err != nil {
		return fmt.Errorf("list replicas: %w", err)
	}
	if rs == nil {
		rs = []cluster.Replica{}
	}
	return writeJSON(w, http.StatusOK, ClusterStatus{Replicas: rs})
}
