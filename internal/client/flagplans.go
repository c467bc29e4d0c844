package client

import (
	"context"

	"github.com/airlock-dev/airlock/internal/resource"
)

// FlagPlan returns the FlagPlan object name (its spec and status).
func (c *Client) FlagPlan(ctx context.Context, name string) (*resource.Object, error) {
	return c.Get(ctx, "flagplans", name)
}

// FlagPlanCommand advances, pauses, resumes or cancels (command) the flag
// release plan name, with reason recorded in the audit log, and returns the
// plan as it stands after the command. A refused command (a paused plan
// advanced, a completed one cancelled, a closed deployment window) is an
// *APIError with status 422.
func (c *Client) FlagPlanCommand(ctx context.Context, name, command, reason string) (*resource.Object, error) {
	return c.postObject(ctx, "/api/v1/flagplans/"+seg(name)+"/"+seg(command), map[string]string{"reason": reason})
}
