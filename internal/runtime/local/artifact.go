package local

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// DigestPrefix starts every artifact digest.
const DigestPrefix = "sha256:"

// Defaults for the artifact store.
const (
	DefaultMaxArtifactSize  int64 = 1 << 30 // 1 GiB
	DefaultMaxUnpackedSize  int64 = 2 << 30 // 2 GiB
	DefaultMaxUnpackedFiles       = 10000
)

// UnpackLimits bound what a .tar.gz artifact may unpack to.
type UnpackLimits struct {
	MaxBytes int64 // total bytes of regular files; default 2 GiB
	MaxFiles int   // entries of any kind; default 10000
}

// Artifacts is the content-addressed artifact store under a data directory:
// <dir>/sha256/<hex> holds the bytes exactly as received, and a .tar.gz
// artifact is also unpacked once to <dir>/unpacked/<hex>/. It is safe for
// concurrent use.
type Artifacts struct {
	dir     string
	maxSize int64
	limits  UnpackLimits

	mu sync.Mutex
	// verified remembers files hashed in this process, by their identity
	// (inode, size, mtime, ctime) at the time: a file whose identity is
	// unchanged since it was hashed is not hashed again.
	verified map[string]fileStamp
}

type fileStamp struct {
	ino, size        int64
	mtimeNs, ctimeNs int64
}

// NewArtifacts opens (creating) the store in dir. maxSize <= 0 means
// DefaultMaxArtifactSize; zero limits take their defaults.
func NewArtifacts(dir string, maxSize int64, limits UnpackLimits) (*Artifacts, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxArtifactSize
	}
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = DefaultMaxUnpackedSize
	}
	if limits.MaxFiles <= 0 {
		limits.MaxFiles = DefaultMaxUnpackedFiles
	}
	for _, d := range []string{dir, filepath.Join(dir, "sha256"), filepath.Join(dir, "unpacked"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("artifact store: %w", err)
		}
	}
	return &Artifacts{dir: dir, maxSize: maxSize, limits: limits, verified: map[string]fileStamp{}}, nil
}

// ParseDigest checks that s is "sha256:" and 64 lower-case hex digits and
// returns the hex part.
func ParseDigest(s string) (string, error) {
	hx, ok := strings.CutPrefix(s, DigestPrefix)
	if !ok || len(hx) != 64 {
		return "", fmt.Errorf("digest %q must be %s followed by 64 hex digits", s, DigestPrefix)
	}
	for _, c := range hx {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("digest %q must be lower-case hex", s)
		}
	}
	return hx, nil
}

// DigestMismatchError reports bytes whose sha256 is not the one they were
// supposed to have.
type DigestMismatchError struct {
	What string // what was hashed: "received artifact", "stored artifact", ...
	Want string
	Got  string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s digest mismatch: want %s, got %s; refusing to store or run bytes that are not the release's artifact", e.What, e.Want, e.Got)
}

// Path returns where the artifact with this digest is (or would be) stored.
func (a *Artifacts) Path(digest string) (string, error) {
	hx, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(a.dir, "sha256", hx), nil
}

// Put copies the bytes of r into the store under wantDigest and returns the
// stored file's path. It refuses, storing nothing, when the bytes' sha256 is
// not wantDigest (a *DigestMismatchError naming both), when they exceed the
// size limit, or when a gzip artifact does not unpack safely. Putting an
// artifact already stored is cheap in disk but still reads and checks r.
func (a *Artifacts) Put(r io.Reader, wantDigest string) (string, error) {
	hx, err := ParseDigest(wantDigest)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Join(a.dir, "tmp"), "put-*")
	if err != nil {
		return "", fmt.Errorf("artifact store: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, a.maxSize+1))
	if err != nil {
		return "", fmt.Errorf("store artifact %s: %w", wantDigest, err)
	}
	if n > a.maxSize {
		return "", fmt.Errorf("store artifact %s: larger than the %d byte limit", wantDigest, a.maxSize)
	}
	got := DigestPrefix + hex.EncodeToString(h.Sum(nil))
	if got != wantDigest {
		return "", &DigestMismatchError{What: "received artifact", Want: wantDigest, Got: got}
	}
	if err := tmp.Chmod(0o500); err != nil {
		return "", fmt.Errorf("store artifact %s: %w", wantDigest, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("store artifact %s: %w", wantDigest, err)
	}
	if isGzip(tmp.Name()) {
		if err := a.unpack(tmp.Name(), hx); err != nil {
			return "", fmt.Errorf("store artifact %s: %w", wantDigest, err)
		}
	}
	dst := filepath.Join(a.dir, "sha256", hx)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("store artifact %s: %w", wantDigest, err)
	}
	return dst, nil
}

// Has reports whether an artifact with this digest is stored.
func (a *Artifacts) Has(digest string) bool {
	p, err := a.Path(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Executable verifies the stored artifact against its digest and returns the
// path of the file to execute: the artifact itself, or for a .tar.gz the
// entrypoint inside its unpacked tree (the named one, or else the single
// executable regular file). The bytes are hashed again unless this process
// already hashed the same unchanged file; a file whose sha256 differs from
// what it must be is refused with a *DigestMismatchError.
func (a *Artifacts) Executable(digest, entrypoint string) (string, error) {
	hx, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	stored := filepath.Join(a.dir, "sha256", hx)
	if _, err := os.Stat(stored); err != nil {
		return "", fmt.Errorf("artifact %s is not in the store (put it first): %w", digest, err)
	}
	if err := a.verify(stored, digest, "stored artifact"); err != nil {
		return "", err
	}
	if !isGzip(stored) {
		if entrypoint != "" {
			return "", fmt.Errorf("artifact %s is a single executable, not a .tar.gz: it has no entrypoint %q", digest, entrypoint)
		}
		return stored, nil
	}
	root := filepath.Join(a.dir, "unpacked", hx)
	m, err := readManifest(root)
	if err != nil {
		return "", fmt.Errorf("artifact %s: unpacked tree: %w", digest, err)
	}
	if entrypoint == "" {
		if len(m.Executables) != 1 {
			return "", fmt.Errorf("artifact %s holds %d executable files %q; name the entrypoint", digest, len(m.Executables), m.Executables)
		}
		entrypoint = m.Executables[0]
	}
	entrypoint = path.Clean(strings.TrimPrefix(entrypoint, "./"))
	want, ok := m.Files[entrypoint]
	if !ok {
		return "", fmt.Errorf("artifact %s has no regular file %q", digest, entrypoint)
	}
	file := filepath.Join(root, filepath.FromSlash(entrypoint))
	if err := a.verify(file, want, fmt.Sprintf("entrypoint %q of artifact %s", entrypoint, digest)); err != nil {
		return "", err
	}
	return file, nil
}

// verify hashes file (unless already hashed unchanged) and compares.
func (a *Artifacts) verify(file, want, what string) error {
	fi, err := os.Lstat(file)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %s is not a regular file", what, file)
	}
	st := stampOf(fi)
	a.mu.Lock()
	prev, ok := a.verified[file]
	a.mu.Unlock()
	if ok && prev == st {
		return nil
	}
	got, err := digestFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if got != want {
		a.mu.Lock()
		delete(a.verified, file)
		a.mu.Unlock()
		return &DigestMismatchError{What: what, Want: want, Got: got}
	}
	a.mu.Lock()
	a.verified[file] = st
	a.mu.Unlock()
	return nil
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtimeNs: fi.ModTime().UnixNano()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(s.Ino)
		st.ctimeNs = s.Ctim.Sec*1e9 + s.Ctim.Nsec
	}
	return st
}

func digestFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

func isGzip(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && b[0] == 0x1f && b[1] == 0x8b
}

// manifest records what an unpacked tree holds, so an entrypoint can be
// verified before each start.
type manifest struct {
	Files       map[string]string `json:"files"`       // slash path -> digest
	Executables []string          `json:"executables"` // slash paths, sorted
}

const manifestName = ".airlock-manifest.json"

func readManifest(root string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(root, manifestName))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// unpack extracts the tarball at src into unpacked/<hx>. It refuses absolute
// paths, "..", hard links, devices, symlinks that are absolute or go up, and
// entries below a symlink; it stops at the size and file count limits.
func (a *Artifacts) unpack(src, hx string) error {
	final := filepath.Join(a.dir, "unpacked", hx)
	if _, err := readManifest(final); err == nil {
		return nil // unpacked before
	}
	root, err := os.MkdirTemp(filepath.Join(a.dir, "tmp"), "unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	m := manifest{Files: map[string]string{}}
	var total int64
	files := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		files++
		if files > a.limits.MaxFiles {
			return fmt.Errorf("tar: more than %d entries", a.limits.MaxFiles)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		if name == manifestName {
			return fmt.Errorf("tar: entry %q uses a reserved name", hdr.Name)
		}
		dst := filepath.Join(root, filepath.FromSlash(name))
		if err := noSymlinkParents(root, name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if total+hdr.Size > a.limits.MaxBytes {
				return fmt.Errorf("tar: unpacked files exceed %d bytes", a.limits.MaxBytes)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			mode := os.FileMode(0o400)
			exec := hdr.Mode&0o111 != 0
			if exec {
				mode = 0o500
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("tar: entry %q: %w", hdr.Name, err)
			}
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(tr, a.limits.MaxBytes-total+1))
			cerr := out.Close()
			if err != nil {
				return fmt.Errorf("tar: entry %q: %w", hdr.Name, err)
			}
			if cerr != nil {
				return cerr
			}
			total += n
			if total > a.limits.MaxBytes {
				return fmt.Errorf("tar: unpacked files exceed %d bytes", a.limits.MaxBytes)
			}
			if err := os.Chmod(dst, mode); err != nil {
				return err
			}
			m.Files[name] = DigestPrefix + hex.EncodeToString(h.Sum(nil))
			if exec {
				m.Executables = append(m.Executables, name)
			}
		case tar.TypeSymlink:
			t := hdr.Linkname
			if t == "" || path.IsAbs(t) || slices.Contains(strings.Split(t, "/"), "..") {
				return fmt.Errorf("tar: symlink %q -> %q points outside the artifact (only relative links that do not go up are allowed)", hdr.Name, t)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			if err := os.Symlink(t, dst); err != nil {
				return fmt.Errorf("tar: entry %q: %w", hdr.Name, err)
			}
		default:
			return fmt.Errorf("tar: entry %q has type %q; only files, directories and symlinks are allowed", hdr.Name, string(hdr.Typeflag))
		}
	}
	sort.Strings(m.Executables)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, manifestName), b, 0o400); err != nil {
		return err
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return err
	}
	if err := os.Rename(root, final); err != nil {
		if _, merr := readManifest(final); merr == nil {
			return nil // a concurrent Put of the same artifact finished first
		}
		return err
	}
	return nil
}

func cleanEntryName(n string) (string, error) {
	if n == "" || strings.HasPrefix(n, "/") || strings.Contains(n, "\\") || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("tar: entry %q has an absolute or malformed path", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("tar: entry %q leaves the artifact (path traversal)", n)
		}
	}
	return path.Clean(n), nil
}

// noSymlinkParents refuses an entry whose parent directories include a
// symlink, so that no entry is written through a link.
func noSymlinkParents(root, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	cur := root
	for _, part := range strings.Split(dir, "/") {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("tar: entry %q is below the symlink %q", name, strings.TrimPrefix(cur, root+"/"))
		}
	}
	return nil
}
