package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/airlock-dev/airlock/internal/access"
	"github.com/airlock-dev/airlock/internal/auth"
	"github.com/airlock-dev/airlock/internal/catalog"
	"github.com/airlock-dev/airlock/internal/change"
	"github.com/airlock-dev/airlock/internal/incident"
	"github.com/airlock-dev/airlock/internal/ingest"
	"github.com/airlock-dev/airlock/internal/promotion"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/rollout"
	"github.com/airlock-dev/airlock/internal/store"
	"github.com/airlock-dev/airlock/internal/verdict"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors,omitempty"`
}

// badRequest is input the transport itself rejects (a missing field, a
// query parameter that does not parse).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badRequestf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// tooLarge is a body over the limit.
type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("request body is larger than %d bytes; split the input", e.limit)
}

// problemFor is the one place that turns errors into HTTP statuses.
func problemFor(err error) Problem {
	var (
		decodeErrs resource.DecodeErrors
		fieldErr   *resource.FieldError
		unknown    *resource.UnknownKindError
		forbidden  *auth.ForbiddenError
		invalid    *catalog.InvalidError
		tokInvalid *auth.InvalidError
		policy     *catalog.PolicyError
		ingInvalid *ingest.InvalidError
		mismatch   *ingest.MismatchError
		proInvalid *promotion.InvalidError
		proPolicy  *promotion.PolicyError
		incInvalid *incident.InvalidError
		chgInvalid *change.InvalidError
		chgPolicy  *change.PolicyError
		chgConfirm *change.ConfirmError
		roInvalid  *rollout.InvalidError
		roPolicy   *rollout.PolicyError
		accInvalid *access.InvalidError
		accPolicy  *access.PolicyError
		vrdInvalid *verdict.InvalidError
		vrdPolicy  *verdict.PolicyError
		unavail    *unavailable
		keyScope   *keyScopeError
		bad        *badRequest
		large      *tooLarge
		maxBytes   *http.MaxBytesError
	)
	p := Problem{Detail: err.Error()}
	switch {
	case errors.As(err, &decodeErrs):
		p.Status, p.Title = http.StatusBadRequest, "Invalid input"
		p.Detail = fmt.Sprintf("%d problem(s) in the input; nothing was changed", len(decodeErrs))
		for _, e := range decodeErrs {
			p.Errors = append(p.Errors, e.Error())
		}
	case errors.As(err, &fieldErr), errors.As(err, &invalid), errors.As(err, &tokInvalid), errors.As(err, &bad), errors.As(err, &unknown),
		errors.As(err, &ingInvalid), errors.As(err, &proInvalid), errors.As(err, &incInvalid), errors.As(err, &chgInvalid), errors.As(err, &roInvalid),
		errors.As(err, &accInvalid), errors.As(err, &vrdInvalid):
		p.Status, p.Title = http.StatusBadRequest, "Invalid input"
	case errors.As(err, &large):
		p.Status, p.Title = http.StatusRequestEntityTooLarge, "Request too large"
	case errors.As(err, &maxBytes):
		p.Status, p.Title = http.StatusRequestEntityTooLarge, "Request too large"
		p.Detail = (&tooLarge{limit: maxBytes.Limit}).Error()
	case errors.Is(err, auth.ErrUnauthenticated):
		p.Status, p.Title = http.StatusUnauthorized, "Unauthenticated"
		p.Detail += "; send Authorization: Bearer <token> (airlock: --token or AIRLOCK_TOKEN)"
	case errors.As(err, &forbidden), errors.As(err, &keyScope):
		p.Status, p.Title = http.StatusForbidden, "Forbidden"
	case errors.As(err, &policy), errors.As(err, &mismatch), errors.As(err, &proPolicy), errors.As(err, &chgPolicy), errors.As(err, &roPolicy),
		errors.As(err, &accPolicy), errors.As(err, &vrdPolicy):
		p.Status, p.Title = http.StatusUnprocessableEntity, "Blocked by policy"
	case errors.As(err, &unavail):
		p.Status, p.Title = http.StatusServiceUnavailable, "Unavailable"
	case errors.As(err, &chgConfirm):
		p.Status, p.Title = http.StatusBadGateway, "Change system failed"
	case errors.Is(err, store.ErrNotFound):
		p.Status, p.Title = http.StatusNotFound, "Not found"
	case errors.Is(err, store.ErrConflict):
		p.Status, p.Title = http.StatusConflict, "Conflict"
	default:
		p.Status, p.Title = http.StatusInternalServerError, "Internal error"
		p.Detail = "internal error; the server log has details"
	}
	p.Type = "https://airlock.dev/problems/" + strings.ToLower(strings.ReplaceAll(p.Title, " ", "-"))
	return p
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Status >= 500 {
		a.logger.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
