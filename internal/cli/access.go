package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) accessCommand() *cobra.Command {
	return group("access", "Just-in-time access to production resources: ask, approve, collect the credential once, revoke",
		a.accessRequestCommand(),
		a.accessVoteCommand("approve", "Approve an access request (the last approval needed issues the credential)"),
		a.accessVoteCommand("deny", "Deny an access request (final)"),
		a.accessVoteCommand("revoke", "Revoke an access now: your own, or anyone's with access.manage"),
		a.accessCredentialsCommand(),
		a.accessListCommand(),
		a.accessReportCommand(),
	)
}

func (a *app) accessRequestCommand() *cobra.Command {
	var ask client.AccessAsk
	var keyFile string
	cmd := &cobra.Command{
		Use:   "request --env ENV --resource NAME --role ROLE --for DURATION --reason TEXT [--incident ID] [--public-key FILE]",
		Short: "Ask for time-limited access to a resource; prints the request's ID",
		Long: `Ask for ROLE on an access resource of ENV for a while (at most the role's
maximum, 14 days in any case), with a reason. The people the resource's
policy names approve it (airlock access approve ID); you never approve your
own, and a high-risk role needs two different approvers. Once approved,
airlock issues a short-lived credential through the resource's broker:
collect it once with airlock access credentials ID. It is revoked when the
time is up, or now with airlock access revoke ID.

A request waits for approval for an hour (the resource's pendingExpiry).
During a deployment freeze, and outside the resource's business hours when
its policy says so, a request needs an open incident (--incident ID).

-o json prints the AccessRequest; its metadata.name is the ID.

Exit codes: 0 requested; 3 refused by policy; 1 invalid (unknown resource
or role, a duration above the cap, no reason); 2 usage.`,
		Example: `  airlock access request --env prod --resource orders-db --role readonly --for 1h --reason "INC-42: check the stuck orders"
  airlock access request --env prod --resource bastion --role ops --for 30m --reason "rotate the logs" --public-key ~/.ssh/id_ed25519.pub -o json`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML, formatName)
	cmd.Flags().StringVar(&ask.Environment, "env", "", "the environment (required)")
	cmd.Flags().StringVar(&ask.Resource, "resource", "", "the access resource (required)")
	cmd.Flags().StringVar(&ask.Role, "role", "", "the role on the resource (required)")
	cmd.Flags().StringVar(&ask.For, "for", "", "how long, e.g. 1h (required)")
	cmd.Flags().StringVar(&ask.Reason, "reason", "", "why you need it, at least 10 characters (required)")
	cmd.Flags().StringVar(&ask.Incident, "incident", "", "the open incident this access answers")
	cmd.Flags().StringVar(&keyFile, "public-key", "", "your public key file, for resources that certify one (SSH)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for flag, v := range map[string]string{"--env": ask.Environment, "--resource": ask.Resource, "--role": ask.Role, "--for": ask.For, "--reason": ask.Reason} {
			if strings.TrimSpace(v) == "" {
				return usagef("%s is required", flag)
			}
		}
		if keyFile != "" {
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			ask.PublicKey = strings.TrimSpace(string(b))
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.RequestAccess(cmd.Context(), ask)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		fmt.Fprintln(a.stdout, obj.Metadata.Name)
		m, err := tree(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "access request %s %s\n", obj.Metadata.Name, str(lookup(m, "status.message")))
		for _, al := range toStrings(lookup(m, "status.alerts")) {
			fmt.Fprintf(a.stderr, "alert: %s\n", al)
		}
		return nil
	}
	return cmd
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, str(x))
	}
	return out
}

func (a *app) accessVoteCommand(command, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   command + " ID --reason TEXT",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the audit log)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if strings.TrimSpace(reason) == "" {
			return usagef("--reason is required")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		obj, err := c.AccessCommand(cmd.Context(), strings.TrimPrefix(argv[0], "accessrequest/"), command, reason)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{obj}, false)
		}
		m, err := tree(obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "access request %s is %s: %s\n", obj.Metadata.Name, str(lookup(m, "status.state")), str(lookup(m, "status.message")))
		return nil
	}
	return cmd
}

func (a *app) accessCredentialsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials ID [-o json]",
		Short: "Collect the credential of your approved request, once",
		Long: `Print the credential airlock issued for your approved request. It is handed
out exactly once and then removed from airlock; nobody else may collect it.
For PostgreSQL, -o json prints an object whose "dsn" field is the connection
string; for SSH, "certificate" is the certificate to use with your key.`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		cred, err := c.AccessCredentials(cmd.Context(), strings.TrimPrefix(argv[0], "accessrequest/"))
		if err != nil {
			return err
		}
		if *output == formatJSON {
			return writeJSON(a.stdout, cred)
		}
		keys := make([]string, 0, len(cred))
		for k := range cred {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(a.stdout, "%s: %s\n", k, cred[k])
		}
		fmt.Fprintln(a.stderr, "this credential is shown once; airlock no longer holds it")
		return nil
	}
	return cmd
}

func (a *app) accessListCommand() *cobra.Command {
	var active bool
	cmd := a.listCommand("List access requests (--active: only access that may be in use now)", "", nil)
	output := cmd.Flag("output")
	cmd.Flags().BoolVar(&active, "active", false, "only requests whose credential is active")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		sel := ""
		if active {
			sel = "state=active"
		}
		l, err := c.List(cmd.Context(), "accessrequests", sel)
		if err != nil {
			return err
		}
		return a.printObjects(output.Value.String(), l.Items, true)
	}
	return cmd
}

func (a *app) accessReportCommand() *cobra.Command {
	var env, since string
	cmd := &cobra.Command{
		Use:   "report --env ENV [--since 30d] [-o json]",
		Short: "Who held access to an environment, when, why, who approved — beside its deployments",
		Example: `  airlock access report --env prod --since 30d
  airlock access report --env prod --since 7d -o json`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&env, "env", "", "the environment (required)")
	cmd.Flags().StringVar(&since, "since", "30d", "the period: 30d, 72h, 90m")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if env == "" {
			return usagef("--env is required")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		rep, err := c.AccessReport(cmd.Context(), env, since)
		if err != nil {
			return err
		}
		if *output != "" {
			return writeData(a.stdout, *output, rep)
		}
		return a.printAccessReport(cmd.Context(), rep)
	}
	return cmd
}

func (a *app) printAccessReport(_ context.Context, rep map[string]any) error {
	fmt.Fprintf(a.stdout, "Access to %s from %s to %s\n\n", str(rep["environment"]), day(rep["since"]), day(rep["until"]))
	held, _ := rep["access"].([]any)
	fmt.Fprintf(a.stdout, "%d access request(s):\n", len(held))
	for _, h := range held {
		m, _ := h.(map[string]any)
		approvers := strings.Join(toStrings(m["approvers"]), ", ")
		if approvers == "" {
			approvers = "nobody"
		}
		fmt.Fprintf(a.stdout, "  %s  %s  %s on %s  %s  from %s until %s  approved by %s  reason: %s\n",
			str(m["request"]), str(m["requester"]), str(m["role"]), str(m["resource"]), str(m["state"]),
			orDash(str(m["from"])), orDash(str(m["until"])), approvers, str(m["reason"]))
		for _, al := range toStrings(m["alerts"]) {
			fmt.Fprintf(a.stdout, "      alert: %s\n", al)
		}
	}
	uses, _ := rep["breakGlass"].([]any)
	fmt.Fprintf(a.stdout, "\n%d break-glass use(s)\n", len(uses))
	fmt.Fprintln(a.stdout, "\nTimeline (access and deployments side by side):")
	events, _ := rep["timeline"].([]any)
	for _, e := range events {
		m, _ := e.(map[string]any)
		col := "ACCESS"
		switch str(m["what"]) {
		case "promotion", "rollout":
			col = "DEPLOY"
		case "breakglass-opened":
			col = "BREAK"
		}
		fmt.Fprintf(a.stdout, "  %s  %-6s  %s\n", str(m["at"]), col, str(m["line"]))
	}
	return nil
}

func day(v any) string { return strings.SplitN(str(v), "T", 2)[0] }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
