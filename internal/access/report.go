package access

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-dev/airlock/internal/breakglass"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Held is one access in a report: who held what, when, why, and who
// approved it.
type Held struct {
	Request   string     `json:"request"`
	Requester string     `json:"requester"`
	Resource  string     `json:"resource"`
	Role      string     `json:"role"`
	Reason    string     `json:"reason"`
	Incident  string     `json:"incident,omitempty"`
	Approvers []string   `json:"approvers,omitempty"`
	State     State      `json:"state"`
	Requested time.Time  `json:"requested"`
	From      *time.Time `json:"from,omitempty"`  // when the credential was issued
	Until     *time.Time `json:"until,omitempty"` // when it was revoked, or its window's end
	EndedBy   string     `json:"endedBy,omitempty"`
	Alerts    []string   `json:"alerts,omitempty"`
}

// Deployment is a promotion or rollout into the environment in the period.
type Deployment struct {
	Kind    string    `json:"kind"` // Promotion or Rollout
	Name    string    `json:"name"`
	App     string    `json:"app"`
	Version string    `json:"version,omitempty"`
	By      string    `json:"by,omitempty"`
	Phase   string    `json:"phase,omitempty"`
	At      time.Time `json:"at"`
}

// Event is one line of the side-by-side timeline.
type Event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"` // access-requested, access-granted, access-ended, promotion, rollout
	Line string    `json:"line"`
}

// Report is who had access to an environment in a period, next to what
// was deployed there.
type Report struct {
	Environment string       `json:"environment"`
	Since       time.Time    `json:"since"`
	Until       time.Time    `json:"until"`
	Access      []Held       `json:"access"`
	Deployments []Deployment `json:"deployments"`
	// BreakGlass lists the break-glass credentials opened in the period.
	BreakGlass []breakglass.Use `json:"breakGlass"`
	Timeline   []Event          `json:"timeline"`
}

// BuildReport reads the access requests, promotions and rollouts of env
// overlapping [since, now].
func BuildReport(ctx context.Context, r store.Reader, env string, since, now time.Time) (*Report, error) {
	rep := &Report{Environment: env, Since: since, Until: now, Access: []Held{}, Deployments: []Deployment{}, BreakGlass: []breakglass.Use{}, Timeline: []Event{}}
	reqs, err := r.List(ctx, RequestKind, resource.Selector{{Key: "environment", Op: resource.Equals, Values: []string{env}}})
	if err != nil {
		return nil, err
	}
	for _, o := range reqs {
		var spec RequestSpec
		var st Status
		if err := o.DecodeSpec(&spec); err != nil {
			return nil, err
		}
		if err := o.DecodeStatus(&st); err != nil {
			return nil, err
		}
		h := Held{Request: o.Metadata.Name, Requester: spec.Requester, Resource: spec.Resource, Role: spec.Role, Reason: spec.Reason,
			Incident: spec.Incident, State: st.State, Requested: o.Metadata.CreatedAt, From: st.GrantedAt, EndedBy: st.EndedBy, Alerts: st.Alerts}
		for _, v := range st.Votes {
			if v.Decision == Approve {
				h.Approvers = append(h.Approvers, v.Approver)
			}
		}
		switch {
		case st.RevokedAt != nil:
			h.Until = st.RevokedAt
		case st.EndedAt != nil:
			h.Until = st.EndedAt
		case st.GrantedAt != nil:
			h.Until = st.NotAfter
		}
		end := now
		if h.Until != nil && h.Until.Before(now) {
			end = *h.Until
		}
		if end.Before(since) || h.Requested.After(now) {
			continue
		}
		rep.Access = append(rep.Access, h)
		what := spec.Requester + " " + spec.Role + " on " + spec.Resource
		rep.Timeline = append(rep.Timeline, Event{At: h.Requested, What: "access-requested", Line: what + " requested: " + spec.Reason})
		if h.From != nil {
			rep.Timeline = append(rep.Timeline, Event{At: *h.From, What: "access-granted", Line: what + " granted, approved by " + strings.Join(h.Approvers, ", ")})
		}
		if h.Until != nil && !h.Until.After(now) && (h.From != nil || st.State.Final()) {
			rep.Timeline = append(rep.Timeline, Event{At: *h.Until, What: "access-ended", Line: what + " " + string(st.State) + " (" + st.EndReason + ")"})
		}
	}
	if err := deployments(ctx, r, env, since, now, rep); err != nil {
		return nil, err
	}
	uses, err := breakglass.Uses(ctx, r, env, since)
	if err != nil {
		return nil, err
	}
	rep.BreakGlass = uses
	for _, u := range uses {
		if u.OpenedAt.After(now) {
			continue
		}
		rep.Timeline = append(rep.Timeline, Event{At: u.OpenedAt, What: "breakglass-opened",
			Line: fmt.Sprintf("%s opened break-glass %s (incident %s, review %s %s): %s", u.OpenedBy, u.BreakGlass, u.Incident, u.Review, u.ReviewPhase, u.Reason)})
	}
	sort.SliceStable(rep.Timeline, func(i, j int) bool { return rep.Timeline[i].At.Before(rep.Timeline[j].At) })
	sort.SliceStable(rep.Deployments, func(i, j int) bool { return rep.Deployments[i].At.Before(rep.Deployments[j].At) })
	return rep, nil
}

func deployments(ctx context.Context, r store.Reader, env string, since, now time.Time, rep *Report) error {
	for _, kind := range []string{"Promotion", "Rollout"} {
		objs, err := r.List(ctx, kind, nil)
		if err != nil {
			return err
		}
		for _, o := range objs {
			var v struct {
				App         string `json:"app"`
				Version     string `json:"version"`
				To          string `json:"to"`
				Environment string `json:"environment"`
				RequestedBy string `json:"requestedBy"`
				Candidate   struct {
					Version string `json:"version"`
				} `json:"candidate"`
			}
			if err := json.Unmarshal(o.Spec, &v); err != nil {
				return err
			}
			var st struct {
				Phase string `json:"phase"`
			}
			_ = json.Unmarshal(o.Status, &st)
			target, version := v.To, v.Version
			if kind == "Rollout" {
				target, version = v.Environment, v.Candidate.Version
			}
			at := o.Metadata.CreatedAt
			if target != env || at.Before(since) || at.After(now) {
				continue
			}
			d := Deployment{Kind: kind, Name: o.Metadata.Name, App: v.App, Version: version, By: v.RequestedBy, Phase: st.Phase, At: at}
			rep.Deployments = append(rep.Deployments, d)
			line := kind + " " + o.Metadata.Name + ": " + v.App + " " + version
			if d.By != "" {
				line += " by " + d.By
			}
			if d.Phase != "" {
				line += " (" + d.Phase + ")"
			}
			rep.Timeline = append(rep.Timeline, Event{At: at, What: strings.ToLower(kind), Line: line})
		}
	}
	return nil
}

// ParseSince reads a report period: a Go duration or a number of days
// ("30d"), from 1m to 3660d.
func ParseSince(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days time.Duration
		days, err = time.ParseDuration(n + "h")
		d = days * 24
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < time.Minute || d > 3660*24*time.Hour {
		return 0, &InvalidError{Msg: "since " + strconv.Quote(s) + " must be a duration such as 30d, 72h or 90m"}
	}
	return d, nil
}
