package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/cluster"
)

func (a *app) clusterCommand() *cobra.Command {
	return group("cluster", "The airlock replicas sharing a database, and which one leads", a.clusterStatusCommand())
}

func (a *app) clusterStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the replicas that are alive and the holder of the leader lease",
		Long: `List the airlock servers sharing this server's database that wrote a
heartbeat in the last 15 seconds: each one's id, address, version, start
and whether it holds the leader lease (leader: true), which runs the
background loops (rollouts, analysis, access expiry, deliveries). With
SQLite there is one replica. -o json prints {"replicas": [...]}.`,
		Example: "  airlock cluster status -o json | jq '.replicas[] | select(.leader) | .address'",
		Args:    args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		rs, err := c.ClusterStatus(cmd.Context())
		if err != nil {
			return err
		}
		if rs == nil {
			rs = []cluster.Replica{}
		}
		if *output != formatTable {
			return writeData(a.stdout, *output, struct {
				Replicas []cluster.Replica `json:"replicas"`
			}{rs})
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "REPLICA\tADDRESS\tVERSION\tLEADER\tSTARTED\tLAST SEEN")
		now := a.now()
		for _, r := range rs {
			leader := "-"
			if r.Leader {
				leader = "yes"
				if r.LeaderSince != nil {
					leader = "yes, for " + age(*r.LeaderSince, now)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s ago\n", r.ID, r.Address, r.Version, leader, age(r.StartedAt, now), age(r.LastSeen, now))
		}
		return tw.Flush()
	}
	return cmd
}
