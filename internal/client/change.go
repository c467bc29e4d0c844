package client

import (
	"context"
	"net/http"

	"github.com/airlock-dev/airlock/internal/resource"
)

// ChangeRequest raises a change request for one application version into
// one environment. External, when set, names a ChangeSystem and the key of
// the ticket there.
type ChangeRequest struct {
	App          string          `json:"app"`
	Version      string          `json:"version"`
	Environment  string          `json:"environment"`
	Summary      string          `json:"summary"`
	Risk         string          `json:"risk"`
	RollbackPlan string          `json:"rollbackPlan"`
	External     *ExternalChange `json:"external,omitempty"`
}

// ExternalChange is a ticket in an external change system.
type ExternalChange struct {
	System string `json:"system"`
	Key    string `json:"key"`
}

// CreateChange raises a change request and returns the ChangeRequest
// object (named chg-YYYYMMDD-NNN).
func (c *Client) CreateChange(ctx context.Context, r ChangeRequest) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/changes", r)
}

// ApproveChange and RejectChange record the caller's vote on an internal
// change request.
func (c *Client) ApproveChange(ctx context.Context, name, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/changes/"+seg(name)+"/approve", map[string]string{"reason": reason})
}

// RejectChange records the caller's rejection of an internal change request.
func (c *Client) RejectChange(ctx context.Context, name, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/changes/"+seg(name)+"/reject", map[string]string{"reason": reason})
}

// ConfirmChange asks an external change request's system now.
func (c *Client) ConfirmChange(ctx context.Context, name string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/changes/"+seg(name)+"/confirm", map[string]string{})
}

// CloseChange withdraws a change request.
func (c *Client) CloseChange(ctx context.Context, name, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/changes/"+seg(name)+"/close", map[string]string{"reason": reason})
}

// ListChanges returns the ChangeRequest objects.
func (c *Client) ListChanges(ctx context.Context) ([]*resource.Object, error) {
	l, err := c.List(ctx, "changerequests", "")
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// postObject posts v as JSON to path and decodes the object answered.
func (c *Client) postObject(ctx context.Context, path string, v any) (*resource.Object, error) {
	body, err := jsonBody(v)
	if err != nil {
		return nil, err
	}
	var o resource.Object
	if err := c.call(ctx, request{method: http.MethodPost, path: path, body: body, contentType: "application/json"}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}
