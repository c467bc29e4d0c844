package evidence

// The dispatcher: Parse picks a parser for a document by its type and by
// sniffing its first bytes.
//
// Registering a parser. Each format file adds itself to the table with a
// package-level declaration, never by editing this file and never from
// init():
//
//	var _ = register(SAST, "sarif", sniffSARIF, parseSARIF)
//
// Go runs package-level variable initializers once, sequentially, before
// main and before any test, in the order of their files' names; so the
// table is complete before anything can call Parse and is only read
// afterwards, which makes it safe for concurrent use without a lock.
// register must not be called from anywhere else. For one type, sniffers
// are tried in registration order and the first that claims the head wins,
// so a sniffer should claim only what is unmistakably its format (a root
// element, a distinctive key), not "any JSON".
//
// A sniffer sees the first sniffBytes bytes of the document (fewer when the
// document is shorter), with any UTF-8 byte order mark removed. The helpers
// xmlRoot, looksJSON, jsonHasKey and firstLine serve most sniffers.

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// sniffBytes is how much of a document sniffers see. Formats whose
// distinguishing key may come late (a JSON object's keys are unordered)
// get a generous window.
const sniffBytes = 64 << 10

// sniffer is one registered format of a type.
type sniffer struct {
	name  string                 // Report.Format, e.g. "junit"
	sniff func(head []byte) bool // claims a document by its first bytes
	parse Parser
}

// parsers is the registry, filled by register during package
// initialization and read-only afterwards.
var parsers = map[Type][]sniffer{}

// register adds a parser for format name of type t. It is meant for
// package-level var declarations only (see the file comment) and panics on
// a duplicate or incomplete registration, which is a programming error.
// The bool result exists so it can be assigned to _.
func register(t Type, name string, sniff func(head []byte) bool, p Parser) bool {
	if _, err := ParseType(string(t)); err != nil {
		panic("evidence: register: " + err.Error())
	}
	if name == "" || sniff == nil || p == nil {
		panic("evidence: register: incomplete registration for " + string(t))
	}
	for _, s := range parsers[t] {
		if s.name == name {
			panic("evidence: register: duplicate format " + name + " for " + string(t))
		}
	}
	parsers[t] = append(parsers[t], sniffer{name: name, sniff: sniff, parse: p})
	return true
}

// Formats lists the format names accepted for type t, in sniffing order.
func Formats(t Type) []string {
	var names []string
	for _, s := range parsers[t] {
		names = append(names, s.name)
	}
	return names
}

// Parse reads one evidence document of type t, recognises its format from
// its first bytes and parses it. It never reads more than MaxDocumentBytes:
// a longer document fails with a *FormatError, even when its parser would
// stop reading early, because Parse reads the rest of r to its end. Errors
// about the document are *FormatError; an error from r itself is returned
// wrapped. Parse does not keep r and is safe for concurrent use.
func Parse(t Type, r io.Reader, opts Options) (*Report, error) {
	return parse(t, "", r, opts)
}

// ParseFormat is Parse with the format named by the caller (one of
// Formats(t)) instead of sniffed; the document must still be in it.
func ParseFormat(t Type, format string, r io.Reader, opts Options) (*Report, error) {
	if format == "" {
		return nil, fmt.Errorf("no format given for %s evidence", t)
	}
	return parse(t, format, r, opts)
}

func parse(t Type, format string, r io.Reader, opts Options) (*Report, error) {
	if _, err := ParseType(string(t)); err != nil {
		return nil, err
	}
	return parseWith(t, parsers[t], format, r, opts)
}

// parseWith is parse over the candidate parsers cands of type t.
func parseWith(t Type, cands []sniffer, format string, r io.Reader, opts Options) (*Report, error) {
	if len(cands) == 0 {
		return nil, fmt.Errorf("no parser for %s evidence yet", t)
	}
	if opts.Suite == "" {
		opts.Suite = Unit
	} else if !validSuite(opts.Suite) {
		names := make([]string, len(Suites))
		for i, s := range Suites {
			names[i] = string(s)
		}
		return nil, fmt.Errorf("unknown test suite %q; suites: %s", opts.Suite, strings.Join(names, ", "))
	}

	what := string(t) + " evidence"
	lr := newLimitReader(r, what)
	br := bufio.NewReaderSize(lr, sniffBytes)
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, asFormatError(what, err, "")
	}
	if bytes.HasPrefix(head, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
		head = head[len(utf8BOM):]
	}

	var chosen *sniffer
	for i := range cands {
		s := &cands[i]
		if format != "" && s.name == format || format == "" && s.sniff(head) {
			chosen = s
			break
		}
	}
	if chosen == nil {
		return nil, unrecognised(t, format, head)
	}
	rep, err := chosen.parse(br, opts)
	if err != nil {
		return nil, err
	}
	// Read the rest so an oversized document is rejected even when the
	// parser had what it needed before the end.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, asFormatError(what, err, "")
	}
	if rep.Type == "" {
		rep.Type = t
	}
	if rep.Format == "" {
		rep.Format = chosen.name
	}
	return rep, nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// unrecognised explains why no parser of t took the document: which
// formats t accepts and, when another type's sniffer claims it, what it
// looks like.
func unrecognised(t Type, format string, head []byte) error {
	what := string(t) + " evidence"
	accepted := strings.Join(Formats(t), ", ")
	if format != "" {
		return Errorf(what, "unknown format %q; formats: %s", format, accepted)
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return Errorf(what, "document is empty; formats: %s", accepted)
	}
	msg := "document is in none of the accepted formats (" + accepted + ")"
	if like := lookalike(t, head); like != "" {
		msg += "; it looks like " + like
	}
	return Errorf(what, "%s", msg)
}

// lookalike names the first other type's format that claims head, as
// "junit (tests evidence)", or "".
func lookalike(t Type, head []byte) string {
	for _, other := range Types {
		if other == t {
			continue
		}
		for _, s := range parsers[other] {
			if s.sniff(head) {
				return s.name + " (" + string(other) + " evidence)"
			}
		}
	}
	switch {
	case xmlRoot(head) != "":
		return "XML with root element <" + xmlRoot(head) + ">"
	case looksJSON(head):
		return "JSON"
	}
	return ""
}

func validSuite(s Suite) bool {
	for _, x := range Suites {
		if x == s {
			return true
		}
	}
	return false
}

// xmlRoot returns the local name of head's root element when head is the
// start of an XML document (after an optional declaration, comments,
// processing instructions and DOCTYPE), or "".
func xmlRoot(head []byte) string {
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return ""
	}
	d := xml.NewDecoder(bytes.NewReader(trimmed))
	d.Strict = false
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for i := 0; i < 64; i++ {
		tok, err := d.RawToken()
		if err != nil {
			return ""
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			return tok.Name.Local
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) != 0 {
				return ""
			}
		}
	}
	return ""
}

// looksJSON reports whether head starts, after white space, like a JSON
// object or array.
func looksJSON(head []byte) bool {
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
}

// jsonHasKey reports whether head contains key as a JSON object key, i.e.
// the quoted key followed by optional white space and a colon. It is a
// byte search, good for sniffing, not for parsing.
func jsonHasKey(head []byte, key string) bool {
	q := `"` + key + `"`
	for rest := head; ; {
		i := bytes.Index(rest, []byte(q))
		if i < 0 {
			return false
		}
		rest = rest[i+len(q):]
		after := bytes.TrimLeft(rest, " \t\r\n")
		if len(after) > 0 && after[0] == ':' {
			return true
		}
	}
}

// firstLine returns head's first line that is not blank, without its line
// ending and surrounding white space.
func firstLine(head []byte) []byte {
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return line
		}
	}
	return nil
}
