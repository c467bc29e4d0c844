package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) reviewCommand() *cobra.Command {
	return group("review", "Follow up emergency promotions", a.reviewListCommand())
}

func (a *app) reviewListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the reviews emergency promotions opened, overdue ones flagged",
		Long: `List the reviews emergency promotions opened. Each is due 24 hours after its
promotion and is flagged OVERDUE, with how long, once past its deadline.`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML, formatName)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		rs, err := c.ListReviews(cmd.Context())
		if err != nil {
			return err
		}
		return a.printObjects(*output, rs, true)
	}
	return cmd
}
