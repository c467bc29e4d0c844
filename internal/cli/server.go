package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/server"
)

func (a *app) serverCommand() *cobra.Command {
	var (
		cfg      server.Config
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "server --data DIR [--listen ADDR] [--database URL] [--signing-key PATH]",
		Short: "Run the airlock server",
		Long: `Run the airlock server: the HTTP API, the web UI and the background loops.

--data DIR is created on first start. It holds the SQLite database (unless
--database names a PostgreSQL server), the audit signing key and the
bootstrap admin token, written to DIR/admin.token (mode 0600).

Several servers may share one PostgreSQL database (--database), each with
its own --data and the same --signing-key and --seal-key: all serve the API, and the one
holding the leader lease runs the background loops (rollouts, analysis,
access expiry, deliveries). If it dies, another takes over within about
12 seconds; airlock cluster status shows who leads.

SIGINT or SIGTERM stops the server gracefully: requests in flight finish,
the leader lease is handed over, and a last audit checkpoint is signed.`,
		Example: `  airlock server --data ./airlock-data
  airlock server --data /var/lib/airlock --listen 0.0.0.0:8640 --database postgres://airlock@db/airlock`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return usagef("--data DIR is required: where the database, the audit signing key and the admin token live")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: use debug, info, warn or error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			err := a.serve(cmd.Context(), cfg)
			if err != nil && cmd.Context().Err() != nil && errors.Is(err, cmd.Context().Err()) {
				return nil // stopped by a signal
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", "", "data directory (required; created on first start)")
	f.StringVar(&cfg.Listen, "listen", server.DefaultListen, "HTTP listen address")
	f.StringVar(&cfg.DatabaseURL, "database", "", "PostgreSQL URL (postgres://...); default SQLite in --data")
	f.StringVar(&cfg.Advertise, "advertise", "", "the address airlock cluster status shows for this replica (default: the listen address)")
	f.StringVar(&cfg.SigningKey, "signing-key", "", "ed25519 audit signing key, PEM PKCS #8 (default DATA/audit.key, created when missing)")
	f.StringVar(&cfg.SealKey, "seal-key", "", "key that seals credentials waiting to be collected (default DATA/seal.key, created when missing); replicas must share it")
	f.DurationVar(&cfg.CheckpointEvery, "checkpoint-every", 0, "how often to sign an audit checkpoint when the log grew (default 1m)")
	f.Float64Var(&cfg.OFREPRate, "ofrep-rate", 0, "OFREP evaluations a second one evaluation key may make, bursts of twice that (default 1000)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the airlock version",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(a.stdout, "airlock %s (%s %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

func version() string { return server.Version }
