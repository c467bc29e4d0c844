package evidence

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// fillReader is a reader of n bytes of b, generated without allocating them.
type fillReader struct {
	n int64
	b byte
}

func (f *fillReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	p[0] = f.b
	for i := 1; i < len(p); i *= 2 {
		copy(p[i:], p[:i])
	}
	f.n -= int64(len(p))
	return len(p), nil
}

func TestLimitReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size    int64
		wantErr bool
	}{
		{0, false},
		{MaxDocumentBytes, false},
		{MaxDocumentBytes + 1, true},
		{MaxDocumentBytes + 1<<20, true},
	} {
		lr := newLimitReader(&fillReader{n: tc.size, b: 'x'}, "Test format")
		n, err := io.Copy(io.Discard, lr)
		if !tc.wantErr {
			if err != nil || n != tc.size {
				t.Errorf("size %d: read %d, %v", tc.size, n, err)
			}
			continue
		}
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Format != "Test format" || !strings.Contains(fe.Msg, "larger than the 128 MiB limit") {
			t.Errorf("size %d: err = %v, want the size FormatError", tc.size, err)
		}
		if n != MaxDocumentBytes {
			t.Errorf("size %d: read %d bytes before the error, want %d", tc.size, n, MaxDocumentBytes)
		}
		// The error is sticky.
		if _, err := lr.Read(make([]byte, 10)); !errors.As(err, &fe) {
			t.Errorf("size %d: read after the limit: %v", tc.size, err)
		}
	}
}

type brokenReader struct{}

func (brokenReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadErrorsAreNotFormatErrors(t *testing.T) {
	t.Parallel()
	_, err := parseLCOV(brokenReader{}, Options{})
	var fe *FormatError
	if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("err = %v (%T), want the read error, not a FormatError", err, err)
	}
}

// tccSmallLimit is a limitReader with a limit of n bytes instead of
// MaxDocumentBytes. Parsers and Parse keep a reader that already is a
// *limitReader, so it lets the tests below exercise the real mechanism on
// small documents; TestLimitReader checks the real limit.
func tccSmallLimit(r io.Reader, n int64) io.Reader {
	return &limitReader{r: r, left: n, format: "small"}
}

// TestParseRejectsOversized sends documents just over the limit through
// the dispatcher; each parser would otherwise accept what it had read.
func TestParseRejectsOversized(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	for _, tc := range []struct {
		typ        Type
		head       string
		fillReader byte
	}{
		{Changeset, "a.go\n", '\n'},                       // blank lines are skipped
		{Coverage, "mode: set\na.go:1.1,2.2 1 1\n", '\n'}, // likewise
		{Coverage, "TN:\n", '\n'},
		{Coverage, "<coverage>", ' '},
		{Tests, "<testsuites>\n", ' '}, // white space inside the root
		{Tests, `{"Action":"pass","Package":"p"}` + "\n", '\n'},
	} {
		for _, extra := range []int64{0, 1} {
			body := io.MultiReader(strings.NewReader(tc.head), &fillReader{n: limit - int64(len(tc.head)) + extra, b: tc.fillReader})
			_, err := Parse(tc.typ, tccSmallLimit(body, limit), Options{})
			var fe *FormatError
			gotLimit := errors.As(err, &fe) && strings.Contains(err.Error(), "larger than the 128 MiB limit")
			if gotLimit != (extra > 0) {
				t.Errorf("%s %q, %d bytes over: err = %v", tc.typ, tc.head, extra, err)
			}
		}
	}
}

// TestParseDrains checks Parse rejects an oversized document even when the
// parser returns before reading it all.
func TestParseDrains(t *testing.T) {
	t.Parallel()
	early := []sniffer{{
		name:  "first-byte",
		sniff: func([]byte) bool { return true },
		parse: func(r io.Reader, _ Options) (*Report, error) {
			_, err := r.Read(make([]byte, 1))
			return &Report{Facts: map[string]any{}}, err
		},
	}}
	const limit = 1 << 16
	for _, n := range []int64{limit, limit + 1} {
		rep, err := parseWith(Changeset, early, "", tccSmallLimit(&fillReader{n: n, b: 'x'}, limit), Options{})
		if n <= limit && (err != nil || rep.Type != Changeset || rep.Format != "first-byte") {
			t.Errorf("%d bytes: %v, %v", n, rep, err)
		}
		if n > limit && (err == nil || !strings.Contains(err.Error(), "larger than")) {
			t.Errorf("%d bytes: err = %v, want the size limit", n, err)
		}
	}
}
