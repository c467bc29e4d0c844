package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) incidentCommand() *cobra.Command {
	c := group("incident", "Open, close and list incidents (emergency promotions cite an open one)",
		a.incidentOpenCommand(),
		a.incidentCloseCommand(),
		a.incidentListCommand(),
	)
	c.Aliases = []string{"inc"}
	return c
}

func (a *app) incidentOpenCommand() *cobra.Command {
	var severity, summary, reference string
	cmd := &cobra.Command{
		Use:   "open --severity sev1|sev2|sev3|sev4 --summary TEXT [--reference REF]",
		Short: "Open an incident and print its name",
		Long: `Open an incident. The server names it inc-YYYYMMDD-NNN and records you as
its opener; the name is printed alone, so a script can keep it. An emergency
promotion must cite an open incident (airlock promote --emergency --incident NAME).`,
		Example: `  INC=$(airlock incident open --severity sev1 --summary "card payments failing" --reference PD-4711)
  airlock promote payments 1.4.1 --to prod --emergency --incident "$INC" --reason "hotfix for $INC"`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML, formatName)
	cmd.Flags().StringVar(&severity, "severity", "", "sev1 (worst) to sev4 (required)")
	cmd.Flags().StringVar(&summary, "summary", "", "what is wrong, at most 500 characters (required)")
	cmd.Flags().StringVar(&reference, "reference", "", "the external ticket, e.g. a pager or ITSM id")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if severity == "" {
			return usagef("--severity is required: sev1 (worst), sev2, sev3 or sev4")
		}
		if strings.TrimSpace(summary) == "" {
			return usagef("--summary is required: say what is wrong")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.OpenIncident(cmd.Context(), client.IncidentRequest{Severity: severity, Summary: summary, Reference: reference})
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		fmt.Fprintln(a.stdout, obj.Metadata.Name)
		return nil
	}
	return cmd
}

func (a *app) incidentCloseCommand() *cobra.Command {
	var resolution string
	cmd := &cobra.Command{
		Use:   "close NAME --resolution TEXT",
		Short: "Close an open incident with its resolution",
		Args:  args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML, formatName)
	cmd.Flags().StringVar(&resolution, "resolution", "", "how it was resolved (required)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(resolution) == "" {
			return usagef("--resolution is required: say how the incident was resolved")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.CloseIncident(cmd.Context(), argv[0], resolution)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		fmt.Fprintf(a.stdout, "incident/%s closed\n", obj.Metadata.Name)
		return nil
	}
	return cmd
}

func (a *app) incidentListCommand() *cobra.Command {
	return a.listCommand("List incidents, open and closed", "", (*client.Client).ListIncidents)
}
