package sqlstore

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/airlock-dev/airlock/internal/store"
)

// MaxBlobBytes bounds one blob's content; callers limit their input before
// this.
const MaxBlobBytes = 256 << 20

// Stored blobs start with one byte naming their encoding, so the format can
// change without a migration: raw content, or a DEFLATE stream of it. CI
// reports (XML, JSON, text) shrink five- to twentyfold, which is what keeps
// a 50 MB SARIF upload from writing 100 MB (WAL and checkpoint) to disk.
const (
	encRaw     byte = 0
	encDeflate byte = 1
)

// encodeBlob reads r to its end, returning its digest, its length and the
// stored form. Memory holds only the compressed form.
func encodeBlob(r io.Reader) (digest string, size int64, stored []byte, err error) {
	var buf bytes.Buffer
	buf.WriteByte(encDeflate)
	zw, _ := flate.NewWriter(&buf, flate.BestSpeed) // cannot fail for a valid level
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, zw), io.LimitReader(r, MaxBlobBytes+1))
	if err != nil {
		return "", 0, nil, fmt.Errorf("read blob: %w", err)
	}
	if n > MaxBlobBytes {
		return "", 0, nil, fmt.Errorf("blob is over the %d-byte limit", MaxBlobBytes)
	}
	if err := zw.Close(); err != nil {
		return "", 0, nil, fmt.Errorf("compress blob: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, buf.Bytes(), nil
}

func decodeBlob(digest string, stored []byte) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("blob %s is empty in the database", digest)
	}
	switch stored[0] {
	case encRaw:
		return stored[1:], nil
	case encDeflate:
		data, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(stored[1:])), MaxBlobBytes+1))
		if err != nil {
			return nil, fmt.Errorf("decompress blob %s: %w", digest, err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("blob %s has unknown encoding %d", digest, stored[0])
}

// Blob implements store.Reader.
func (s *Store) Blob(ctx context.Context, digest string) ([]byte, error) {
	if s.closed() {
		return nil, store.ErrClosed
	}
	return s.blob(ctx, nil, digest)
}

func (s *Store) blob(ctx context.Context, tx dbtx, digest string) ([]byte, error) {
	var stored []byte
	err := s.queryRow(ctx, tx, s.q.getBlob, digest).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %s %w", digest, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", digest, err)
	}
	return decodeBlob(digest, stored)
}

// Blob implements store.Reader inside the transaction.
func (t *txn) Blob(ctx context.Context, digest string) ([]byte, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	if stored, ok := t.blobs[digest]; ok {
		return decodeBlob(digest, stored)
	}
	if stored, ok := t.b.blobs[digest]; ok {
		return decodeBlob(digest, stored)
	}
	data, err := t.s.blob(dbctx(ctx), t.tx, digest)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.fail(err)
	}
	return data, err
}

// PrepareBlob implements store.Store: it hashes and compresses the content.
func (s *Store) PrepareBlob(r io.Reader) (*store.PreparedBlob, error) {
	digest, size, stored, err := encodeBlob(r)
	if err != nil {
		return nil, err
	}
	return &store.PreparedBlob{Digest: digest, Size: size, Data: stored}, nil
}

// PutBlob implements store.Tx. The blob is stored when the batch commits.
func (t *txn) PutBlob(ctx context.Context, b *store.PreparedBlob) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	if b == nil || len(b.Data) == 0 || !strings.HasPrefix(b.Digest, "sha256:") {
		return errors.New("store: PutBlob needs a blob from PrepareBlob")
	}
	if t.blobs == nil {
		t.blobs = make(map[string][]byte, 1)
	}
	if _, ok := t.blobs[b.Digest]; !ok {
		t.blobs[b.Digest] = b.Data
	}
	return nil
}
