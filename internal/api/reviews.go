package api

import (
	"fmt"
	"net/http"

	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/promotion"
)

func (a *API) registerReviewRoutes() {
	a.handle("POST", "/api/v1/reviews/{name}/complete", "Sign off a post-emergency review (body: {outcome: accepted|follow-up|reverted, reason}); the caller's roles for its environment must fill a role of its chain still missing. The review completes when the whole chain has signed.", rule{action: auth.CompleteReview, inHandler: true}, a.completeReview)
}

// CompleteReviewRequest is the body of a review sign-off.
type CompleteReviewRequest struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

func (a *API) completeReview(w http.ResponseWriter, r *http.Request, c *call) error {
	var req CompleteReviewRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	env, err := a.Promotions.ReviewTarget(r.Context(), name)
	if err != nil {
		return err
	}
	if err := auth.Authorize(c.principal, auth.CompleteReview, env); err != nil {
		return err
	}
	actor := c.actor(r)
	actor.Reason = fmt.Sprintf("review %s: %s", req.Outcome, req.Reason)
	obj, err := a.Promotions.Complete(r.Context(), actor, promotion.Completion{
		Review: name, Outcome: promotion.Outcome(req.Outcome), Reason: req.Reason, Roles: rolesFor(c.principal)(env),
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, obj)
}
