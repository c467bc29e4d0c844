package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
)

func (a *app) approveCommand() *cobra.Command { return a.voteCommand("approve") }
func (a *app) rejectCommand() *cobra.Command  { return a.voteCommand("reject") }

// voteCommand is airlock approve or airlock reject.
func (a *app) voteCommand(decision string) *cobra.Command {
	var reason string
	short := "Approve a promotion waiting for approvals"
	long := `Record your approval of a promotion. The server records the roles you hold
for its environment, binds the approval to the release's artifact digest and
the pipeline revision, and re-judges the promotion at once: the approval that
completes the policy promotes the release.

The release's creator and the promotion's requester may not approve it; one
person counts once whatever roles they hold; an approval expires after 72h.`
	if decision == "reject" {
		short = "Reject a promotion; a rejection blocks it"
		long = `Record your rejection of a promotion. A rejection by a holder of a required
role blocks the promotion; the release must be rebuilt.`
	}
	cmd := &cobra.Command{
		Use:   decision + " PROMOTION --reason TEXT",
		Short: short,
		Long: long + `

Exit codes: 0 recorded; 3 refused (not allowed, or self-approval); 1 error
(e.g. a second vote); 2 usage.`,
		Example: fmt.Sprintf(`  airlock %s shop-1.4.0.to.prod --reason "reviewed the change and rollback plan"`, decision),
		Args:    args(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why you %s", decision)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		vote := c.Approve
		if decision == "reject" {
			vote = c.Reject
		}
		obj, err := vote(cmd.Context(), argv[0], reason)
		if err != nil {
			return err
		}
		_, st, err := client.DecodePromotion(obj)
		if err != nil {
			return err
		}
		if err := printGates(a.stdout, st.Gates); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%sd promotion/%s; it is %s: %s\n", decision, obj.Metadata.Name, st.Phase, st.Message)
		return nil
	}
	return cmd
}

func (a *app) approvalsCommand() *cobra.Command {
	var mine bool
	pending := &cobra.Command{
		Use:   "pending [--mine]",
		Short: "List promotions waiting for approvals",
		Long: `List the promotions that are pending on an approvals gate. --mine keeps those
you could approve: you hold a required role for the environment, did not
create the release or request the promotion, and have not voted yet.`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(pending, formatTable, formatJSON, formatYAML)
	pending.Flags().BoolVar(&mine, "mine", false, "only promotions you could approve")
	pending.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		objs, err := c.PendingApprovals(cmd.Context(), mine)
		if err != nil {
			return err
		}
		if *output != formatTable {
			return a.printObjects(*output, objs, true)
		}
		if len(objs) == 0 {
			fmt.Fprintln(a.stderr, "no promotions wait for approvals")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROMOTION\tAPP\tVERSION\tTO\tNEEDS")
		for _, o := range objs {
			spec, st, err := client.DecodePromotion(o)
			if err != nil {
				return err
			}
			needs := ""
			for _, g := range st.Gates {
				if g.Type == "approvals" && g.Status == client.GatePending {
					needs = strings.Join(g.Reasons, "; ")
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Metadata.Name, spec.App, spec.Version, spec.To, needs)
		}
		return tw.Flush()
	}
	return group("approvals", "Promotions waiting for approvals", pending)
}
