package flag

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/airlock-dev/airlock/internal/resource"
)

// Operators of an attribute condition.
const (
	OpEquals     = "equals"
	OpNotEquals  = "notEquals"
	OpIn         = "in"
	OpNotIn      = "notIn"
	OpStartsWith = "startsWith"
	OpEndsWith   = "endsWith"
	OpMatches    = "matches"
	OpLt         = "lt"
	OpLte        = "lte"
	OpGt         = "gt"
	OpGte        = "gte"
	OpSemverLt   = "semverLt"
	OpSemverLte  = "semverLte"
	OpSemverGt   = "semverGt"
	OpSemverGte  = "semverGte"
	OpSemverEq   = "semverEq"
)

// Operators lists every operator, for messages and documentation.
var Operators = []string{OpEquals, OpNotEquals, OpIn, OpNotIn, OpStartsWith, OpEndsWith, OpMatches,
	OpLt, OpLte, OpGt, OpGte, OpSemverLt, OpSemverLte, OpSemverGt, OpSemverGte, OpSemverEq}

type opcode uint8

const (
	opAll opcode = iota
	opAny
	opEquals
	opNotEquals
	opIn
	opNotIn
	opStartsWith
	opEndsWith
	opMatches
	opLt
	opLte
	opGt
	opGte
	opSemverLt
	opSemverLte
	opSemverGt
	opSemverGte
	opSemverEq
)

var opcodes = map[string]opcode{
	OpEquals: opEquals, OpNotEquals: opNotEquals, OpIn: opIn, OpNotIn: opNotIn,
	OpStartsWith: opStartsWith, OpEndsWith: opEndsWith, OpMatches: opMatches,
	OpLt: opLt, OpLte: opLte, OpGt: opGt, OpGte: opGte,
	OpSemverLt: opSemverLt, OpSemverLte: opSemverLte, OpSemverGt: opSemverGt,
	OpSemverGte: opSemverGte, OpSemverEq: opSemverEq,
}

type kind uint8

const (
	kString kind = iota + 1
	kNumber
	kBool
)

// scalar is a condition's literal.
type scalar struct {
	k kind
	s string
	f float64
	b bool
}

// cond is a compiled condition.
type cond struct {
	op   opcode
	attr string
	tk   bool // attr is targetingKey
	lit  scalar
	set  []scalar
	re   *regexp.Regexp
	ver  Version
	kids []cond
}

// compiler turns Conditions into conds, counting them against the limits.
type compiler struct {
	segments        map[string]SegmentSpec
	app             string
	segmentsAllowed bool
	resolve         bool // look segments up (Compile) rather than only check names (Validate)
	count           int
}

func (c *compiler) cond(x *Condition, path string, depth int) (cond, error) {
	c.count++
	if c.count > MaxConditions {
		return cond{}, resource.Errorf(path, "more than %d conditions; split the flag or use segments", MaxConditions)
	}
	if depth > MaxConditionDepth {
		return cond{}, resource.Errorf(path, "conditions nested more than %d deep", MaxConditionDepth)
	}
	forms := 0
	if x.Attribute != "" || x.Op != "" || x.Value != nil || x.Values != nil {
		forms++
	}
	if x.All != nil {
		forms++
	}
	if x.Any != nil {
		forms++
	}
	if x.Segment != "" {
		forms++
	}
	if forms != 1 {
		return cond{}, resource.Errorf(path, "a condition has exactly one of attribute with op, all, any or segment (it has %d)", forms)
	}
	switch {
	case x.All != nil || x.Any != nil:
		out := cond{op: opAll}
		list, field := x.All, "all"
		if x.Any != nil {
			out.op, list, field = opAny, x.Any, "any"
		}
		if len(list) == 0 {
			return cond{}, resource.Errorf(path+"."+field, "%s needs at least one condition", field)
		}
		out.kids = make([]cond, 0, len(list))
		for i := range list {
			k, err := c.cond(&list[i], fmt.Sprintf("%s.%s[%d]", path, field, i), depth+1)
			if err != nil {
				return cond{}, err
			}
			out.kids = append(out.kids, k)
		}
		return out, nil
	case x.Segment != "":
		p := path + ".segment"
		if !c.segmentsAllowed {
			return cond{}, resource.Errorf(p, "a segment cannot refer to another segment")
		}
		if err := resource.ValidateName(x.Segment); err != nil {
			return cond{}, resource.Errorf(p, "segment %v", err)
		}
		if !c.resolve {
			return cond{op: opAll}, nil
		}
		g, ok := c.segments[x.Segment]
		if !ok {
			return cond{}, resource.Errorf(p, "unknown segment %q: apply a Segment of that name first", x.Segment)
		}
		if g.App != "" && g.App != c.app {
			return cond{}, resource.Errorf(p, "segment %q belongs to application %s, not %s", x.Segment, g.App, c.app)
		}
		inner := compiler{count: c.count}
		k, err := inner.cond(&g.When, p, depth+1)
		if err != nil {
			return cond{}, resource.Errorf(p, "segment %q: %v", x.Segment, err)
		}
		c.count = inner.count
		return k, nil
	}
	return c.attribute(x, path)
}

func (c *compiler) attribute(x *Condition, path string) (cond, error) {
	if x.Attribute == "" {
		return cond{}, resource.Errorf(path+".attribute", "attribute is required: the context attribute to test, e.g. email or targetingKey")
	}
	if len(x.Attribute) > MaxAttributeLength {
		return cond{}, resource.Errorf(path+".attribute", "attribute name is %d bytes; the limit is %d", len(x.Attribute), MaxAttributeLength)
	}
	op, ok := opcodes[x.Op]
	if !ok {
		return cond{}, resource.Errorf(path+".op", "unknown operator %q; the operators are %s", x.Op, strings.Join(Operators, ", "))
	}
	out := cond{op: op, attr: x.Attribute, tk: x.Attribute == "targetingKey"}
	vp := path + ".value"
	if op == opIn || op == opNotIn {
		if x.Value != nil {
			return cond{}, resource.Errorf(vp, "%s takes values (a list), not value", x.Op)
		}
		if len(x.Values) == 0 {
			return cond{}, resource.Errorf(path+".values", "%s needs a non-empty list of values", x.Op)
		}
		if len(x.Values) > MaxValues {
			return cond{}, resource.Errorf(path+".values", "%d values; the limit is %d", len(x.Values), MaxValues)
		}
		out.set = make([]scalar, len(x.Values))
		for i, v := range x.Values {
			s, err := toScalar(v)
			if err != nil {
				return cond{}, resource.Errorf(fmt.Sprintf("%s.values[%d]", path, i), "%v", err)
			}
			out.set[i] = s
		}
		return out, nil
	}
	if x.Values != nil {
		return cond{}, resource.Errorf(path+".values", "%s takes value, not values", x.Op)
	}
	if x.Value == nil {
		return cond{}, resource.Errorf(vp, "%s needs a value", x.Op)
	}
	lit, err := toScalar(x.Value)
	if err != nil {
		return cond{}, resource.Errorf(vp, "%v", err)
	}
	out.lit = lit
	switch op {
	case opStartsWith, opEndsWith, opMatches:
		if lit.k != kString {
			return cond{}, resource.Errorf(vp, "%s needs a string value, got %s", x.Op, describeValue(x.Value))
		}
		if op == opMatches {
			if len(lit.s) > MaxPatternLength {
				return cond{}, resource.Errorf(vp, "pattern is %d bytes; the limit is %d", len(lit.s), MaxPatternLength)
			}
			re, err := regexp.Compile(lit.s)
			if err != nil {
				return cond{}, resource.Errorf(vp, "pattern %q is not an RE2 regular expression: %v", lit.s, err)
			}
			out.re = re
		}
	case opLt, opLte, opGt, opGte:
		if lit.k != kNumber {
			return cond{}, resource.Errorf(vp, "%s needs a number value, got %s", x.Op, describeValue(x.Value))
		}
	case opSemverLt, opSemverLte, opSemverGt, opSemverGte, opSemverEq:
		if lit.k != kString {
			return cond{}, resource.Errorf(vp, "%s needs a version string such as \"2.1.0\", got %s", x.Op, describeValue(x.Value))
		}
		v, err := ParseVersion(lit.s)
		if err != nil {
			return cond{}, resource.Errorf(vp, "version %q is %v", lit.s, err)
		}
		out.ver = v
	}
	return out, nil
}

func toScalar(v any) (scalar, error) {
	switch v := v.(type) {
	case string:
		if len(v) > MaxStringValue {
			return scalar{}, fmt.Errorf("string value is %d bytes; the limit is %d", len(v), MaxStringValue)
		}
		return scalar{k: kString, s: v}, nil
	case bool:
		return scalar{k: kBool, b: v}, nil
	}
	if f, ok := toFloat(v); ok {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return scalar{}, fmt.Errorf("value %v is not a finite number", f)
		}
		return scalar{k: kNumber, f: f}, nil
	}
	return scalar{}, fmt.Errorf("value %s must be a string, number or boolean", describeValue(v))
}

// toFloat converts the numeric types a decoder or a Go caller may supply.
func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int8:
		return float64(v), true
	case int16:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint:
		return float64(v), true
	case uint8:
		return float64(v), true
	case uint16:
		return float64(v), true
	case uint32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

// eval reports whether the condition holds for c. A condition on an
// attribute the context lacks, or holds with another type, does not hold,
// whatever the operator (notEquals and notIn included).
func (x *cond) eval(c *Context) bool {
	switch x.op {
	case opAll:
		for i := range x.kids {
			if !x.kids[i].eval(c) {
				return false
			}
		}
		return true
	case opAny:
		for i := range x.kids {
			if x.kids[i].eval(c) {
				return true
			}
		}
		return false
	}
	if x.tk {
		if c.TargetingKey == "" {
			return false
		}
		return x.evalString(c.TargetingKey)
	}
	v, ok := c.Attributes[x.attr]
	if !ok {
		return false
	}
	switch v := v.(type) {
	case string:
		return x.evalString(v)
	case bool:
		return x.evalScalar(scalar{k: kBool, b: v})
	}
	if f, ok := toFloat(v); ok {
		return x.evalScalar(scalar{k: kNumber, f: f})
	}
	return false
}

func (x *cond) evalString(s string) bool {
	switch x.op {
	case opStartsWith:
		return strings.HasPrefix(s, x.lit.s)
	case opEndsWith:
		return strings.HasSuffix(s, x.lit.s)
	case opMatches:
		return x.re.MatchString(s)
	case opSemverLt, opSemverLte, opSemverGt, opSemverGte, opSemverEq:
		v, err := ParseVersion(s)
		if err != nil {
			return false
		}
		switch cmp := v.Compare(x.ver); x.op {
		case opSemverLt:
			return cmp < 0
		case opSemverLte:
			return cmp <= 0
		case opSemverGt:
			return cmp > 0
		case opSemverGte:
			return cmp >= 0
		default:
			return cmp == 0
		}
	}
	return x.evalScalar(scalar{k: kString, s: s})
}

func (x *cond) evalScalar(v scalar) bool {
	switch x.op {
	case opEquals:
		return x.lit.k == v.k && eq(x.lit, v)
	case opNotEquals:
		return x.lit.k == v.k && !eq(x.lit, v)
	case opIn, opNotIn:
		found, typed := false, false
		for i := range x.set {
			if x.set[i].k == v.k {
				typed = true
				if eq(x.set[i], v) {
					found = true
					break
				}
			}
		}
		if x.op == opIn {
			return found
		}
		return typed && !found
	case opLt, opLte, opGt, opGte:
		if v.k != kNumber {
			return false
		}
		switch x.op {
		case opLt:
			return v.f < x.lit.f
		case opLte:
			return v.f <= x.lit.f
		case opGt:
			return v.f > x.lit.f
		default:
			return v.f >= x.lit.f
		}
	}
	return false
}

func eq(a, b scalar) bool {
	switch a.k {
	case kString:
		return a.s == b.s
	case kNumber:
		return a.f == b.f
	default:
		return a.b == b.b
	}
}

func sortStrings(s []string) { slices.Sort(s) }
