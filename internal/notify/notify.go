// Package notify tells people about what airlock did: a Sink is where
// messages go (a generic signed JSON webhook, a Slack incoming webhook, or
// Grafana's annotation API for deployment markers), a Notification is one
// message queued for one sink. Notifications are queued in the same
// transaction as the change that caused them, so an event is never lost
// across a restart, and a Deliverer sends them with retries.
package notify

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Kinds this package owns.
const (
	SinkKind         = "Sink"
	NotificationKind = "Notification"
)

// Sink types.
const (
	Webhook = "webhook"
	Slack   = "slack"
	// Grafana posts each event as an annotation through Grafana's HTTP
	// API (grafana.go).
	Grafana = "grafana"
)

// Events airlock emits. Later work adds its own.
const (
	ApprovalRequested  = "approval.requested"
	PromotionBlocked   = "promotion.blocked"
	PromotionEmergency = "promotion.emergency"
	ReviewDue          = "review.due"
	ReviewOverdue      = "review.overdue"
	Rollback           = "rollback" // a rollout failed or was rolled back: traffic went back to the previous version
	// AccessRequested asks the approvers of a just-in-time access request.
	AccessRequested = "access.requested"
	// AccessAlert is a suspicious access pattern (access outside business
	// hours without an incident, outside the requester's team, a standing
	// need for production access).
	AccessAlert = "access.alert"
	// AccessRevocationFailed is a credential that could not be revoked
	// yet; airlock keeps retrying.
	AccessRevocationFailed = "access.revocation-failed"
	// BreakGlassOpened is a break-glass credential opened; it goes to every sink.
	BreakGlassOpened = "breakglass.opened"
	// BreakGlassDrill is a break-glass drill exercising the notification path; it goes to every sink.
	BreakGlassDrill = "breakglass.drill"
)

// Deployment markers: what a rollout, a promotion and the analysis did,
// for timelines (Grafana annotations) rather than for people to act on.
// A sink receives them only when its events list names them, except a
// grafana sink without a list, which receives exactly Markers.
const (
	RolloutStarted     = "rollout.started"
	RolloutStep        = "rollout.step"     // the candidate's share of traffic moved
	RolloutFinished    = "rollout.finished" // data phase: Succeeded, Failed, RolledBack or Aborted
	PromotionSucceeded = "promotion.succeeded"
	VerdictRecorded    = "verdict.recorded"
)

// Events lists every event a sink may ask for.
var Events = []string{ApprovalRequested, PromotionBlocked, PromotionEmergency, ReviewDue, ReviewOverdue, Rollback,
	AccessRequested, AccessAlert, AccessRevocationFailed, BreakGlassOpened, BreakGlassDrill,
	RolloutStarted, RolloutStep, RolloutFinished, PromotionSucceeded, VerdictRecorded}

// Markers are the events a grafana sink without an events list receives:
// the deployment markers and rollback.
var Markers = []string{RolloutStarted, RolloutStep, RolloutFinished, PromotionSucceeded, VerdictRecorded, Rollback}

// IsMarker reports whether event is a deployment marker (rollback, which
// predates the markers, is not: every sink without a list receives it).
func IsMarker(event string) bool {
	return event != Rollback && slices.Contains(Markers, event)
}

// SinkSpec is where notifications go. The HMAC key is never stored in the
// object (objects and the audit log are readable): SecretEnv names the
// environment variable of the server that holds it.
type SinkSpec struct {
	Type string `json:"type"`
	URL  string `json:"url,omitempty"`
	// URLEnv names the server's environment variable that holds the URL,
	// for URLs that are themselves secrets (a Slack incoming webhook). Give
	// url or urlEnv, not both.
	URLEnv    string `json:"urlEnv,omitempty"`
	SecretEnv string `json:"secretEnv,omitempty"`
	// TokenEnv names the server's environment variable that holds a
	// grafana sink's service-account token (sent as a bearer token).
	TokenEnv string `json:"tokenEnv,omitempty"`
	// Events empty means every event, except that deployment markers go
	// only to sinks that name them, and a grafana sink without a list
	// receives exactly Markers.
	Events []string `json:"events,omitempty"`
}

// Matches reports whether the sink wants events of type event.
func (s SinkSpec) Matches(event string) bool {
	if len(s.Events) == 0 {
		if s.Type == Grafana {
			return slices.Contains(Markers, event)
		}
		return !IsMarker(event)
	}
	for _, e := range s.Events {
		if e == event {
			return true
		}
	}
	return false
}

// State is where a notification stands.
type State string

// Notification states. Pending is waiting for its next attempt; Delivered
// and Failed are final.
const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateFailed    State = "failed"
)

// NotificationSpec is one message for one sink.
type NotificationSpec struct {
	Event   string            `json:"event"`
	Subject string            `json:"subject"`
	Message string            `json:"message,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	Sink    string            `json:"sink"`
}

// Attempt is one delivery attempt: the HTTP status, or the error.
type Attempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// MaxLog is how many attempts a notification's log keeps (the latest).
const MaxLog = 20

// NotificationStatus is the delivery state and log.
type NotificationStatus struct {
	State         State     `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"nextAttemptAt"`
	LastError     string    `json:"lastError,omitempty"`
	Log           []Attempt `json:"log,omitempty"`
}

var (
	envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Register adds Sink (declarative) and Notification (written only by
// airlock) to a scheme.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name: SinkKind, Plural: "sinks", Aliases: []string{"sink"},
		NewSpec: func() any { return &SinkSpec{} },
		Validate: func(_ *resource.Object, spec any) error {
			v, ok := spec.(*SinkSpec)
			if !ok {
				return fmt.Errorf("sink: spec has type %T, want *notify.SinkSpec", spec)
			}
			return ValidateSink(*v)
		},
		Declarative: true,
	})
	s.Register(resource.Kind{
		Name: NotificationKind, Plural: "notifications", Aliases: []string{"notification", "ntf"},
		NewSpec: func() any { return &NotificationSpec{} },
	})
}

// checkURL accepts an absolute http or https URL without credentials.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q must be an absolute http or https URL, e.g. https://hooks.example.com/airlock (or name an environment variable holding it with urlEnv)", raw)
	}
	if u.User != nil {
		return fmt.Errorf("url must not carry credentials: objects are readable; use urlEnv for a secret URL and secretEnv for the signing key")
	}
	return nil
}

// ValidateSink checks a sink on its own. The error is a *resource.PathError
// naming the field at fault.
func ValidateSink(s SinkSpec) error {
	if s.Type != Webhook && s.Type != Slack && s.Type != Grafana {
		return resource.Errorf("spec.type", "type %q is not webhook, slack or grafana: webhook posts signed JSON, slack posts to a Slack incoming webhook, grafana posts annotations to a Grafana (url: its base URL)", s.Type)
	}
	switch {
	case s.URL != "" && s.URLEnv != "":
		return resource.Errorf("spec.urlEnv", "give url or urlEnv, not both")
	case s.URLEnv != "":
		if !envRE.MatchString(s.URLEnv) {
			return resource.Errorf("spec.urlEnv", "urlEnv %q must be an environment variable name such as AIRLOCK_SLACK_URL (the URL itself is then never stored in the object)", s.URLEnv)
		}
	default:
		if err := checkURL(s.URL); err != nil {
			return resource.Errorf("spec.url", "%v", err)
		}
	}
	switch {
	case s.Type == Grafana && s.SecretEnv != "":
		return resource.Errorf("spec.secretEnv", "a grafana sink authenticates with tokenEnv (a service-account token); secretEnv signs webhook bodies")
	case s.Type != Grafana && s.TokenEnv != "":
		return resource.Errorf("spec.tokenEnv", "tokenEnv is for grafana sinks; a %s sink is signed with secretEnv", s.Type)
	case s.TokenEnv != "" && !envRE.MatchString(s.TokenEnv):
		return resource.Errorf("spec.tokenEnv", "tokenEnv %q must be an environment variable name such as AIRLOCK_GRAFANA_TOKEN (the token itself is never stored in the object)", s.TokenEnv)
	}
	if s.SecretEnv != "" && !envRE.MatchString(s.SecretEnv) {
		return resource.Errorf("spec.secretEnv", "secretEnv %q must be an environment variable name such as AIRLOCK_HOOK_SECRET (the key itself is never stored in the object)", s.SecretEnv)
	}
	for i, e := range s.Events {
		if !slices.Contains(Events, e) {
			return resource.Errorf(fmt.Sprintf("spec.events[%d]", i), "unknown event %q; events: %s", e, strings.Join(Events, ", "))
		}
	}
	return nil
}
