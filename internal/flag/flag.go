// Package flag defines the Flag and Segment kinds and the pure evaluation
// engine behind airlock's feature flags.
//
// A Flag object holds one flag of one application in one environment, named
// APP.KEY.ENV (e.g. shop.new-checkout.prod). Its spec declares typed
// variants, a default variant, an enabled switch (the kill switch), ordered
// targeting rules over evaluation-context attributes, reusable segments, and
// fractional splits bucketed consistently on the targeting key.
//
// Validate checks a spec at apply time and reports the field at fault as a
// *resource.PathError. Compile turns a valid spec (and the segments it
// names) into an Evaluator that evaluates an OpenFeature evaluation context
// without I/O. DecodeRequest reads the body of an OFREP evaluation request.
// Serving over OFREP, evaluation keys, the CLI and change control live
// elsewhere.
package flag

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Kinds this package owns.
const (
	KindName        = "Flag"
	SegmentKindName = "Segment"
)

// Flag value types.
const (
	Boolean = "boolean"
	String  = "string"
	Number  = "number"
	Object  = "object"
)

// Lifecycles, which set the default lifetime used by stale-flag detection.
const (
	Release     = "release"
	Operational = "operational"
)

// Default lifetimes: how long a flag may serve one variant to everyone
// before it is reported stale.
const (
	DefaultReleaseLifetime     = 40 * 24 * time.Hour
	DefaultOperationalLifetime = 7 * 24 * time.Hour
)

// Size limits, checked by Validate.
const (
	MaxKeyLength       = 63
	MaxVariants        = 64
	MaxVariantBytes    = 16 << 10 // a variant's value as JSON
	MaxRules           = 100
	MaxConditions      = 500 // per flag or segment, counted over every rule
	MaxConditionDepth  = 8
	MaxValues          = 1000 // values of one in/notIn
	MaxStringValue     = 1024 // a condition's string value
	MaxPatternLength   = 256  // a matches pattern
	MaxSplits          = 64   // entries of one fractional split
	MaxAttributeLength = 128  // an attribute name
)

// Spec is what a user declares about one flag.
type Spec struct {
	// App and Environment name the application and environment the flag
	// belongs to; Key is the flag key clients evaluate, e.g. new-checkout.
	App         string `json:"app"`
	Environment string `json:"environment"`
	Key         string `json:"key"`
	// Description says what the flag is for.
	Description string `json:"description,omitempty"`
	// Type is boolean, string, number or object; every variant's value has it.
	Type string `json:"type"`
	// Variants maps a variant name to its value.
	Variants map[string]any `json:"variants"`
	// DefaultVariant is served when the flag is disabled and when no rule
	// and no fractional split applies.
	DefaultVariant string `json:"defaultVariant"`
	// Enabled false is the kill switch: the default variant for everyone,
	// reason DISABLED.
	Enabled bool `json:"enabled"`
	// Targeting rules are tried in order; the first whose condition holds
	// decides.
	Targeting []Rule `json:"targeting,omitempty"`
	// Fractional is the split applied when no rule matched. Empty means the
	// default variant.
	Fractional []Split `json:"fractional,omitempty"`
	// Lifecycle is release (the default) or operational.
	Lifecycle string `json:"lifecycle,omitempty"`
	// Lifetime is how long the flag may serve one variant to everyone
	// before it is stale, a Go duration such as 960h; default 40 days for
	// release flags and 7 for operational ones.
	Lifetime string `json:"lifetime,omitempty"`
}

// Rule is one targeting rule: when its condition holds, it serves Variant
// or, if Fractional is set, a split by targeting key.
type Rule struct {
	Name string `json:"name"`
	// When is the condition; absent means always.
	When       *Condition `json:"when,omitempty"`
	Variant    string     `json:"variant,omitempty"`
	Fractional []Split    `json:"fractional,omitempty"`
}

// Split gives a variant a share of the targeting keys. Weights are
// percentages with up to three decimals and sum to 100.
type Split struct {
	Variant string  `json:"variant"`
	Weight  float64 `json:"weight"`
}

// Condition is a test of one context attribute (Attribute, Op and Value or
// Values), a combination (All, Any) or a reference to a Segment. Exactly
// one of the four forms is set.
type Condition struct {
	Attribute string `json:"attribute,omitempty"`
	Op        string `json:"op,omitempty"`
	Value     any    `json:"value,omitempty"`
	Values    []any  `json:"values,omitempty"`

	All     []Condition `json:"all,omitempty"`
	Any     []Condition `json:"any,omitempty"`
	Segment string      `json:"segment,omitempty"`
}

// SegmentSpec is a named, reusable condition, e.g. internal users.
type SegmentSpec struct {
	// App limits the segment to one application's flags; empty means any.
	App         string    `json:"app,omitempty"`
	Description string    `json:"description,omitempty"`
	When        Condition `json:"when"`
}

// Status is what the system records about a flag.
type Status struct {
	// UniformSince is when the flag began serving one variant to everyone
	// (nil while its rules or splits can serve more than one);
	// UniformVariant is that variant. Stale-flag detection reads them.
	UniformSince   *time.Time `json:"uniformSince,omitempty"`
	UniformVariant string     `json:"uniformVariant,omitempty"`
	// LastEvaluated is the UTC day of the latest OFREP evaluation, written
	// at most once a day per flag.
	LastEvaluated *time.Time `json:"lastEvaluated,omitempty"`
	// Plan names the progressive release plan driving the flag, if any.
	Plan string `json:"plan,omitempty"`
	// Change names the FlagChange that last changed the flag.
	Change string `json:"change,omitempty"`
}

// Uniform reports whether s serves one variant to everyone, and which: a
// disabled flag serves its default variant; otherwise every variant a
// rule or a split (with a weight above zero) may serve counts, whether or
// not a rule's condition can ever hold, up to the first rule without a
// condition.
func Uniform(s Spec) (string, bool) {
	if !s.Enabled {
		return s.DefaultVariant, true
	}
	served := map[string]bool{}
	add := func(variant string, splits []Split) {
		if len(splits) == 0 {
			served[variant] = true
			return
		}
		for _, sp := range splits {
			if sp.Weight > 0 {
				served[sp.Variant] = true
			}
		}
	}
	always := false
	for _, r := range s.Targeting {
		add(r.Variant, r.Fractional)
		if r.When == nil {
			always = true
			break
		}
	}
	if !always {
		add(s.DefaultVariant, s.Fractional)
	}
	if len(served) != 1 {
		return "", false
	}
	for v := range served {
		return v, true
	}
	return "", false
}

// Name returns the object name of a flag: APP.KEY.ENV.
func Name(app, key, env string) string { return app + "." + key + "." + env }

// LifetimeOf returns the flag's lifetime for stale detection. It assumes
// the spec is valid.
func (s Spec) LifetimeOf() time.Duration {
	if d, err := time.ParseDuration(s.Lifetime); err == nil && s.Lifetime != "" {
		return d
	}
	if s.Lifecycle == Operational {
		return DefaultOperationalLifetime
	}
	return DefaultReleaseLifetime
}

// Register adds the Flag and Segment kinds to s.
func Register(s *resource.Scheme) {
	s.Register(resource.Kind{
		Name:    KindName,
		Plural:  "flags",
		Aliases: []string{"flag"},
		NewSpec: func() any { return &Spec{} },
		Validate: func(obj *resource.Object, spec any) error {
			f, ok := spec.(*Spec)
			if !ok {
				return fmt.Errorf("flag: spec has type %T, want *flag.Spec", spec)
			}
			if err := Validate(*f); err != nil {
				return err
			}
			if obj != nil && obj.Metadata.Name != Name(f.App, f.Key, f.Environment) {
				return resource.Errorf("metadata.name", "flag name %q must be APP.KEY.ENV, here %q, so that one application has one flag per key and environment",
					obj.Metadata.Name, Name(f.App, f.Key, f.Environment))
			}
			return nil
		},
		Declarative: true,
	})
	s.Register(resource.Kind{
		Name:    SegmentKindName,
		Plural:  "segments",
		Aliases: []string{"segment", "seg"},
		NewSpec: func() any { return &SegmentSpec{} },
		Validate: func(_ *resource.Object, spec any) error {
			g, ok := spec.(*SegmentSpec)
			if !ok {
				return fmt.Errorf("flag: spec has type %T, want *flag.SegmentSpec", spec)
			}
			return ValidateSegment(*g)
		},
		Declarative: true,
	})
}

var keyRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$`)

// Validate checks a flag on its own: the error is a *resource.PathError
// naming the field at fault, e.g. spec.targeting[1].fractional. Segments
// are checked to be well-named only; Compile checks that they exist.
func Validate(s Spec) error {
	_, err := compile(s, nil, false)
	return err
}

// ValidateSegment checks a segment on its own.
func ValidateSegment(g SegmentSpec) error {
	if g.App != "" {
		if err := resource.ValidateName(g.App); err != nil {
			return resource.Errorf("spec.app", "application %v", err)
		}
	}
	c := compiler{segmentsAllowed: false}
	_, err := c.cond(&g.When, "spec.when", 0)
	return err
}

func validateHeader(s Spec) error {
	if err := resource.ValidateName(s.App); err != nil {
		return resource.Errorf("spec.app", "application %v", err)
	}
	if err := resource.ValidateName(s.Environment); err != nil {
		return resource.Errorf("spec.environment", "environment %v", err)
	}
	if len(s.Key) > MaxKeyLength || !keyRE.MatchString(s.Key) {
		return resource.Errorf("spec.key", "key %q must be 1 to %d lower-case letters, digits, '-' or '_', starting and ending with a letter or digit (e.g. new-checkout)", s.Key, MaxKeyLength)
	}
	switch s.Type {
	case Boolean, String, Number, Object:
	default:
		return resource.Errorf("spec.type", "type %q is not boolean, string, number or object", s.Type)
	}
	if len(s.Variants) == 0 {
		return resource.Errorf("spec.variants", "at least one variant is required, e.g. on: true and off: false")
	}
	if len(s.Variants) > MaxVariants {
		return resource.Errorf("spec.variants", "%d variants; the limit is %d", len(s.Variants), MaxVariants)
	}
	for _, name := range sortedKeys(s.Variants) {
		v := s.Variants[name]
		path := "spec.variants." + name
		if len(name) > MaxKeyLength || !keyRE.MatchString(name) {
			return resource.Errorf(path, "variant name %q must be 1 to %d lower-case letters, digits, '-' or '_'", name, MaxKeyLength)
		}
		if err := checkType(s.Type, v); err != nil {
			return resource.Errorf(path, "variant %s: %v", name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return resource.Errorf(path, "variant %s cannot be encoded as JSON: %v", name, err)
		}
		if len(b) > MaxVariantBytes {
			return resource.Errorf(path, "variant %s is %d bytes of JSON; the limit is %d", name, len(b), MaxVariantBytes)
		}
	}
	if s.DefaultVariant == "" {
		return resource.Errorf("spec.defaultVariant", "defaultVariant is required: the variant served when the flag is off or nothing else applies")
	}
	if _, ok := s.Variants[s.DefaultVariant]; !ok {
		return resource.Errorf("spec.defaultVariant", "unknown variant %q; the variants are %s", s.DefaultVariant, variantList(s.Variants))
	}
	switch s.Lifecycle {
	case "", Release, Operational:
	default:
		return resource.Errorf("spec.lifecycle", "lifecycle %q is not release or operational", s.Lifecycle)
	}
	if s.Lifetime != "" {
		if d, err := time.ParseDuration(s.Lifetime); err != nil || d <= 0 {
			return resource.Errorf("spec.lifetime", "lifetime %q must be a positive Go duration such as 960h (40 days)", s.Lifetime)
		}
	}
	if len(s.Targeting) > MaxRules {
		return resource.Errorf("spec.targeting", "%d rules; the limit is %d", len(s.Targeting), MaxRules)
	}
	return nil
}

// checkType reports whether v is a value of flag type typ.
func checkType(typ string, v any) error {
	switch typ {
	case Boolean:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("value %s is not a boolean (true or false)", describeValue(v))
		}
	case String:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("value %s is not a string", describeValue(v))
		}
	case Number:
		f, ok := toFloat(v)
		if !ok {
			return fmt.Errorf("value %s is not a number", describeValue(v))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("value %v is not a finite number", f)
		}
	case Object:
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("value %s is not an object", describeValue(v))
		}
	}
	return nil
}

func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", v)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%v", v)
}

func sortedKeys(vs map[string]any) []string {
	names := make([]string, 0, len(vs))
	for n := range vs {
		names = append(names, n)
	}
	sortStrings(names)
	return names
}

func variantList(vs map[string]any) string {
	out := ""
	for i, n := range sortedKeys(vs) {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
