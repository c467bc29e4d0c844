package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"
)

// ExportWriter writes an export (see VerifyExport for the layout) one line
// at a time, so a server can stream a log of any length straight from its
// store without holding it in memory. The header and the checkpoints are
// written by NewExportWriter; entries follow with WriteEntry; Close flushes.
//
// An ExportWriter is not safe for concurrent use. After any error the export
// is incomplete and every later call returns the same error: the caller
// should abort the response rather than send a truncated export, which a
// verifier would (rightly) report as broken or unsigned.
type ExportWriter struct {
	w       *bufio.Writer
	buf     []byte
	lastSeq int64
	err     error
}

// NewExportWriter writes the header and the checkpoints to w. An empty
// h.Format is set to ExportFormat; any other value is an error.
// Checkpoints are written in the order given; the server should pass every
// checkpoint it holds (Store.Checkpoints) plus one signed at export time, so
// the whole export is covered.
func NewExportWriter(w io.Writer, h Header, checkpoints []Checkpoint) (*ExportWriter, error) {
	if h.Format == "" {
		h.Format = ExportFormat
	}
	if h.Format != ExportFormat {
		return nil, fmt.Errorf("write export: format %q is not %q", h.Format, ExportFormat)
	}
	x := &ExportWriter{w: bufio.NewWriterSize(w, 64<<10)}
	x.writeLine(Line{Header: &h})
	for i := range checkpoints {
		x.writeLine(Line{Checkpoint: &checkpoints[i]})
	}
	if x.err != nil {
		return nil, x.err
	}
	return x, nil
}

// WriteEntry appends one entry. Entries must come in sequence order; an
// entry whose Seq is not greater than the previous one's is refused, since
// the export would not verify.
func (x *ExportWriter) WriteEntry(e *Entry) error {
	if x.err != nil {
		return x.err
	}
	if e.Seq <= x.lastSeq {
		x.err = fmt.Errorf("write export: entry %d after entry %d: entries must be in sequence order", e.Seq, x.lastSeq)
		return x.err
	}
	x.lastSeq = e.Seq
	b, err := appendEntryJSON(append(x.buf[:0], `{"entry":`...), e)
	if err != nil {
		x.err = fmt.Errorf("write export: %w", err)
		return x.err
	}
	x.buf = append(b, "}\n"...)
	if _, err := x.w.Write(x.buf); err != nil {
		x.err = fmt.Errorf("write export: %w", err)
	}
	return x.err
}

// Close flushes what is buffered. It does not close the underlying writer.
func (x *ExportWriter) Close() error {
	if x.err != nil {
		return x.err
	}
	if err := x.w.Flush(); err != nil {
		x.err = fmt.Errorf("write export: %w", err)
		return x.err
	}
	x.err = errors.New("write export: writer is closed")
	return nil
}

func (x *ExportWriter) writeLine(l Line) {
	if x.err != nil {
		return
	}
	b, err := json.Marshal(l)
	if err != nil {
		x.err = fmt.Errorf("write export: %w", err)
		return
	}
	b = append(b, '\n')
	if _, err := x.w.Write(b); err != nil {
		x.err = fmt.Errorf("write export: %w", err)
	}
}

// WriteExport writes a whole export to w: the header, the checkpoints, then
// every entry that entries yields, in order. It stops at the first error,
// whether from entries or from w, and returns it; what was written by then
// is not a valid export.
func WriteExport(w io.Writer, h Header, checkpoints []Checkpoint, entries iter.Seq2[*Entry, error]) error {
	x, err := NewExportWriter(w, h, checkpoints)
	if err != nil {
		return err
	}
	for e, err := range entries {
		if err != nil {
			return fmt.Errorf("write export: read entries: %w", err)
		}
		if err := x.WriteEntry(e); err != nil {
			return err
		}
	}
	return x.Close()
}

// appendEntryJSON appends e as encoding/json would marshal it, without
// reflection. Strings that need escaping take the slow path through
// encoding/json; a time outside the years 0 to 9999, which JSON cannot
// carry, is an error.
func appendEntryJSON(b []byte, e *Entry) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"time":`...)
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("entry %d: time %v cannot be written as JSON (years 0 to 9999)", e.Seq, e.Time)
	}
	b = append(b, '"')
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "actor", e.Actor)
	b = appendField(b, "action", e.Action)
	b = appendField(b, "kind", e.Kind)
	b = appendField(b, "name", e.Name)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, e.Revision, 10)
	if e.Reason != "" {
		b = appendField(b, "reason", e.Reason)
	}
	b = appendField(b, "stateHash", e.StateHash)
	b = appendField(b, "prevHash", e.PrevHash)
	b = appendField(b, "hash", e.Hash)
	return append(b, '}'), nil
}

func appendField(b []byte, name, s string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, s)
}

func appendString(b []byte, s string) []byte {
	if plainString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// plainString reports whether s is printable ASCII that encoding/json
// writes as it is (it escapes '"', '\\', '<', '>' and '&').
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// parseEntryLine decodes a line in exactly the form ExportWriter writes
// for an entry whose strings need no escaping, without reflection; that is
// nearly every line of an export. It reports false for anything else,
// leaving the line to the strict encoding/json path. What it accepts, it
// decodes exactly as encoding/json would (FuzzParseEntryLine checks this).
func parseEntryLine(raw []byte, e *Entry) bool {
	p := entryParser{b: raw}
	*e = Entry{}
	ok := p.lit(`{"entry":{"seq":`) && p.int(&e.Seq) &&
		p.lit(`,"time":`) && p.time(&e.Time) &&
		p.lit(`,"actor":`) && p.str(&e.Actor) &&
		p.lit(`,"action":`) && p.str(&e.Action) &&
		p.lit(`,"kind":`) && p.str(&e.Kind) &&
		p.lit(`,"name":`) && p.str(&e.Name) &&
		p.lit(`,"revision":`) && p.int(&e.Revision)
	if !ok {
		return false
	}
	if p.lit(`,"reason":`) && (!p.str(&e.Reason) || e.Reason == "") {
		return false // encoding/json omits an empty reason; leave odd lines to it
	}
	return p.lit(`,"stateHash":`) && p.str(&e.StateHash) &&
		p.lit(`,"prevHash":`) && p.str(&e.PrevHash) &&
		p.lit(`,"hash":`) && p.str(&e.Hash) &&
		p.lit(`}}`) && len(p.b) == 0
}

type entryParser struct{ b []byte }

// lit consumes s if the input starts with it.
func (p *entryParser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// int consumes a JSON integer that fits in an int64.
func (p *entryParser) int(v *int64) bool {
	i := 0
	if i < len(p.b) && p.b[i] == '-' {
		i++
	}
	start := i
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		i++
	}
	digits := i - start
	if digits == 0 || digits > 19 || (digits > 1 && p.b[start] == '0') {
		return false
	}
	n, err := strconv.ParseInt(string(p.b[:i]), 10, 64)
	if err != nil {
		return false
	}
	*v = n
	p.b = p.b[i:]
	return true
}

// raw consumes a JSON string of printable ASCII without escapes and
// returns its contents.
func (p *entryParser) raw() ([]byte, bool) {
	if len(p.b) == 0 || p.b[0] != '"' {
		return nil, false
	}
	for i := 1; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			s := p.b[1:i]
			p.b = p.b[i+1:]
			return s, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

func (p *entryParser) str(v *string) bool {
	s, ok := p.raw()
	if ok {
		*v = string(s)
	}
	return ok
}

func (p *entryParser) time(v *time.Time) bool {
	s, ok := p.raw()
	return ok && v.UnmarshalText(s) == nil
}
