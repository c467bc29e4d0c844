package flagchange

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/airlock-dev/airlock/internal/flag"
)

// Summarize says, in one line, what a change does to a flag: "created
// (enabled, default off, split on 25 / off 75)", "deleted", or the fields
// that differ, e.g. "enabled: true → false; split: on 25 / off 75 → on 50
// / off 50". A flag holds no secrets, so the line goes into audit entries.
func Summarize(before, after *flag.Spec) string {
	switch {
	case before == nil && after == nil:
		return "no change"
	case before == nil:
		return "created (" + describe(*after) + ")"
	case after == nil:
		return "deleted (was " + describe(*before) + ")"
	}
	var parts []string
	diff := func(field, a, b string) {
		if a != b {
			parts = append(parts, fmt.Sprintf("%s: %s → %s", field, a, b))
		}
	}
	diff("enabled", strconv.FormatBool(before.Enabled), strconv.FormatBool(after.Enabled))
	diff("defaultVariant", before.DefaultVariant, after.DefaultVariant)
	diff("split", splits(before.Fractional), splits(after.Fractional))
	diff("rules", rules(before.Targeting), rules(after.Targeting))
	if !jsonEqual(before.Targeting, after.Targeting) && rules(before.Targeting) == rules(after.Targeting) {
		parts = append(parts, "rules: conditions or variants changed")
	}
	if !jsonEqual(before.Variants, after.Variants) {
		parts = append(parts, "variants: "+variantDiff(before.Variants, after.Variants))
	}
	diff("type", before.Type, after.Type)
	diff("lifecycle", before.Lifecycle, after.Lifecycle)
	diff("lifetime", before.Lifetime, after.Lifetime)
	if before.Description != after.Description {
		parts = append(parts, "description changed")
	}
	if len(parts) == 0 {
		return "no change to the spec"
	}
	return strings.Join(parts, "; ")
}

func describe(s flag.Spec) string {
	state := "disabled"
	if s.Enabled {
		state = "enabled"
	}
	out := state + ", default " + s.DefaultVariant
	if len(s.Fractional) > 0 {
		out += ", split " + splits(s.Fractional)
	}
	if len(s.Targeting) > 0 {
		out += ", rules " + rules(s.Targeting)
	}
	return out
}

func splits(ss []flag.Split) string {
	if len(ss) == 0 {
		return "none"
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.Variant + " " + strconv.FormatFloat(s.Weight, 'f', -1, 64)
	}
	return strings.Join(parts, " / ")
}

func rules(rs []flag.Rule) string {
	if len(rs) == 0 {
		return "none"
	}
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

func variantDiff(a, b map[string]any) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(b)) {
		old, ok := a[n]
		switch {
		case !ok:
			parts = append(parts, "+"+n)
		case !jsonEqual(old, b[n]):
			parts = append(parts, "~"+n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[n]; !ok {
			parts = append(parts, "-"+n)
		}
	}
	return strings.Join(parts, " ")
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
