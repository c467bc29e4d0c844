package server

import (
	"log/slog"
	"time"
)

// Config is everything `airlock server` can be told.
type Config struct {
	// DataDir holds the SQLite database, the audit signing key and the
	// bootstrap admin token. It is created on first start.
	DataDir string
	// Listen is the HTTP address, default 127.0.0.1:8640.
	Listen string
	// Advertise is the address `airlock cluster status` shows for this
	// replica (default: the address it listens on).
	Advertise string
	// DatabaseURL selects PostgreSQL (postgres://...) instead of SQLite in DataDir.
	DatabaseURL string
	// SigningKey is the path of the ed25519 audit signing key (PEM, PKCS #8);
	// default DataDir/audit.key, created when missing.
	SigningKey string
	// SealKey is the path of the key that seals credentials waiting to be
	// collected (just-in-time access, break-glass); default DataDir/seal.key,
	// created when missing. Replicas must share it.
	SealKey string
	// CheckpointEvery is how often a checkpoint is signed when the log grew
	// (default 1 minute).
	CheckpointEvery time.Duration
	// OFREPRate is the OFREP evaluations a second one evaluation key may
	// make (bursts of twice that); 0 means api.DefaultOFREPRate (1,000).
	OFREPRate float64
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Ready, when set, is called with the bound address once the server serves.
	Ready func(addr string)
}
