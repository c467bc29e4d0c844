package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/airlock-dev/airlock/internal/flag"
)

// The benchmark's flags: application benchApp in environment benchEnv
// (tier staging, so flag writes apply at once, without approvals).
const (
	benchApp     = "bench"
	benchEnv     = "bench-staging"
	segmentName  = "beta-testers"
	staffDomain  = "@shop.example"
	betaDomain   = "@beta.example"
	otherDomain  = "@example.com"
	staticFlags  = 50 // boolean, no rules: reason STATIC
	rolloutFlags = 30 // boolean: staff email → on, else 25% on by targeting key
	stringFlags  = 20 // string: segment beta-testers → green, else the default
)

// benchFlag is one flag of the mix, in airlock's terms.
type benchFlag struct {
	Key  string
	Spec flag.Spec
}

// airlockFlags returns the 100 flags of the benchmark.
func airlockFlags() []benchFlag {
	var out []benchFlag
	add := func(s flag.Spec) {
		s.App, s.Environment, s.Enabled = benchApp, benchEnv, true
		out = append(out, benchFlag{Key: s.Key, Spec: s})
	}
	onOff := func() map[string]any { return map[string]any{"on": true, "off": false} }
	for i := range staticFlags {
		def := "off"
		if i%2 == 0 {
			def = "on"
		}
		add(flag.Spec{Key: fmt.Sprintf("static-%02d", i), Type: flag.Boolean, Variants: onOff(), DefaultVariant: def,
			Description: "static boolean"})
	}
	for i := range rolloutFlags {
		add(flag.Spec{
			Key: fmt.Sprintf("rollout-%02d", i), Type: flag.Boolean, Variants: onOff(), DefaultVariant: "off",
			Description: "staff on, then 25% of users by targeting key",
			Targeting: []flag.Rule{{Name: "staff", Variant: "on",
				When: &flag.Condition{Attribute: "email", Op: "endsWith", Value: staffDomain}}},
			Fractional: []flag.Split{{Variant: "on", Weight: 25}, {Variant: "off", Weight: 75}},
		})
	}
	for i := range stringFlags {
		add(flag.Spec{
			Key: fmt.Sprintf("theme-%02d", i), Type: flag.String, DefaultVariant: "blue",
			Variants:    map[string]any{"blue": "blue", "green": "green", "red": "red"},
			Description: "string flag: the beta testers' segment gets green",
			Targeting:   []flag.Rule{{Name: "beta", Variant: "green", When: &flag.Condition{Segment: segmentName}}},
		})
	}
	return out
}

// segment is the segment the string flags refer to.
func segment() flag.SegmentSpec {
	return flag.SegmentSpec{App: benchApp, Description: "beta testers and staff", When: flag.Condition{Any: []flag.Condition{
		{Attribute: "email", Op: "endsWith", Value: betaDomain},
		{Attribute: "email", Op: "endsWith", Value: staffDomain},
	}}}
}

// airlockDocuments returns the Environment, the Segment and the 100 Flags
// as one multi-document YAML stream (each document is JSON, which YAML
// reads as it is).
func airlockDocuments() ([]byte, error) {
	type meta struct {
		Name string `json:"name"`
	}
	type doc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   meta   `json:"metadata"`
		Spec       any    `json:"spec"`
	}
	docs := []doc{
		{"airlock.dev/v1", "Environment", meta{benchEnv}, map[string]any{
			"tier":        "staging",
			"description": "OFREP benchmark (bench/flags)",
			"isolation":   map[string]any{"level": "labels", "network": "bench-net", "credentials": "bench-secrets"},
			"data":        "synthetic",
			"runtime":     "local",
		}},
		{"airlock.dev/v1", flag.SegmentKindName, meta{segmentName}, segment()},
	}
	for _, f := range airlockFlags() {
		docs = append(docs, doc{"airlock.dev/v1", flag.KindName, meta{flag.Name(f.Spec.App, f.Key, f.Spec.Environment)}, f.Spec})
	}
	var parts []string
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		parts = append(parts, string(b))
	}
	return []byte(strings.Join(parts, "\n---\n") + "\n"), nil
}

// flagdDocument returns the same flags in flagd's flag definition format.
// Semantics match airlock's: ends_with on email, a shared evaluator for
// the segment, and fractional without a bucketing expression, which
// flagd buckets on the targeting key and the flag key (as airlock buckets
// on KEY/TARGETING_KEY; the hash differs, so individual users land in
// different buckets, but the shares are the same).
func flagdDocument() ([]byte, error) {
	flags := map[string]any{}
	for _, f := range airlockFlags() {
		def := map[string]any{
			"state":          "ENABLED",
			"variants":       f.Spec.Variants,
			"defaultVariant": f.Spec.DefaultVariant,
		}
		switch {
		case strings.HasPrefix(f.Key, "rollout-"):
			var split []any
			for _, s := range f.Spec.Fractional {
				split = append(split, []any{s.Variant, s.Weight})
			}
			def["targeting"] = map[string]any{"if": []any{
				map[string]any{"ends_with": []any{map[string]any{"var": "email"}, staffDomain}},
				"on",
				map[string]any{"fractional": split},
			}}
		case strings.HasPrefix(f.Key, "theme-"):
			def["targeting"] = map[string]any{"if": []any{
				map[string]any{"$ref": segmentName},
				"green",
				nil,
			}}
		}
		flags[f.Key] = def
	}
	doc := map[string]any{
		"$schema": "https://flagd.dev/schema/v0/flags.json",
		"flags":   flags,
		"$evaluators": map[string]any{segmentName: map[string]any{"or": []any{
			map[string]any{"ends_with": []any{map[string]any{"var": "email"}, betaDomain}},
			map[string]any{"ends_with": []any{map[string]any{"var": "email"}, staffDomain}},
		}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// requestBodies returns n OFREP request bodies for users user-0 ... :
// one in ten has a staff email, one in ten a beta tester's, the rest
// another domain.
func requestBodies(n int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([][]byte, n)
	for i := range out {
		u := rng.IntN(1_000_000)
		domain := otherDomain
		switch rng.IntN(10) {
		case 0:
			domain = staffDomain
		case 1:
			domain = betaDomain
		}
		out[i] = fmt.Appendf(nil, `{"context":{"targetingKey":"user-%d","email":"user-%d%s"}}`, u, u, domain)
	}
	return out
}
