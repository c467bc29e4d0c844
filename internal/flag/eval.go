package flag

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Reasons, as OpenFeature and OFREP name them.
const (
	ReasonStatic         = "STATIC"          // no targeting and no split: the default variant
	ReasonTargetingMatch = "TARGETING_MATCH" // a rule's condition held and it names a variant
	ReasonSplit          = "SPLIT"           // a fractional split chose by targeting key
	ReasonDisabled       = "DISABLED"        // the flag is off: the default variant
	ReasonDefault        = "DEFAULT"         // targeting exists but nothing applied: the default variant
	ReasonError          = "ERROR"           // see ErrorCode
)

// Error codes, as OpenFeature and OFREP name them.
const (
	ErrFlagNotFound        = "FLAG_NOT_FOUND"
	ErrTargetingKeyMissing = "TARGETING_KEY_MISSING"
	ErrInvalidContext      = "INVALID_CONTEXT"
	ErrParse               = "PARSE_ERROR"
	ErrGeneral             = "GENERAL"
)

// Context is an OpenFeature evaluation context: the targeting key (the
// subject, e.g. a user id, that fractional splits bucket on) and the other
// attributes. The attribute "targetingKey" in a condition reads TargetingKey.
// Attribute values are strings, booleans, numbers (any Go numeric type or
// json.Number), or anything else, which no condition matches.
type Context struct {
	TargetingKey string
	Attributes   map[string]any
}

// Result is the outcome of one evaluation. Value is shared with the
// Evaluator: the caller must not modify an object value.
type Result struct {
	Key       string
	Variant   string
	Value     any
	Reason    string
	ErrorCode string // empty unless Reason is ERROR
	// ErrorMessage says what was wrong, for ERROR results.
	ErrorMessage string
}

// Units is the resolution of fractional splits: the bucket space is
// [0, Units), and a weight of w percent covers w*Units/100 buckets, so a
// weight may have up to three decimals.
const Units = 100_000

type split struct {
	upper uint64 // exclusive cumulative bound in [0, Units]
	res   Result
}

type rule struct {
	when   *cond
	res    Result // when the rule names a variant
	splits []split
}

// Evaluator evaluates one compiled flag. It is immutable, so it is safe for
// concurrent use; a change to the flag compiles a new Evaluator.
type Evaluator struct {
	key      string
	enabled  bool
	static   bool
	seed     uint64 // FNV-1a state after key and '/'
	def      Result // DEFAULT or STATIC
	disabled Result
	rules    []rule
	splits   []split
	spec     Spec
}

// Compile validates s and turns it into an Evaluator. segments holds the
// Segments by name; a flag that names a missing segment, or one that
// belongs to another application, is refused with the path of the
// reference.
func Compile(s Spec, segments map[string]SegmentSpec) (*Evaluator, error) {
	return compile(s, segments, true)
}

func compile(s Spec, segments map[string]SegmentSpec, resolve bool) (*Evaluator, error) {
	if err := validateHeader(s); err != nil {
		return nil, err
	}
	e := &Evaluator{key: s.Key, enabled: s.Enabled, spec: s, seed: seed(s.Key)}
	result := func(variant, reason string) Result {
		return Result{Key: s.Key, Variant: variant, Value: s.Variants[variant], Reason: reason}
	}
	c := compiler{segments: segments, app: s.App, segmentsAllowed: true, resolve: resolve}
	names := map[string]int{}
	for i := range s.Targeting {
		r := &s.Targeting[i]
		path := fmt.Sprintf("spec.targeting[%d]", i)
		if r.Name == "" {
			return nil, resource.Errorf(path+".name", "every rule needs a name, e.g. internal-users")
		}
		if len(r.Name) > MaxKeyLength || !keyRE.MatchString(r.Name) {
			return nil, resource.Errorf(path+".name", "rule name %q must be 1 to %d lower-case letters, digits, '-' or '_'", r.Name, MaxKeyLength)
		}
		if j, dup := names[r.Name]; dup {
			return nil, resource.Errorf(path+".name", "rule name %q is already used by spec.targeting[%d]; rule names are unique within a flag", r.Name, j)
		}
		names[r.Name] = i
		var cr rule
		if r.When != nil {
			k, err := c.cond(r.When, path+".when", 0)
			if err != nil {
				return nil, err
			}
			cr.when = &k
		}
		switch {
		case r.Variant != "" && r.Fractional != nil:
			return nil, resource.Errorf(path, "a rule serves a variant or a fractional split, not both")
		case r.Variant != "":
			if _, ok := s.Variants[r.Variant]; !ok {
				return nil, resource.Errorf(path+".variant", "unknown variant %q; the variants are %s", r.Variant, variantList(s.Variants))
			}
			cr.res = result(r.Variant, ReasonTargetingMatch)
		case r.Fractional != nil:
			sp, err := compileSplits(r.Fractional, path+".fractional", s, result)
			if err != nil {
				return nil, err
			}
			cr.splits = sp
		default:
			return nil, resource.Errorf(path, "a rule needs a variant or a fractional split")
		}
		e.rules = append(e.rules, cr)
	}
	if s.Fractional != nil {
		sp, err := compileSplits(s.Fractional, "spec.fractional", s, result)
		if err != nil {
			return nil, err
		}
		e.splits = sp
	}
	e.static = len(e.rules) == 0 && e.splits == nil
	e.def = result(s.DefaultVariant, ReasonDefault)
	if e.static {
		e.def.Reason = ReasonStatic
	}
	e.disabled = result(s.DefaultVariant, ReasonDisabled)
	return e, nil
}

func compileSplits(in []Split, path string, s Spec, result func(string, string) Result) ([]split, error) {
	if len(in) == 0 {
		return nil, resource.Errorf(path, "a fractional split needs at least one variant with a weight")
	}
	if len(in) > MaxSplits {
		return nil, resource.Errorf(path, "%d entries; the limit is %d", len(in), MaxSplits)
	}
	out := make([]split, 0, len(in))
	seen := map[string]int{}
	var total uint64
	for i, sp := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		if _, ok := s.Variants[sp.Variant]; !ok {
			return nil, resource.Errorf(p+".variant", "unknown variant %q; the variants are %s", sp.Variant, variantList(s.Variants))
		}
		if j, dup := seen[sp.Variant]; dup {
			return nil, resource.Errorf(p+".variant", "variant %q already has a weight at %s[%d]", sp.Variant, path, j)
		}
		seen[sp.Variant] = i
		w := sp.Weight * (Units / 100)
		r := math.Round(w)
		if math.IsNaN(w) || w < 0 || w > Units || math.Abs(w-r) > 1e-6 {
			return nil, resource.Errorf(p+".weight", "weight %v must be a percentage from 0 to 100 with at most three decimals", sp.Weight)
		}
		total += uint64(r)
		out = append(out, split{upper: total, res: result(sp.Variant, ReasonSplit)})
	}
	if total != Units {
		return nil, resource.Errorf(path, "weights sum to %v; they must sum to 100", float64(total)/(Units/100))
	}
	return out, nil
}

// Key returns the flag key.
func (e *Evaluator) Key() string { return e.key }

// Spec returns the spec the Evaluator was compiled from. Its maps are
// shared: the caller must not modify them.
func (e *Evaluator) Spec() Spec { return e.spec }

// Evaluate resolves the flag for c. It never fails outright: a split that
// needs a targeting key the context lacks gives the default variant with
// reason ERROR and code TARGETING_KEY_MISSING. A static flag evaluates
// without allocating.
func (e *Evaluator) Evaluate(c Context) Result {
	if !e.enabled {
		return e.disabled
	}
	if e.static {
		return e.def
	}
	for i := range e.rules {
		r := &e.rules[i]
		if r.when != nil && !r.when.eval(&c) {
			continue
		}
		if r.splits == nil {
			return r.res
		}
		return e.split(r.splits, c.TargetingKey)
	}
	if e.splits != nil {
		return e.split(e.splits, c.TargetingKey)
	}
	return e.def
}

func (e *Evaluator) split(sp []split, tk string) Result {
	if tk == "" {
		r := e.def
		r.Reason = ReasonError
		r.ErrorCode = ErrTargetingKeyMissing
		r.ErrorMessage = "flag " + e.key + " splits by targeting key, and the context has no targetingKey"
		return r
	}
	b := bucket(e.seed, tk)
	for i := range sp {
		if b < sp[i].upper {
			return sp[i].res
		}
	}
	return sp[len(sp)-1].res // unreachable: the last upper is Units
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func seed(key string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= fnvPrime
	}
	h ^= '/'
	h *= fnvPrime
	return h
}

// Bucket returns the bucket in [0, Units) that targetingKey falls in for
// flag key: FNV-1a 64 over key + "/" + targetingKey, finished with the
// murmur3 64-bit mixer, scaled to [0, Units). It depends on nothing but its
// arguments, so every server and every restart agrees.
func Bucket(key, targetingKey string) uint64 { return bucket(seed(key), targetingKey) }

func bucket(h uint64, tk string) uint64 {
	for i := 0; i < len(tk); i++ {
		h ^= uint64(tk[i])
		h *= fnvPrime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	hi, _ := bits.Mul64(h, Units)
	return hi
}

// Set is the compiled flags of one environment, by key. It is safe for
// concurrent reads once built.
type Set map[string]*Evaluator

// Evaluate resolves flag key for c, or returns reason ERROR with code
// FLAG_NOT_FOUND when the set has no such flag.
func (s Set) Evaluate(key string, c Context) Result {
	e, ok := s[key]
	if !ok {
		return Result{Key: key, Reason: ReasonError, ErrorCode: ErrFlagNotFound, ErrorMessage: "flag " + key + " not found"}
	}
	return e.Evaluate(c)
}

// Uniform reports whether the flag serves one variant to every context,
// and which: true when it is disabled, static, or when every rule and
// split can only give the same variant (e.g. a split at 100%). Stale-flag
// detection counts a flag's lifetime from when it became uniform.
func (e *Evaluator) Uniform() (string, bool) {
	if !e.enabled || e.static {
		return e.def.Variant, true
	}
	seen := ""
	add := func(v string) bool {
		if seen == "" {
			seen = v
		}
		return seen == v
	}
	addSplits := func(sp []split) bool {
		var prev uint64
		for _, s := range sp {
			if s.upper > prev && !add(s.res.Variant) {
				return false
			}
			prev = s.upper
		}
		return true
	}
	for _, r := range e.rules {
		if r.splits != nil {
			if !addSplits(r.splits) {
				return "", false
			}
		} else if !add(r.res.Variant) {
			return "", false
		}
	}
	if e.splits != nil {
		if !addSplits(e.splits) {
			return "", false
		}
	} else if !add(e.def.Variant) {
		return "", false
	}
	return seen, true
}
