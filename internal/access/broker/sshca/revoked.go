package sshca

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// The revoked serials file is a KRL specification as ssh-keygen -k reads
// it (see "KEY REVOCATION LISTS" in ssh-keygen(1)): one directive a line,
// "#" comments and blank lines ignored. The broker appends "serial: N"
// lines; operators may add "serial: N-M" ranges and "id: KEYID" lines.

// spanKind is what one line of the file revokes.
type spanKind int

const (
	lineNone   spanKind = iota // blank or comment
	lineSerial                 // serial: N or serial: N-M
	lineID                     // id: KEYID
	lineOther                  // a directive this reader does not apply (key:, sha1:, ...)
)

type specLine struct {
	kind     spanKind
	lo, hi   uint64
	id       string
	original string
}

// parseSpecLine reads one line of a KRL specification. Serials are read
// as ssh-keygen reads them (strtoull with base 0: decimal, 0x hex, 0 octal).
func parseSpecLine(line string) (specLine, error) {
	l := strings.TrimSpace(line)
	if l == "" || strings.HasPrefix(l, "#") {
		return specLine{kind: lineNone}, nil
	}
	directive, value, ok := strings.Cut(l, ":")
	if !ok {
		return specLine{}, fmt.Errorf("%q is not a KRL directive (serial: N, id: KEYID, ...)", l)
	}
	value = strings.TrimSpace(value)
	switch strings.ToLower(directive) {
	case "serial":
		loText, hiText, isRange := strings.Cut(value, "-")
		lo, err := parseSerial(loText)
		if err != nil {
			return specLine{}, err
		}
		hi := lo
		if isRange {
			if hi, err = parseSerial(hiText); err != nil {
				return specLine{}, err
			}
			if hi < lo {
				return specLine{}, fmt.Errorf("serial range %q ends before it starts", value)
			}
		}
		return specLine{kind: lineSerial, lo: lo, hi: hi}, nil
	case "id":
		if value == "" {
			return specLine{}, errors.New(`"id:" without a key ID`)
		}
		return specLine{kind: lineID, id: value}, nil
	default:
		return specLine{kind: lineOther, original: l}, nil
	}
}

func parseSerial(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.Contains(s, "_") {
		return 0, fmt.Errorf("serial %q is not a number", s)
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("serial %q is not a number", s)
	}
	return n, nil
}

// appendSerial adds "serial: N" to the file at path unless a line already
// revokes N, creating the file (mode 0644: serials are not secret) when
// needed. Lines it does not understand are left alone.
func appendSerial(path string, serial uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open revoked serials file: %w", err)
	}
	defer f.Close()
	content, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read revoked serials file %s: %w", path, err)
	}
	for line := range strings.Lines(string(content)) {
		sl, err := parseSpecLine(line)
		if err == nil && sl.kind == lineSerial && sl.lo <= serial && serial <= sl.hi {
			return nil
		}
	}
	var add []byte
	if len(content) > 0 && content[len(content)-1] != '\n' {
		add = append(add, '\n')
	}
	add = fmt.Appendf(add, "serial: %d\n", serial)
	if _, err := f.Write(add); err != nil {
		return fmt.Errorf("append to revoked serials file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync revoked serials file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close revoked serials file %s: %w", path, err)
	}
	return nil
}

// RevocationList answers whether a certificate is revoked according to a
// revoked serials file, for Go SSH servers (ssh.CertChecker.IsRevoked).
// It applies "serial: N", "serial: N-M" and "id: KEYID" lines, and rereads
// the file whenever it changed (size, modification time or identity) since
// the last check. A missing file revokes nothing. A file that cannot be
// read or holds a line this reader cannot apply (key:, sha1:, hash:, a
// malformed serial) revokes every certificate until it is fixed: failing
// closed rather than missing a revocation.
//
// The serials belong to one CA: use one RevocationList per CA. It is safe
// for concurrent use.
type RevocationList struct {
	path string

	mu      sync.Mutex
	info    os.FileInfo // of the file last loaded; nil when it did not exist
	serials [][2]uint64
	ids     map[string]bool
	err     error
}

// OpenRevocationList loads the revoked serials file at path. The error is
// the one IsRevoked would fail closed on; the list is returned either way.
func OpenRevocationList(path string) (*RevocationList, error) {
	l := &RevocationList{path: path}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refresh()
	return l, l.err
}

// Revoked returns a function for ssh.CertChecker.IsRevoked that reads the
// revoked serials file at path; see RevocationList.
func Revoked(path string) (func(cert *ssh.Certificate) bool, error) {
	l, err := OpenRevocationList(path)
	return l.IsRevoked, err
}

// Err returns why the list currently fails closed, or nil.
func (l *RevocationList) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refresh()
	return l.err
}

// IsRevoked reports whether cert is revoked, rereading the file first when
// it changed. It reports true for every certificate while the file cannot
// be read or parsed.
func (l *RevocationList) IsRevoked(cert *ssh.Certificate) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refresh()
	if l.err != nil {
		return true
	}
	if l.ids[cert.KeyId] {
		return true
	}
	for _, s := range l.serials {
		if s[0] <= cert.Serial && cert.Serial <= s[1] {
			return true
		}
	}
	return false
}

// refresh rereads the file when it changed. l.mu is held.
func (l *RevocationList) refresh() {
	info, err := os.Stat(l.path)
	if errors.Is(err, os.ErrNotExist) {
		l.info, l.serials, l.ids, l.err = nil, nil, nil, nil
		return
	}
	if err != nil {
		l.info, l.err = nil, fmt.Errorf("revoked serials file: %w", err)
		return
	}
	if l.info != nil && l.err == nil && os.SameFile(l.info, info) &&
		l.info.Size() == info.Size() && l.info.ModTime().Equal(info.ModTime()) {
		return
	}
	l.load(info)
}

func (l *RevocationList) load(info os.FileInfo) {
	l.info, l.serials, l.ids = nil, nil, nil
	b, err := os.ReadFile(l.path)
	if err != nil {
		l.err = fmt.Errorf("revoked serials file: %w", err)
		return
	}
	var serials [][2]uint64
	ids := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		sl, err := parseSpecLine(sc.Text())
		if err != nil {
			l.err = fmt.Errorf("revoked serials file %s line %d: %w", l.path, n, err)
			return
		}
		switch sl.kind {
		case lineSerial:
			serials = append(serials, [2]uint64{sl.lo, sl.hi})
		case lineID:
			ids[sl.id] = true
		case lineOther:
			l.err = fmt.Errorf("revoked serials file %s line %d: %q is a KRL directive this reader does not apply; only serial: and id: lines are supported", l.path, n, sl.original)
			return
		}
	}
	if err := sc.Err(); err != nil {
		l.err = fmt.Errorf("revoked serials file %s: %w", l.path, err)
		return
	}
	// Keep the stat taken before reading: if the file changed while it was
	// read, the next check sees a difference and reads it again.
	l.info, l.serials, l.ids, l.err = info, serials, ids, nil
}
