package evidence

// JSON reading shared by the SARIF, Trivy, Grype, ZAP, k6, CycloneDX and
// SPDX parsers: a size-capped decoder, error translation into FormatError,
// streaming helpers, and a bounded collector for findings.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanDecoder returns a decoder over r that stops at MaxDocumentBytes;
// name is the format in the size error.
func scanDecoder(r io.Reader, name string) *json.Decoder {
	dec := json.NewDecoder(newLimitReader(r, name))
	dec.UseNumber()
	return dec
}

// scanJSONError turns a decoding error into a FormatError naming format.
func scanJSONError(format string, err error) error {
	var fe *FormatError
	var re *readError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return fe // the size limit's error, or one of ours
	case errors.As(err, &re):
		return re // the reader failed, not the document
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Errorf(format, "truncated JSON: the document ends early")
	case errors.As(err, &syn):
		return Errorf(format, "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(document)"
		}
		return Errorf(format, "field %s: got JSON %s, want %s", field, typ.Value, scanKind(typ.Type))
	}
	return Errorf(format, "%v", err)
}

// scanExpectDelim reads the next token and checks it is the delimiter d.
func scanExpectDelim(dec *json.Decoder, format string, d json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) && what == "the document" {
			return Errorf(format, "empty document")
		}
		return scanJSONError(format, err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		want := "an object"
		if d == '[' {
			want = "an array"
		}
		return Errorf(format, "%s is %s, want %s", what, scanTokenKind(tok), want)
	}
	return nil
}

// scanExpectEnd checks only white space follows the document.
func scanExpectEnd(dec *json.Decoder, format string) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return scanJSONError(format, err)
	}
	return Errorf(format, "unexpected data after the document: %s", scanTokenKind(tok))
}

// scanObject calls member for each key of an object whose '{' was
// already read; member must consume the value. It consumes the closing '}'.
func scanObject(dec *json.Decoder, format string, member func(key string) error) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return scanJSONError(format, err)
		}
		key, ok := tok.(string)
		if !ok {
			return Errorf(format, "invalid JSON: object key is %s", scanTokenKind(tok))
		}
		if err := member(key); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return scanJSONError(format, err)
	}
	return nil
}

// scanArray reads an array, calling elem for each element; elem must
// consume the element. A null is an empty array. what names the array in
// errors.
func scanArray(dec *json.Decoder, format, what string, elem func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return scanJSONError(format, err)
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return Errorf(format, "%s is %s, want an array", what, scanTokenKind(tok))
	}
	for dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return scanJSONError(format, err)
	}
	return nil
}

// scanDecode decodes the next value into v, translating errors.
func scanDecode(dec *json.Decoder, format, what string, v any) error {
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			field := what
			if typ.Field != "" {
				field += "." + typ.Field
			}
			return Errorf(format, "field %s: got JSON %s, want %s", field, typ.Value, scanKind(typ.Type))
		}
		var fe *FormatError
		var re *readError
		var syn *json.SyntaxError
		if errors.As(err, &fe) || errors.As(err, &re) || errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return scanJSONError(format, err)
		}
		// An error of one of the bounded types below: name where it was.
		return Errorf(format, "%s: %v", what, err)
	}
	return nil
}

// scanSkip consumes the next value without keeping it; memory stays
// bounded whatever the value's size.
func scanSkip(dec *json.Decoder, format string) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return scanJSONError(format, err)
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func scanTokenKind(tok any) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// scanText is a JSON string or number kept as its text; some tools
// (ZAP) write numbers as strings and others do not.
type scanText string

func (f *scanText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = scanText(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*f = scanText(n.String())
	return nil
}

// float parses the text as a finite number.
func (f scanText) float() (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(string(f)), 64)
	if err != nil || v != v || v > 1e300 || v < -1e300 {
		return 0, false
	}
	return v, true
}

// scanClip cuts s to at most n runes, marking the cut with "…", and drops
// invalid UTF-8.
func scanClip(s string, n int) string {
	orig := len(s)
	s = strings.ToValidUTF8(strings.TrimSpace(s), "")
	if len(s) <= n || utf8.RuneCountInString(s) <= n {
		if len(s) < orig {
			s = strings.Clone(s) // do not retain trimmed white space
		}
		return s
	}
	i := 0
	for k := range s {
		if i == n-1 {
			return s[:k] + "…" // a new string: the long one is not retained
		}
		i++
	}
	return s
}

// scanDigest normalizes a hex SHA-256 value, with or without a
// "sha256:" prefix or a "name@" in front, to "sha256:<hex>"; ok is false
// when it is not one.
func scanDigest(s string) (string, bool) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return "sha256:" + s, true
}

// scanSet collects distinct strings up to a cap.
type scanSet struct {
	max int
	m   map[string]struct{}
}

func newScanSet(max int) *scanSet { return &scanSet{max: max, m: map[string]struct{}{}} }

func (s *scanSet) add(v string) {
	if v == "" || len(s.m) >= s.max {
		return
	}
	s.m[v] = struct{}{}
}

// sorted returns the strings in order; never nil.
func (s *scanSet) sorted() []string {
	out := make([]string, 0, len(s.m))
	for v := range s.m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// scanFindings counts findings per severity exactly and keeps the most
// severe MaxFindings of them, in bounded memory.
type scanFindings struct {
	counts map[Severity]int
	kept   []Finding
	// Once MaxFindings are kept, a finding less severe than floor (the
	// least severe kept) can never be among the most severe MaxFindings.
	full  bool
	floor int
}

func newScanFindings() *scanFindings {
	return &scanFindings{counts: map[Severity]int{}}
}

// wants reports whether a finding of severity sev may be kept; a caller
// can skip building a finding it does not want and only count it.
func (c *scanFindings) wants(sev Severity) bool {
	return !c.full || sev.Rank() >= c.floor
}

// count counts a finding without keeping it.
func (c *scanFindings) count(sev Severity) { c.counts[sev]++ }

func (c *scanFindings) add(f Finding) {
	c.counts[f.Severity]++
	if !c.wants(f.Severity) {
		return
	}
	c.kept = append(c.kept, f)
	if len(c.kept) >= 2*MaxFindings {
		r := Report{Findings: c.kept}
		r.SortFindings()
		c.kept = r.Findings
		c.full, c.floor = true, c.kept[len(c.kept)-1].Severity.Rank()
	}
}

// finish records the severity facts under prefix and returns the kept
// findings, most severe first.
func (c *scanFindings) finish(facts map[string]any, prefix string) []Finding {
	SetSeverityFacts(facts, prefix, c.counts)
	r := Report{Findings: c.kept}
	r.SortFindings()
	return r.Findings
}

// scanSniff reports whether head, the start of a document, looks like a
// JSON object holding every one of keys as member names.
func scanSniff(head []byte, keys ...string) bool {
	if !looksJSON(head) || bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte("[")) {
		return false
	}
	for _, k := range keys {
		if !jsonHasKey(head, k) {
			return false
		}
	}
	return true
}

// scanSniffAny reports whether head contains any of keys as member names.
func scanSniffAny(head []byte, keys ...string) bool {
	for _, k := range keys {
		if jsonHasKey(head, k) {
			return true
		}
	}
	return false
}

// Bounded decoding. json.Unmarshal of a slice keeps every element, and an
// element can be far larger in memory than in the document ("{}," is 3
// bytes, a struct of strings 100); these types bound what a hostile
// document can make a parser hold.

// scanSmallArray is the size up to which a bounded list is decoded in one
// go, which is faster and holds at most a few hundred KB.
const scanSmallArray = 16 << 10

// scanListCap gives a scanList its maximum length.
type scanListCap interface{ max() int }

type (
	scanCapSmall struct{} // lists a real report keeps short: hashes, digests
	scanCapLarge struct{} // lists that grow with the project: vulnerabilities, alerts
)

func (scanCapSmall) max() int { return 1000 }
func (scanCapLarge) max() int { return 100000 }

// scanList is a JSON array of at most C.max() elements; a longer one is an
// error. null is an empty list.
type scanList[T any, C scanListCap] []T

func (l *scanList[T, C]) UnmarshalJSON(b []byte) error {
	var c C
	*l = nil
	if len(b) <= scanSmallArray {
		var all []T
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		if len(all) > c.max() {
			return fmt.Errorf("more than %d entries in one list", c.max())
		}
		*l = all
		return nil
	}
	return scanEachElement(b, func(dec *json.Decoder, i int) error {
		if i >= c.max() {
			return fmt.Errorf("more than %d entries in one list", c.max())
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*l = append(*l, v)
		return nil
	})
}

// scanFirst is a JSON array of which only the first element is kept; the
// others are checked to be JSON and dropped. Count says how many there were.
type scanFirst[T any] struct {
	First *T
	Count int
}

func (f *scanFirst[T]) UnmarshalJSON(b []byte) error {
	*f = scanFirst[T]{}
	if len(b) <= scanSmallArray {
		var all []T
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
		if f.Count = len(all); f.Count > 0 {
			f.First = &all[0]
		}
		return nil
	}
	return scanEachElement(b, func(dec *json.Decoder, i int) error {
		f.Count++
		if i > 0 {
			return dec.Decode(&scanDiscard{})
		}
		f.First = new(T)
		return dec.Decode(f.First)
	})
}

// scanEachElement calls elem for each element of the JSON array b (null is
// empty); elem must decode exactly one value.
func scanEachElement(b []byte, elem func(dec *json.Decoder, i int) error) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '[' {
		return errors.New("want an array")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return err
	}
	for i := 0; dec.More(); i++ {
		if err := elem(dec, i); err != nil {
			return err
		}
	}
	return nil
}

// scanDiscard accepts any JSON value and keeps nothing.
type scanDiscard struct{}

func (*scanDiscard) UnmarshalJSON([]byte) error { return nil }

// scanKind says what JSON a Go type takes, for error messages.
func scanKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return scanKind(t.Elem())
	}
	return t.String()
}
