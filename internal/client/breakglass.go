package client

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// BreakGlassDrill is the result of one drill: each step, and whether all
// passed.
type BreakGlassDrill struct {
	At    time.Time `json:"at"`
	By    string    `json:"by"`
	OK    bool      `json:"ok"`
	Steps []string  `json:"steps"`
}

// BreakGlassSummary is one break-glass as the list shows it (never a
// credential). Credential is "stored", "opened", "none: ...", "rotation
// due: store a new credential" or "rotating through its broker".
type BreakGlassSummary struct {
	Name          string           `json:"name"`
	Environment   string           `json:"environment"`
	Description   string           `json:"description,omitempty"`
	ValidFor      string           `json:"validFor"`
	Broker        string           `json:"broker,omitempty"`
	Credential    string           `json:"credential"`
	Fingerprint   string           `json:"fingerprint,omitempty"`
	StoredAt      *time.Time       `json:"storedAt,omitempty"`
	OpenedAt      *time.Time       `json:"openedAt,omitempty"`
	OpenedBy      string           `json:"openedBy,omitempty"`
	ValidUntil    *time.Time       `json:"validUntil,omitempty"`
	Incident      string           `json:"incident,omitempty"`
	Review        string           `json:"review,omitempty"`
	RotationDue   bool             `json:"rotationDue"`
	RotationError string           `json:"rotationError,omitempty"`
	LastDrill     *BreakGlassDrill `json:"lastDrill,omitempty"`
	DrillOverdue  bool             `json:"drillOverdue"`
	DrillEvery    string           `json:"drillEvery"`
}

// BreakGlassList is the answer of GET /api/v1/breakglass: the objects and
// their summaries.
type BreakGlassList struct {
	APIVersion string              `json:"apiVersion"`
	Kind       string              `json:"kind"`
	Items      []*resource.Object  `json:"items"`
	Summaries  []BreakGlassSummary `json:"summaries"`
}

// ListBreakGlass returns every break-glass with its state, last drill and
// whether its drill is overdue.
func (c *Client) ListBreakGlass(ctx context.Context) (*BreakGlassList, error) {
	var l BreakGlassList
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/breakglass"}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// BreakGlassStored is the answer to a store: the fingerprint of what was
// sealed, never the value.
type BreakGlassStored struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	StoredAt    time.Time `json:"storedAt"`
}

// StoreBreakGlass seals credential (text) as the credential of break-glass
// name, replacing the one there.
func (c *Client) StoreBreakGlass(ctx context.Context, name string, credential []byte) (*BreakGlassStored, error) {
	var out BreakGlassStored
	r := request{method: http.MethodPost, path: "/api/v1/breakglass/" + seg(name) + "/credential", body: bytes.NewReader(credential), contentType: "text/plain; charset=utf-8"}
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BreakGlassOpened is the answer to an open: the credential, shown once.
type BreakGlassOpened struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	Credential  string    `json:"credential"`
	Fingerprint string    `json:"fingerprint"`
	ValidUntil  time.Time `json:"validUntil"`
	Incident    string    `json:"incident"`
	Review      string    `json:"review"`
	Notified    int       `json:"notified"`
}

// OpenBreakGlass opens break-glass name with reason (at least 10
// characters). A credential opened and not replaced since is a 409.
func (c *Client) OpenBreakGlass(ctx context.Context, name, reason string) (*BreakGlassOpened, error) {
	body, err := jsonBody(map[string]string{"reason": reason})
	if err != nil {
		return nil, err
	}
	var out BreakGlassOpened
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/breakglass/" + seg(name) + "/open", body: body, contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BreakGlassDrillResult is the answer to a drill.
type BreakGlassDrillResult struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	BreakGlassDrill
}

// DrillBreakGlass drills break-glass name. A failed drill is a result with
// OK false, not an error.
func (c *Client) DrillBreakGlass(ctx context.Context, name string) (*BreakGlassDrillResult, error) {
	var out BreakGlassDrillResult
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/breakglass/" + seg(name) + "/drill"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
