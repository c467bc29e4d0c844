package resource

import (
	"fmt"
	"sort"
	"strings"
)

// Operator is one label requirement's comparison.
type Operator string

// Operators a selector can use, as in kubectl's -l.
const (
	Equals       Operator = "="
	NotEquals    Operator = "!="
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
	In           Operator = "in"
	NotIn        Operator = "notin"
)

// Requirement is one clause of a label selector.
type Requirement struct {
	Key    string
	Op     Operator
	Values []string
}

// Selector is a conjunction of requirements. The zero Selector matches
// everything.
type Selector []Requirement

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		switch r.Op {
		case Equals:
			if !ok || v != r.Values[0] {
				return false
			}
		case NotEquals:
			if ok && v == r.Values[0] {
				return false
			}
		case Exists:
			if !ok {
				return false
			}
		case DoesNotExist:
			if ok {
				return false
			}
		case In:
			if !ok || !contains(r.Values, v) {
				return false
			}
		case NotIn:
			if ok && contains(r.Values, v) {
				return false
			}
		}
	}
	return true
}

// Equalities returns the key=value requirements, which stores can answer
// from an index; the rest are checked with Matches.
func (s Selector) Equalities() map[string]string {
	out := map[string]string{}
	for _, r := range s {
		if r.Op == Equals {
			out[r.Key] = r.Values[0]
		}
	}
	return out
}

// String renders the selector in the syntax ParseSelector reads.
func (s Selector) String() string {
	parts := make([]string, 0, len(s))
	for _, r := range s {
		switch r.Op {
		case Equals, NotEquals:
			parts = append(parts, r.Key+string(r.Op)+r.Values[0])
		case Exists:
			parts = append(parts, r.Key)
		case DoesNotExist:
			parts = append(parts, "!"+r.Key)
		case In, NotIn:
			parts = append(parts, fmt.Sprintf("%s %s (%s)", r.Key, r.Op, strings.Join(r.Values, ",")))
		}
	}
	return strings.Join(parts, ",")
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// ParseSelector reads a kubectl-style label selector: comma-separated
// clauses of the forms key=value, key==value, key!=value, key, !key,
// key in (a,b) and key notin (a,b).
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, clause := range splitClauses(s) {
		clause = strings.TrimSpace(clause)
		if clause == "" {
			continue
		}
		r, err := parseClause(clause)
		if err != nil {
			return nil, fmt.Errorf("label selector %q: %w", s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitClauses splits on commas that are not inside parentheses.
func splitClauses(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseClause(c string) (Requirement, error) {
	if key, op, rest, ok := splitSetClause(c); ok {
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			return Requirement{}, fmt.Errorf("clause %q: write the values in parentheses, e.g. %s %s (a,b)", c, key, op)
		}
		var vals []string
		for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
			if v = strings.TrimSpace(v); v != "" && !contains(vals, v) {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			return Requirement{}, fmt.Errorf("clause %q: give at least one value", c)
		}
		sort.Strings(vals)
		return checkRequirement(Requirement{Key: key, Op: op, Values: vals}, c)
	}
	for _, op := range []string{"!=", "==", "="} {
		if i := strings.Index(c, op); i >= 0 {
			o := Operator(op)
			if op == "==" {
				o = Equals
			}
			return checkRequirement(Requirement{Key: strings.TrimSpace(c[:i]), Op: o, Values: []string{strings.TrimSpace(c[i+len(op):])}}, c)
		}
	}
	if strings.HasPrefix(c, "!") {
		return checkRequirement(Requirement{Key: strings.TrimSpace(c[1:]), Op: DoesNotExist}, c)
	}
	return checkRequirement(Requirement{Key: c, Op: Exists}, c)
}

func checkRequirement(r Requirement, clause string) (Requirement, error) {
	labels := map[string]string{r.Key: ""}
	for _, v := range r.Values {
		labels[r.Key] = v
		if err := ValidateLabels(labels); err != nil {
			return Requirement{}, fmt.Errorf("clause %q: %w", clause, err)
		}
	}
	if len(r.Values) == 0 {
		if err := ValidateLabels(labels); err != nil {
			return Requirement{}, fmt.Errorf("clause %q: %w", clause, err)
		}
	}
	return r, nil
}

// splitSetClause recognises "key in (...)" and "key notin (...)", with or
// without a space before the parenthesis, and returns the text from the
// parenthesis on.
func splitSetClause(c string) (key string, op Operator, rest string, ok bool) {
	i := strings.IndexAny(c, " \t(")
	if i <= 0 {
		return "", "", "", false
	}
	key, after := c[:i], strings.TrimLeft(c[i:], " \t")
	for _, o := range []Operator{NotIn, In} {
		if w, found := strings.CutPrefix(after, string(o)); found && (strings.HasPrefix(w, "(") || strings.HasPrefix(w, " ") || strings.HasPrefix(w, "\t")) {
			return key, o, strings.TrimSpace(w), true
		}
	}
	return "", "", "", false
}
