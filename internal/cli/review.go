package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) reviewCommand() *cobra.Command {
	return group("review", "Follow up emergency promotions", a.reviewListCommand(), a.reviewCompleteCommand())
}

func (a *app) reviewListCommand() *cobra.Command {
	return a.listCommand("List the reviews emergency promotions opened, overdue ones flagged",
		`List the reviews emergency promotions opened. Each is due 24 hours after its
promotion, names the roles still MISSING from its approval chain, and is
flagged OVERDUE, with how long, once past its deadline.`, (*client.Client).ListReviews)
}

func (a *app) reviewCompleteCommand() *cobra.Command {
	var outcome, reason string
	cmd := &cobra.Command{
		Use:   "complete REVIEW --outcome accepted|follow-up|reverted --reason TEXT",
		Short: "Sign off a post-emergency review",
		Long: `Sign off the review an emergency promotion opened. The review belongs to the
transition's full approval chain (e.g. one tech-lead and one sre): each
member signs once with the roles they hold for the environment, and the
review is complete when the whole chain has signed. Its outcome is the
gravest one given:

  accepted    the emergency change stands
  follow-up   it stands, with follow-up work (name it in --reason)
  reverted    it must be or was rolled back

The emergency's requester and its emergency approver may not review it.
An overdue review blocks the application's non-emergency promotions into
production until it is complete.

Exit codes: 0 recorded; 3 refused (not allowed, not in the chain); 1 error
(e.g. a second sign-off); 2 usage.`,
		Example: `  airlock review complete shop-1.4.1.to.prod --outcome follow-up --reason "hotfix ok; regression test added in SHOP-88"`,
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&outcome, "outcome", "", "accepted, follow-up or reverted (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "what the review found (required; recorded in the audit log)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		switch {
		case outcome != "accepted" && outcome != "follow-up" && outcome != "reverted":
			return usagef("--outcome must be accepted, follow-up or reverted, got %q", outcome)
		case strings.TrimSpace(reason) == "":
			return usagef("--reason is required: what the review found")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.CompleteReview(cmd.Context(), argv[0], outcome, reason)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		var st struct {
			Phase   string `json:"phase"`
			Missing string `json:"missing"`
			Outcome string `json:"outcome"`
		}
		if err := obj.DecodeStatus(&st); err != nil {
			return err
		}
		if st.Phase == "Completed" {
			fmt.Fprintf(a.stdout, "review/%s completed: outcome %s\n", obj.Metadata.Name, st.Outcome)
			return nil
		}
		fmt.Fprintf(a.stdout, "review/%s signed off (%s); still missing: %s\n", obj.Metadata.Name, outcome, st.Missing)
		return nil
	}
	return cmd
}
