package window_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/internal/gate"
	"github.com/airlock-dev/airlock/internal/window"
)

func TestWindowGate(t *testing.T) {
	t.Parallel()
	gates, err := gate.Compile([]gate.Spec{{Type: window.GateType}})
	if err != nil {
		t.Fatal(err)
	}
	if name := gates[0].Spec().Name; name != "window" {
		t.Fatalf("default name %q", name)
	}
	ws := []window.Window{business, freeze}
	tests := []struct {
		name      string
		extra     map[string]any
		to, at    string
		emergency bool
		status    gate.Status
		reason    string
	}{
		{name: "inside business hours", extra: map[string]any{"window": ws}, to: "prod", at: "2026-11-25T10:00:00+01:00", status: gate.StatusPass, reason: "open inside allow window business-hours"},
		{name: "in the freeze", extra: map[string]any{"window": ws}, to: "prod", at: "2026-12-23T10:00:00+01:00", status: gate.StatusFail,
			reason: "closed by deny window freeze-dec (Christmas freeze) until 2026-12-28T09:00:00+01:00"},
		{name: "in the freeze, staging", extra: map[string]any{"window": ws}, to: "staging", at: "2026-12-23T10:00:00+01:00", status: gate.StatusFail,
			reason: "closed by deny window freeze-dec (Christmas freeze) until 2026-12-27T00:00:00+01:00"},
		{name: "emergency in the freeze is waived", extra: map[string]any{"window": ws}, to: "prod", at: "2026-12-23T10:00:00+01:00", emergency: true, status: gate.StatusWaived, reason: "freeze-dec"},
		{name: "after hours", extra: map[string]any{"window": ws}, to: "prod", at: "2026-11-27T18:00:00+01:00", status: gate.StatusFail, reason: "outside every allow window (business-hours) until 2026-11-30T09:00:00+01:00"},
		{name: "the opening reads in the zone of a window that applies", extra: map[string]any{"window": []window.Window{
			with(freeze, func(s *window.Spec) { s.TimeZone = "America/New_York"; s.Environments = []string{"dev"} }), business}},
			to: "prod", at: "2026-11-27T18:00:00+01:00", status: gate.StatusFail, reason: "until 2026-11-30T09:00:00+01:00"},
		{name: "no windows", to: "prod", at: "2026-12-23T10:00:00+01:00", status: gate.StatusPass, reason: "no window applies"},
		{name: "windows of the wrong type", extra: map[string]any{"window": "x"}, to: "prod", at: "2026-12-23T10:00:00+01:00", status: gate.StatusFail, reason: "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := gate.Evaluate(gates, &gate.Input{App: "shop", To: tt.to, Now: at(tt.at), Emergency: tt.emergency, Extra: tt.extra})[0]
			if r.Status != tt.status || !strings.Contains(strings.Join(r.Reasons, "; "), tt.reason) || r.Security {
				t.Fatalf("result %+v; want %s with %q", r, tt.status, tt.reason)
			}
			if r.Status == gate.StatusFail && r.Fix == "" {
				t.Fatal("a failing window gate says nothing of what would fix it")
			}
		})
	}
}

func TestWindowGateSpec(t *testing.T) {
	t.Parallel()
	_, err := gate.Compile([]gate.Spec{{Type: "tests"}, {Type: window.GateType, MinPercent: 80}})
	var se *gate.SpecError
	if !errors.As(err, &se) || se.Index != 1 || se.Field != "minPercent" {
		t.Fatalf("a coverage field on a window gate: %v", err)
	}
	if _, err := gate.Compile([]gate.Spec{{Type: window.GateType, Name: "Bad Name"}}); !errors.As(err, &se) || se.Field != "name" {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := gate.Compile([]gate.Spec{{Type: window.GateType, Name: "business-hours", Message: "ask #release"}}); err != nil {
		t.Fatal(err)
	}
}
