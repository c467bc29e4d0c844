package signals

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Labels are the values a template may refer to: {{app}},
// {{environment}} and {{version}}.
type Labels struct {
	App         string
	Environment string
	Version     string
}

func (l Labels) value(name string) string {
	switch name {
	case "app":
		return l.App
	case "environment":
		return l.Environment
	case "version":
		return l.Version
	}
	return ""
}

// Escaper turns a label value into text that is safe at the place a
// template puts it.
type Escaper func(string) string

// Template is a parsed query or URL template. Placeholders are {{app}},
// {{environment}} and {{version}}, with optional spaces inside the
// braces; any other text is copied as it is. A Template is immutable and
// safe for concurrent use.
type Template struct {
	src   string
	parts []part
}

type part struct {
	text string // literal text when name is ""
	name string
}

// ParseTemplate parses src. It fails on an unknown placeholder, an
// unclosed "{{", a stray "}}" and on text that is not valid UTF-8, and
// the message names the offending byte offset.
func ParseTemplate(src string) (*Template, error) {
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("template is not valid UTF-8")
	}
	t := &Template{src: src}
	rest := src
	off := 0
	for rest != "" {
		open := strings.Index(rest, "{{")
		close := strings.Index(rest, "}}")
		if close >= 0 && (open < 0 || close < open) {
			return nil, fmt.Errorf(`unexpected "}}" at offset %d`, off+close)
		}
		if open < 0 {
			t.parts = append(t.parts, part{text: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, part{text: rest[:open]})
		}
		end := strings.Index(rest[open+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf(`unclosed "{{" at offset %d`, off+open)
		}
		name := strings.TrimSpace(rest[open+2 : open+2+end])
		switch name {
		case "app", "environment", "version":
		default:
			return nil, fmt.Errorf("unknown placeholder {{%s}} at offset %d (want {{app}}, {{environment}} or {{version}})", name, off+open)
		}
		t.parts = append(t.parts, part{name: name})
		consumed := open + 2 + end + 2
		rest = rest[consumed:]
		off += consumed
	}
	return t, nil
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// Execute renders the template with each label value passed through esc.
func (t *Template) Execute(l Labels, esc Escaper) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.text)
			continue
		}
		b.WriteString(esc(l.value(p.name)))
	}
	return b.String()
}

// EscapePromQL escapes s for the inside of a double-quoted PromQL string
// literal: backslash, double quote and control characters become escape
// sequences, so a label value can never end the literal or inject PromQL.
// Values that are not valid UTF-8 have their bad bytes replaced by U+FFFD.
func EscapePromQL(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// EscapeURL percent-encodes every byte of s except the unreserved
// characters of RFC 3986 (letters, digits, "-", ".", "_", "~"), so a value
// is safe in a path segment and in a query value alike.
func EscapeURL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
