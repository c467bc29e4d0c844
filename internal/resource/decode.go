package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Limits on outside input. Documents above them are rejected before parsing.
const (
	MaxInputBytes = 4 << 20 // one apply request or file
	MaxDocuments  = 1000    // documents in one input
	maxDepth      = 64      // nesting of mappings and sequences
	// MaxAliasNodes bounds the values that YAML aliases (*name) may add to
	// one input when expanded, so a few hundred bytes of nested aliases
	// ("billion laughs") cannot expand into gigabytes.
	MaxAliasNodes = 10_000
	maxErrors     = 100 // problems reported for one input; the rest are counted
)

// FieldError is one problem found in a document: where it is (source file,
// line, field path) and what is wrong with it.
type FieldError struct {
	Source string // file name or "request body"
	Line   int    // 1-based; 0 when unknown
	Object string // "Environment/prod" when known
	Path   string // "spec.isolation.level"
	Msg    string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// DecodeErrors collects every problem in an input, so a user fixes them in
// one pass.
type DecodeErrors []*FieldError

func (es DecodeErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Decode reads one or more YAML (or JSON) documents from data and returns
// them as objects. source names the input in errors. Every document must
// carry apiVersion airlock.dev/v1, a registered kind, a valid name and a spec
// whose fields and types match the kind; each problem is reported with its
// line and field path. Either all documents decode or an error is returned.
func (s *Scheme) Decode(source string, data []byte) ([]*Object, error) {
	if len(data) > MaxInputBytes {
		return nil, DecodeErrors{{Source: source, Msg: fmt.Sprintf("input is %d bytes; the limit is %d (split it into several files)", len(data), MaxInputBytes)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var (
		objs   []*Object
		errs   DecodeErrors
		budget = MaxAliasNodes
	)
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, msg := yamlError(err)
			errs = append(errs, &FieldError{Source: source, Line: line, Msg: "not valid YAML or JSON: " + msg})
			break
		}
		if i >= MaxDocuments {
			errs = append(errs, &FieldError{Source: source, Msg: fmt.Sprintf("more than %d documents; split the input", MaxDocuments)})
			break
		}
		if len(doc.Content) == 0 {
			continue // an empty document between separators
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if root.Kind == yaml.SequenceNode || isList(root) {
			items := root
			if root.Kind == yaml.MappingNode {
				items = mapValue(root, "items")
			}
			for _, item := range items.Content {
				obj, ferrs := s.decodeOne(source, resolve(item), &budget)
				errs = append(errs, ferrs...)
				if obj != nil {
					objs = append(objs, obj)
				}
			}
			continue
		}
		obj, ferrs := s.decodeOne(source, root, &budget)
		errs = append(errs, ferrs...)
		if obj != nil {
			objs = append(objs, obj)
		}
	}
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], &FieldError{Source: source, Msg: fmt.Sprintf("and %d more problems", more)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(objs) > MaxDocuments {
		return nil, DecodeErrors{{Source: source, Msg: fmt.Sprintf("more than %d objects; split the input", MaxDocuments)}}
	}
	return objs, nil
}

// isList recognises the {"kind": "List", "items": [...]} envelope that
// `airlock get -o yaml` prints for several objects.
func isList(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	k := mapValue(n, "kind")
	items := mapValue(n, "items")
	return k != nil && k.Value == "List" && items != nil && items.Kind == yaml.SequenceNode
}

// mapValue returns the value of key in mapping n, following an alias, or
// nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// DecodeObject decodes a single document, as sent in an API request body.
func (s *Scheme) DecodeObject(source string, data []byte) (*Object, error) {
	objs, err := s.Decode(source, data)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, DecodeErrors{{Source: source, Msg: fmt.Sprintf("expected one object, found %d", len(objs))}}
	}
	return objs[0], nil
}

type envelope struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   Metadata        `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	Status     json.RawMessage `json:"status"`
}

func (s *Scheme) decodeOne(source string, n *yaml.Node, aliasBudget *int) (*Object, DecodeErrors) {
	fail := func(line int, obj, path, msg string) (*Object, DecodeErrors) {
		return nil, DecodeErrors{{Source: source, Line: line, Object: obj, Path: path, Msg: msg}}
	}
	if n.Kind != yaml.MappingNode {
		return fail(n.Line, "", "", "expected an object with apiVersion, kind, metadata and spec")
	}
	kindNode := mapValue(n, "kind")
	if kindNode == nil || kindNode.Value == "" {
		return fail(n.Line, "", "kind", fmt.Sprintf("kind is required; one of: %s", s.KindNames(false)))
	}
	k, ok := s.kinds[kindNode.Value]
	if !ok {
		hint := ""
		if lk, found := s.Lookup(kindNode.Value); found {
			hint = fmt.Sprintf(" (did you mean %q?)", lk.Name)
		}
		return fail(kindNode.Line, "", "kind", fmt.Sprintf("unknown kind %q%s; one of: %s", kindNode.Value, hint, s.KindNames(false)))
	}
	name := ""
	if md := mapValue(n, "metadata"); md != nil && md.Kind == yaml.MappingNode {
		if nn := mapValue(md, "name"); nn != nil {
			name = nn.Value
		}
	}
	ref := k.Name
	if name != "" {
		ref += "/" + name
	}
	var errs DecodeErrors
	add := func(line int, path, msg string) {
		errs = append(errs, &FieldError{Source: source, Line: line, Object: ref, Path: path, Msg: msg})
	}
	var spec any = &json.RawMessage{}
	if k.NewSpec != nil {
		spec = k.NewSpec()
	}
	w := &walker{add: add, aliasBudget: aliasBudget, inAlias: map[*yaml.Node]bool{}}
	w.walkFields(n, "", map[string]reflect.Type{
		"apiVersion": reflect.TypeOf(""),
		"kind":       reflect.TypeOf(""),
		"metadata":   reflect.TypeOf(Metadata{}),
		"spec":       reflect.TypeOf(spec).Elem(),
		"status":     reflect.TypeOf(json.RawMessage{}),
	}, 0)
	if v := mapValue(n, "apiVersion"); v == nil || v.Value != APIVersion {
		line, got := n.Line, "nothing"
		if v != nil {
			line, got = v.Line, fmt.Sprintf("%q", v.Value)
		}
		add(line, "apiVersion", fmt.Sprintf("must be %q, got %s", APIVersion, got))
	}
	if err := ValidateName(name); err != nil {
		add(lineOf(n, "metadata"), "metadata.name", err.Error())
	}
	if md := mapValue(n, "metadata"); md != nil {
		if lbl := mapValue(md, "labels"); lbl != nil && lbl.Kind == yaml.MappingNode {
			labels := map[string]string{}
			for i := 0; i+1 < len(lbl.Content); i += 2 {
				labels[lbl.Content[i].Value] = lbl.Content[i+1].Value
				if err := ValidateLabels(map[string]string{lbl.Content[i].Value: lbl.Content[i+1].Value}); err != nil {
					add(lbl.Content[i].Line, "metadata.labels", err.Error())
				}
			}
		}
	}
	if mapValue(n, "spec") == nil && k.NewSpec != nil {
		add(n.Line, "spec", "spec is required")
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}

	var generic any
	if err := n.Decode(&generic); err != nil {
		return fail(n.Line, ref, "", err.Error())
	}
	raw, err := json.Marshal(jsonable(generic))
	if err != nil {
		return fail(n.Line, ref, "", err.Error())
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fail(n.Line, ref, "", err.Error())
	}
	if err := strictUnmarshal(env.Spec, spec); err != nil {
		return fail(lineOf(n, "spec"), ref, "spec", err.Error())
	}
	if len(env.Metadata.Labels) == 0 {
		env.Metadata.Labels = nil // {} and no labels are the same thing
	}
	if string(env.Status) == "null" {
		env.Status = nil
	}
	obj := &Object{APIVersion: env.APIVersion, Kind: k.Name, Metadata: env.Metadata, Status: env.Status}
	if err := obj.SetSpec(spec); err != nil {
		return fail(n.Line, ref, "spec", err.Error())
	}
	if k.Validate != nil {
		if err := k.Validate(obj, spec); err != nil {
			path, msg := "spec", err.Error()
			var pe *PathError
			if errors.As(err, &pe) {
				path, msg = pe.Path, pe.Msg
			}
			return fail(lineAt(n, path), ref, path, msg)
		}
	}
	return obj, nil
}

// PathError is a validation failure at a field path, so the decoder can
// point at the line that holds the field.
type PathError struct {
	Path string // e.g. "spec.isolation.level"
	Msg  string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Msg }

// Errorf returns a PathError for the field at path.
func Errorf(path, format string, args ...any) error {
	return &PathError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

func lineOf(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// lineAt follows a dotted path ("spec.stages[1]") as far as it exists and
// returns the line of the deepest node found.
func lineAt(n *yaml.Node, path string) int {
	line := n.Line
	cur := n
	for _, part := range strings.Split(path, ".") {
		idx := -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			fmt.Sscanf(part[i+1:len(part)-1], "%d", &idx)
			part = part[:i]
		}
		if cur.Kind != yaml.MappingNode {
			return line
		}
		next := mapValue(cur, part)
		if next == nil {
			return line
		}
		line, cur = lineOf(cur, part), next
		if idx >= 0 && cur.Kind == yaml.SequenceNode && idx < len(cur.Content) {
			cur = cur.Content[idx]
			line = cur.Line
		}
	}
	return line
}

// jsonable turns YAML-decoded values into ones encoding/json accepts
// (map[string]any rather than map[any]any).
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = jsonable(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = jsonable(x)
		}
		return t
	default:
		return v
	}
}

var (
	rawType  = reflect.TypeOf(json.RawMessage{})
	timeType = reflect.TypeOf(time.Time{})
	durType  = reflect.TypeOf(time.Duration(0))
)

// walker checks a YAML node tree against a Go type, reporting unknown
// fields and wrong types with their path and line. Parts typed as any or
// json.RawMessage are still walked, for the rules every value obeys: string
// keys given once, bounded nesting, bounded alias expansion, and values JSON
// can carry.
type walker struct {
	add         func(line int, path, msg string)
	aliasBudget *int                // alias-expanded nodes the input may still add
	aliasDepth  int                 // > 0 inside an alias expansion
	inAlias     map[*yaml.Node]bool // anchors being expanded, to catch cycles
	stopped     bool                // the alias budget ran out; stop walking
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// enter accounts for visiting n and reports whether to walk it.
func (w *walker) enter(n *yaml.Node, path string, depth int) bool {
	if w.stopped {
		return false
	}
	if depth > maxDepth {
		w.add(n.Line, path, fmt.Sprintf("nested deeper than %d levels", maxDepth))
		return false
	}
	if w.aliasDepth > 0 {
		*w.aliasBudget--
		if *w.aliasBudget < 0 {
			w.add(n.Line, path, fmt.Sprintf("YAML aliases expand to more than %d values; write the values out or use fewer aliases", MaxAliasNodes))
			w.stopped = true
			return false
		}
	}
	return true
}

// alias walks the target of alias node n with fn.
func (w *walker) alias(n *yaml.Node, path string, fn func(target *yaml.Node)) {
	if n.Alias == nil {
		w.add(n.Line, path, fmt.Sprintf("alias *%s names no anchor", n.Value))
		return
	}
	if w.inAlias[n.Alias] {
		w.add(n.Line, path, fmt.Sprintf("alias *%s refers to a value that contains it", n.Value))
		return
	}
	w.inAlias[n.Alias] = true
	w.aliasDepth++
	fn(n.Alias)
	w.aliasDepth--
	delete(w.inAlias, n.Alias)
}

// key checks a mapping key: a plain string, given once in its mapping.
func (w *walker) key(key *yaml.Node, path string, seen map[string]int) bool {
	switch {
	case key.Kind != yaml.ScalarNode:
		w.add(key.Line, path, "field names must be plain strings")
		return false
	case key.Tag == "!!merge":
		w.add(key.Line, path, "YAML merge keys (<<) are not supported; write the fields out")
		return false
	case key.Tag != "!!str":
		w.add(key.Line, join(path, key.Value), fmt.Sprintf("field name %s is not a string; put it in quotes: %q", describe(key), key.Value))
		return false
	}
	if first, dup := seen[key.Value]; dup {
		w.add(key.Line, join(path, key.Value), fmt.Sprintf("given twice (first at line %d)", first))
		return false
	}
	seen[key.Value] = key.Line
	return true
}

func (w *walker) walkFields(n *yaml.Node, path string, fields map[string]reflect.Type, depth int) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if !w.key(key, path, seen) {
			continue
		}
		t, ok := fields[key.Value]
		if !ok {
			w.add(key.Line, join(path, key.Value), fmt.Sprintf("unknown field; allowed: %s", allowed(fields, key.Value)))
			continue
		}
		w.walk(val, join(path, key.Value), t, depth+1)
	}
}

func allowed(fields map[string]reflect.Type, got string) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	out := strings.Join(names, ", ")
	for _, k := range names {
		if strings.EqualFold(k, got) {
			return out + fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return out
}

func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name := strings.Split(tag, ",")[0]
		if name == "-" && tag == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "null"
	case "!!timestamp":
		return "the timestamp " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (w *walker) walk(n *yaml.Node, path string, t reflect.Type, depth int) {
	if n.Kind == yaml.AliasNode {
		w.alias(n, path, func(target *yaml.Node) { w.walk(target, path, t, depth) })
		return
	}
	if !w.enter(n, path, depth) {
		return
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	for t.Kind() == reflect.Pointer {
		if isNull {
			return
		}
		t = t.Elem()
	}
	if t == rawType || t.Kind() == reflect.Interface {
		w.walkAny(n, path, depth)
		return
	}
	if t != timeType && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		w.walkAny(n, path, depth) // the type checks itself when unmarshalled
		return
	}
	want := func(what string) {
		w.add(n.Line, path, fmt.Sprintf("expected %s, got %s", what, describe(n)))
	}
	switch {
	case t == timeType:
		var tm time.Time
		if n.Kind != yaml.ScalarNode || isNull || tm.UnmarshalText([]byte(n.Value)) != nil {
			want("a timestamp such as 2026-01-31T12:00:00Z")
		}
		return
	case t == durType:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			want("a duration in nanoseconds")
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if isNull {
			return
		}
		if n.Kind != yaml.MappingNode {
			want("an object")
			return
		}
		w.walkFields(n, path, structFields(t), depth)
	case reflect.Map:
		if isNull {
			return
		}
		if n.Kind != yaml.MappingNode {
			want("an object")
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if w.key(n.Content[i], path, seen) {
				w.walk(n.Content[i+1], join(path, n.Content[i].Value), t.Elem(), depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		if isNull {
			return
		}
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
				want("base64 text")
			}
			return
		}
		if n.Kind != yaml.SequenceNode {
			want("a list")
			return
		}
		if t.Kind() == reflect.Array && len(n.Content) > t.Len() {
			w.add(n.Line, path, fmt.Sprintf("at most %d items allowed, got %d", t.Len(), len(n.Content)))
		}
		for i, item := range n.Content {
			w.walk(item, fmt.Sprintf("%s[%d]", path, i), t.Elem(), depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull {
			want("a string")
		} else if n.Tag != "!!str" {
			w.add(n.Line, path, fmt.Sprintf("expected a string, got %s; put it in quotes: %q", describe(n), n.Value))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			want("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var v int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			want("a whole number")
		} else if n.Decode(&v) != nil || reflect.New(t).Elem().OverflowInt(v) {
			want(fmt.Sprintf("a whole number that fits in %d bits", t.Bits()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var v uint64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			want("a whole number")
		} else if strings.HasPrefix(n.Value, "-") || n.Decode(&v) != nil || reflect.New(t).Elem().OverflowUint(v) {
			want(fmt.Sprintf("a whole number from 0 that fits in %d bits", t.Bits()))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			want("a number")
		} else if !finite(n) {
			want("a finite number")
		}
	default:
		w.add(n.Line, path, fmt.Sprintf("this field (%s) cannot be set from a document", t))
	}
}

// walkAny walks a value of any shape for the rules every value obeys.
func (w *walker) walkAny(n *yaml.Node, path string, depth int) {
	if n.Kind == yaml.AliasNode {
		w.alias(n, path, func(target *yaml.Node) { w.walkAny(target, path, depth) })
		return
	}
	if !w.enter(n, path, depth) {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if w.key(n.Content[i], path, seen) {
				w.walkAny(n.Content[i+1], join(path, n.Content[i].Value), depth+1)
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			w.walkAny(item, fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case yaml.ScalarNode:
		if n.Tag == "!!float" && !finite(n) {
			w.add(n.Line, path, fmt.Sprintf("%s is not a number JSON can carry; quote it if you mean text", n.Value))
		}
	}
}

// finite reports whether a number node is neither infinite nor NaN.
func finite(n *yaml.Node) bool {
	var f float64
	if n.Decode(&f) != nil {
		return false
	}
	return !math.IsInf(f, 0) && !math.IsNaN(f)
}

// yamlError returns the line a parse error names and its message without
// the "yaml: line N:" prefix.
func yamlError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		if i := strings.IndexByte(msg, ':'); i >= 0 {
			msg = strings.TrimSpace(msg[i+1:])
		}
		return line, msg
	}
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i+5:], "%d", &line)
	}
	return line, msg
}
