package client

import (
	"context"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// IncidentRequest opens an incident. Severity is sev1 (worst) to sev4.
type IncidentRequest struct {
	Severity  string `json:"severity"`
	Summary   string `json:"summary"`
	Reference string `json:"reference,omitempty"` // an external ticket
}

// OpenIncident opens an incident and returns the Incident object; its
// generated name (inc-YYYYMMDD-NNN) is what emergency promotions cite.
func (c *Client) OpenIncident(ctx context.Context, r IncidentRequest) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/incidents", r)
}

// CloseIncident closes an open incident with its resolution. Closing a
// closed incident is a 409.
func (c *Client) CloseIncident(ctx context.Context, name, resolution string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/incidents/"+seg(name)+"/close", map[string]string{"resolution": resolution})
}

// ListIncidents returns the Incident objects, open and closed.
func (c *Client) ListIncidents(ctx context.Context) ([]*resource.Object, error) {
	l, err := c.List(ctx, "incidents", "")
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// IncidentSpec is what was reported.
type IncidentSpec struct {
	Severity  string `json:"severity"`
	Summary   string `json:"summary"`
	OpenedBy  string `json:"openedBy"`
	Reference string `json:"reference,omitempty"`
}

// IncidentStatus is where an incident stands: state open or closed.
type IncidentStatus struct {
	State      string     `json:"state"`
	OpenedAt   time.Time  `json:"openedAt"`
	ClosedAt   *time.Time `json:"closedAt,omitempty"`
	ClosedBy   string     `json:"closedBy,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
}

// DecodeIncident reads an Incident object's spec and status.
func DecodeIncident(o *resource.Object) (*IncidentSpec, *IncidentStatus, error) {
	return decodeObject[IncidentSpec, IncidentStatus](o)
}
