package evidence

import (
	"errors"
	"fmt"
	"io"
)

// limitReader reads at most MaxDocumentBytes from r. Reading byte
// MaxDocumentBytes+1 fails with a *FormatError, and every later Read fails
// the same way, so a parser that keeps reading after an error still cannot
// accept an oversized document.
type limitReader struct {
	r      io.Reader
	left   int64 // bytes that may still be read
	format string
	err    error // sticky
}

// newLimitReader bounds r to MaxDocumentBytes. format names the document in
// the error (e.g. "JUnit XML"). A reader that is already a *limitReader is
// returned as is, so parsers can wrap unconditionally.
func newLimitReader(r io.Reader, format string) io.Reader {
	if lr, ok := r.(*limitReader); ok {
		return lr
	}
	return &limitReader{r: r, left: MaxDocumentBytes, format: format}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Ask for one byte more than allowed so an exactly full document is
	// accepted and a longer one is noticed.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n = int(l.left)
		l.left = 0
		l.err = tooLarge(l.format)
		return n, l.err
	}
	l.left -= int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		// Transport errors are not the document's fault: mark them so that
		// asFormatError does not turn them into a FormatError.
		return n, &readError{err}
	}
	return n, err
}

// readError is a failure of the underlying reader, not of the document.
type readError struct{ err error }

func (e *readError) Error() string { return "read evidence: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// tooLarge is the error for a document over MaxDocumentBytes.
func tooLarge(format string) error {
	return Errorf(format, "document is larger than the %d MiB limit", MaxDocumentBytes>>20)
}

// asFormatError returns err unchanged when it already is a *FormatError (the
// limit reader's, say) or a failure of the underlying reader, and otherwise a FormatError for format whose message
// is prefix followed by err. Parsers use it so that an oversized document is
// reported as such and not as the syntax error the cut-off produced.
func asFormatError(format string, err error, prefix string, args ...any) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return fe
	}
	var re *readError
	if errors.As(err, &re) {
		return re
	}
	msg := fmt.Sprintf(prefix, args...)
	if msg != "" {
		msg += ": "
	}
	return &FormatError{Format: format, Msg: msg + err.Error()}
}
