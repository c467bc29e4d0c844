package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) changeCommand() *cobra.Command {
	c := group("change", "Raise, approve and confirm change requests (the changeRequest gate needs an approved one)",
		a.changeCreateCommand(),
		a.changeVoteCommand("approve"),
		a.changeVoteCommand("reject"),
		a.changeConfirmCommand(),
		a.changeCloseCommand(),
		a.listCommand("List change requests", "", (*client.Client).ListChanges),
	)
	c.Aliases = []string{"cr"}
	return c
}

func (a *app) changeCreateCommand() *cobra.Command {
	var env, summary, risk, plan, external string
	cmd := &cobra.Command{
		Use:   "create APP VERSION --env ENV --summary TEXT --risk low|medium|high --rollback-plan TEXT [--external SYSTEM:KEY]",
		Short: "Raise a change request and print its name",
		Long: `Raise a change request for promoting APP VERSION into ENV. The server names
it chg-YYYYMMDD-NNN and records you as raising it; the name is printed alone.

An internal change request is approved in airlock (airlock change approve)
by the roles the transition's changeRequest gate requires (default: one
tech-lead); whoever raised it, the release's creator, its commit's authors
and the promotion's requester may not approve it.

An external one (--external SYSTEM:KEY) is a ticket in a ChangeSystem
(ServiceNow, Jira, ...): airlock asks that system every minute, or now with
airlock change confirm, whether it is approved.`,
		Example: `  CHG=$(airlock change create shop 1.4.0 --env prod --summary "new checkout flow" --risk medium \
      --rollback-plan "airlock rollback shop --env prod; feature flag checkout-v2 off")
  airlock change create shop 1.4.0 --env prod --summary "new checkout" --risk low \
      --rollback-plan "redeploy 1.3.9" --external servicenow:CHG0012345`,
		Args: args(cobra.ExactArgs(2)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML, formatName)
	cmd.Flags().StringVar(&env, "env", "", "the environment the change goes into (required)")
	cmd.Flags().StringVar(&summary, "summary", "", "what changes, at most 500 characters (required)")
	cmd.Flags().StringVar(&risk, "risk", "", "low, medium or high (required)")
	cmd.Flags().StringVar(&plan, "rollback-plan", "", "how the change is undone if it goes wrong (required)")
	cmd.Flags().StringVar(&external, "external", "", "SYSTEM:KEY of a ticket in a declared ChangeSystem")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		switch {
		case env == "":
			return usagef("--env is required: the environment the change goes into")
		case strings.TrimSpace(summary) == "":
			return usagef("--summary is required: say what changes")
		case risk == "":
			return usagef("--risk is required: low, medium or high")
		case strings.TrimSpace(plan) == "":
			return usagef("--rollback-plan is required: say how the change is undone")
		}
		req := client.ChangeRequest{App: argv[0], Version: argv[1], Environment: env, Summary: summary, Risk: risk, RollbackPlan: plan}
		if external != "" {
			sys, key, ok := strings.Cut(external, ":")
			if !ok || sys == "" || key == "" {
				return usagef("--external takes SYSTEM:KEY, e.g. servicenow:CHG0012345")
			}
			req.External = &client.ExternalChange{System: sys, Key: key}
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.CreateChange(cmd.Context(), req)
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

func (a *app) changeVoteCommand(decision string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   decision + " CHANGE --reason TEXT",
		Short: strings.ToUpper(decision[:1]) + decision[1:] + " an internal change request",
		Long: `Record your ` + map[string]string{"approve": "approval", "reject": "rejection"}[decision] + ` of an internal change request. The server records the
roles you hold for its environment; only roles the changeRequest gate
requires count. The promotions of the release are re-judged at once.

Exit codes: 0 recorded; 3 refused (not allowed, self-approval); 1 error
(e.g. a second vote); 2 usage.`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why you %s", decision)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		vote := c.ApproveChange
		if decision == "reject" {
			vote = c.RejectChange
		}
		obj, err := vote(cmd.Context(), argv[0], reason)
		if err != nil {
			return err
		}
		return a.printChange(*output, obj, decision+"d")
	}
	return cmd
}

func (a *app) changeConfirmCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "confirm CHANGE",
		Short: "Ask an external change request's system for its approval now",
		Long: `Ask the ChangeSystem of an external change request whether it is approved,
and record the answer. The server also asks every minute while the request
is open. Exit code 1 when the system could not be asked (the error is
recorded on the request too).`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.ConfirmChange(cmd.Context(), argv[0])
		if err != nil {
			return err
		}
		return a.printChange(*output, obj, "confirmed")
	}
	return cmd
}

func (a *app) changeCloseCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "close CHANGE --reason TEXT",
		Short: "Close (withdraw) a change request",
		Args:  args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required: say why the change request is closed")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.CloseChange(cmd.Context(), argv[0], reason)
		if err != nil {
			return err
		}
		return a.printChange(*output, obj, "closed")
	}
	return cmd
}

// printChange reports a change request after an action: "changerequest/NAME
// approved; it is Approved".
func (a *app) printChange(output string, obj *resource.Object, done string) error {
	if output != "" {
		return a.printObjects(output, []*resource.Object{obj}, false)
	}
	var st struct {
		Phase    string `json:"phase"`
		External *struct {
			State   string `json:"state"`
			Message string `json:"message"`
			Error   string `json:"error"`
		} `json:"external"`
	}
	if err := obj.DecodeStatus(&st); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "changerequest/%s %s; it is %s\n", obj.Metadata.Name, done, st.Phase)
	if e := st.External; e != nil {
		switch {
		case e.Error != "":
			fmt.Fprintf(a.stdout, "  last check failed: %s\n", e.Error)
		case e.State != "" || e.Message != "":
			fmt.Fprintf(a.stdout, "  %s: %s\n", e.State, e.Message)
		}
	}
	return nil
}
