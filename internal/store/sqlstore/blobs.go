package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/airlock-dev/airlock/internal/store"
)

// MaxBlobBytes bounds one blob; callers limit their input before this.
const MaxBlobBytes = 256 << 20

// Blob implements store.Reader.
func (s *Store) Blob(ctx context.Context, digest string) ([]byte, error) {
	if s.closed() {
		return nil, store.ErrClosed
	}
	return s.blob(ctx, nil, digest)
}

func (s *Store) blob(ctx context.Context, tx *sql.Tx, digest string) ([]byte, error) {
	var data []byte
	err := s.queryRow(ctx, tx, s.q.getBlob, digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("blob %s %w", digest, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", digest, err)
	}
	return data, nil
}

// Blob implements store.Reader inside the transaction.
func (t *txn) Blob(ctx context.Context, digest string) ([]byte, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	if data, ok := t.blobs[digest]; ok {
		return bytes.Clone(data), nil
	}
	if data, ok := t.b.blobs[digest]; ok {
		return bytes.Clone(data), nil
	}
	data, err := t.s.blob(dbctx(ctx), t.tx, digest)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.fail(err)
	}
	return data, err
}

// PutBlob implements store.Tx. The content is copied and stored when the
// batch commits.
func (t *txn) PutBlob(ctx context.Context, data []byte) (string, error) {
	if len(data) > MaxBlobBytes {
		return "", fmt.Errorf("blob of %d bytes is over the %d-byte limit", len(data), MaxBlobBytes)
	}
	if err := t.usable(ctx); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if t.blobs == nil {
		t.blobs = make(map[string][]byte, 1)
	}
	if _, ok := t.blobs[digest]; !ok {
		t.blobs[digest] = append([]byte{}, data...) // never nil: the column is NOT NULL
	}
	return digest, nil
}
