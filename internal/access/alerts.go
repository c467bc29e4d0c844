package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/airlock-dev/airlock/internal/environment"
	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Standing-need alert: a person asking for production access on at least
// StandingDays of the last WorkingDays working days (Monday to Friday,
// UTC) probably needs a standing role, reviewed as such, rather than
// daily exceptions.
const (
	WorkingDays  = 20
	StandingDays = 11
)

// patternAlerts returns the alerts a new request raises besides the
// business-hours one: a requester outside the resource's team, and a
// standing need for production access.
func patternAlerts(ctx context.Context, r store.Reader, requester string, ask Ask, res ResourceSpec, now time.Time) ([]string, error) {
	var alerts []string
	if res.Team != "" {
		obj, err := r.Get(ctx, TeamKind, res.Team)
		switch {
		case errors.Is(err, store.ErrNotFound):
			alerts = append(alerts, fmt.Sprintf("%s belongs to team %s, which is not declared (apply a Team named %s)", ask.Resource, res.Team, res.Team))
		case err != nil:
			return nil, err
		default:
			var t TeamSpec
			if err := obj.DecodeSpec(&t); err != nil {
				return nil, err
			}
			if !slices.Contains(t.Members, requester) {
				alerts = append(alerts, fmt.Sprintf("%s is not in team %s, which owns %s", requester, res.Team, ask.Resource))
			}
		}
	}
	envObj, err := r.Get(ctx, "Environment", ask.Environment)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", ask.Environment, err)
	}
	var es environment.Spec
	if err := envObj.DecodeSpec(&es); err != nil {
		return nil, err
	}
	if !es.IsProduction() {
		return alerts, nil
	}
	prev, err := r.List(ctx, RequestKind, resource.Selector{{Key: "environment", Op: resource.Equals, Values: []string{ask.Environment}}})
	if err != nil {
		return nil, err
	}
	var times []time.Time
	for _, o := range prev {
		var spec RequestSpec
		if err := o.DecodeSpec(&spec); err != nil {
			return nil, err
		}
		if spec.Requester == requester {
			times = append(times, o.Metadata.CreatedAt)
		}
	}
	if n := StandingNeed(append(times, now), now); n >= StandingDays {
		alerts = append(alerts, fmt.Sprintf("%s asked for production access on %d of the last %d working days: review whether a standing role is needed", requester, n, WorkingDays))
	}
	return alerts, nil
}

// StandingNeed counts the working days among the last WorkingDays (up to
// and including now's day, UTC) on which one of times falls.
func StandingNeed(times []time.Time, now time.Time) int {
	days := map[string]bool{}
	day := now.UTC().Truncate(24 * time.Hour)
	var window []string
	for len(window) < WorkingDays {
		if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday {
			window = append(window, day.Format("2006-01-02"))
		}
		day = day.AddDate(0, 0, -1)
	}
	for _, t := range times {
		days[t.UTC().Format("2006-01-02")] = true
	}
	n := 0
	for _, d := range window {
		if days[d] {
			n++
		}
	}
	return n
}
