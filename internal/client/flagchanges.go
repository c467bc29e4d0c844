package client

import (
	"context"
	"net/http"

	"github.com/airlock-dev/airlock/internal/resource"
)

// FlagSet changes a flag's kill switch, default variant or split.
type FlagSet struct {
	Enabled         *bool       `json:"enabled,omitempty"`
	DefaultVariant  string      `json:"defaultVariant,omitempty"`
	Fractional      []FlagSplit `json:"fractional,omitempty"`
	ClearFractional bool        `json:"clearFractional,omitempty"`
	Reason          string      `json:"reason"`
	Emergency       *struct {
		Incident string `json:"incident"`
	} `json:"emergency,omitempty"`
}

// FlagSplit is one variant's share of a fractional split, in percent.
type FlagSplit struct {
	Variant string  `json:"variant"`
	Weight  float64 `json:"weight"`
}

// FlagSetResult is what became of a flags set: applied at once, or a
// flag change waiting for approval.
type FlagSetResult struct {
	Flag     string `json:"flag"`
	Change   string `json:"change"`
	Phase    string `json:"phase"`
	Revision int64  `json:"revision,omitempty"`
	Summary  string `json:"summary"`
	Message  string `json:"message,omitempty"`
	Review   string `json:"review,omitempty"`
}

// SetFlag changes flag (APP.KEY.ENV) as asked.
func (c *Client) SetFlag(ctx context.Context, flag string, s FlagSet) (*FlagSetResult, error) {
	body, err := jsonBody(s)
	if err != nil {
		return nil, err
	}
	var out FlagSetResult
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/flags/" + seg(flag) + "/set", body: body, contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FlagChangeCommand approves, rejects or withdraws a flag change.
func (c *Client) FlagChangeCommand(ctx context.Context, name, command, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/flagchanges/"+seg(name)+"/"+command, map[string]string{"reason": reason})
}
