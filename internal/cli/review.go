package cli

import (
	"github.com/airlock-dev/airlock/internal/client"
	"github.com/spf13/cobra"
)

func (a *app) reviewCommand() *cobra.Command {
	return group("review", "Follow up emergency promotions", a.reviewListCommand())
}

func (a *app) reviewListCommand() *cobra.Command {
	return a.listCommand("List the reviews emergency promotions opened, overdue ones flagged",
		`List the reviews emergency promotions opened. Each is due 24 hours after its
promotion and is flagged OVERDUE, with how long, once past its deadline.`, (*client.Client).ListReviews)
}
