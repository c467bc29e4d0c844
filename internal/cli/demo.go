package cli

import (
	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/demo"
)

func (a *app) demoCommand() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "Run airlock end to end on this machine, nothing else needed",
		Long: `Start airlock on a temporary data directory, declare dev, staging and prod on
the local runtime, and walk a small HTTP service (the airlock binary itself,
as demo-app) through the story airlock exists for, while a traffic
generator sends requests to production:

  1. a release blocked by a failing test, with the reasons;
  2. the fixed release promoted through dev and staging, its rollback
     rehearsed in staging;
  3. approvals by two people, the requester's self-approval refused;
  4. a canary in production;
  5. a bad version rolled back automatically;
  6. a good version reaching 100%;
  7. the audit chain verified.

Exit 0 only if every step behaved as the story says; otherwise non-zero,
naming the step. --keep leaves the server running and prints its address
and an admin token.`,
		Args: args(cobra.NoArgs),
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the server running at the end (Ctrl-C stops it)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return demo.Run(cmd.Context(), demo.Options{Out: a.stdout, Keep: keep})
	}
	return cmd
}
