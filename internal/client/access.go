package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/airlock-dev/airlock/internal/resource"
)

// AccessAsk asks for just-in-time access.
type AccessAsk struct {
	Environment string `json:"environment"`
	Resource    string `json:"resource"`
	Role        string `json:"role"`
	For         string `json:"for"`
	Reason      string `json:"reason"`
	Incident    string `json:"incident,omitempty"`
	PublicKey   string `json:"publicKey,omitempty"`
}

// RequestAccess creates an AccessRequest; its metadata.name is the ID.
func (c *Client) RequestAccess(ctx context.Context, ask AccessAsk) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/access", ask)
}

// AccessCommand approves, denies or revokes an access request.
func (c *Client) AccessCommand(ctx context.Context, name, command, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/access/"+seg(name)+"/"+command, map[string]string{"reason": reason})
}

// AccessCredentials collects the credential of one's own approved request,
// once.
func (c *Client) AccessCredentials(ctx context.Context, name string) (map[string]string, error) {
	out := map[string]string{}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/access/" + seg(name) + "/credentials", body: strings.NewReader("{}"), contentType: "application/json"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AccessReport is who held access to env in the period since, next to
// its deployments, as JSON.
func (c *Client) AccessReport(ctx context.Context, env, since string) (map[string]any, error) {
	q := url.Values{"environment": {env}}
	if since != "" {
		q.Set("since", since)
	}
	out := map[string]any{}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/access-report", query: q}, &out); err != nil {
		return nil, err
	}
	return out, nil
}
