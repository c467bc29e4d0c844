package evidence

import (
	"io"
)

// MaxDocumentBytes bounds one evidence document. A 50 MB SARIF file from a
// large CodeQL run fits; anything larger is rejected before parsing ends.
const MaxDocumentBytes = 128 << 20

// Options tell a parser what the caller knows about the document.
type Options struct {
	// Suite names the test suite kind for Type tests (default unit).
	Suite Suite
}

// Parser reads one document of its type. It must stop with an error at
// MaxDocumentBytes rather than read without limit, must not keep r, and
// returns a *FormatError for input that is not in its format.
type Parser func(r io.Reader, opts Options) (*Report, error)
