package cli

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/demoapp"
)

// demoAppCommand is the small HTTP service airlock demo deploys (and tests
// use as an artifact): the airlock binary itself, started as
// `airlock demo-app [--version V] [--error-rate F] [--latency D] ...` on $PORT.
func (a *app) demoAppCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:                "demo-app [flags]",
		Short:              "Serve the demo HTTP service on $PORT (used by airlock demo)",
		Hidden:             true,
		DisableFlagParsing: true, // the demo app parses its own flags
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := demoapp.Run(ctx, argv, a.stdout, a.stderr)
			if errors.Is(err, demoapp.ErrExitAfter) {
				return &exitError{ExitError}
			}
			return err
		},
	}
	return cmd
}
