package client

import (
	"context"
	"net/http"

	"github.com/airlock-dev/airlock/internal/cluster"
)

// ClusterStatus returns the replicas that are alive, with the holder of
// the leader lease marked.
func (c *Client) ClusterStatus(ctx context.Context) ([]cluster.Replica, error) {
	var out struct {
		Replicas []cluster.Replica `json:"replicas"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/cluster"}, &out); err != nil {
		return nil, err
	}
	return out.Replicas, nil
}
