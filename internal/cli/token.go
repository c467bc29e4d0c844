package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/resource"
)

func (a *app) tokenCommand() *cobra.Command {
	return group("token", "Manage API tokens",
		a.tokenCreateCommand(),
		a.tokenListCommand(),
		a.tokenRevokeCommand(),
	)
}

func (a *app) tokenCreateCommand() *cobra.Command {
	var (
		roles, envs []string
		expiresArg  string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE [--role ROLE ...] [--env ENV ...] [--expires DURATION]",
		Short: "Create an API token",
		Long: `Create an API token with one or more roles, optionally limited to some
environments and to a lifetime.

The secret is printed once, alone on standard output, so a script can
capture it: TOKEN=$(airlock token create ci --role ci). Store it right away:
the server keeps only its hash. -o json prints the server's answer, whose
"token" field holds the secret.`,
		Example: `  airlock token create ci-bot --role ci --env dev --env test --expires 90d`,
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringArrayVar(&roles, "role", nil, "role to grant (repeatable, at least one)")
	cmd.Flags().StringArrayVar(&envs, "env", nil, "limit the token to this environment (repeatable; default all)")
	cmd.Flags().StringVar(&expiresArg, "expires", "", "lifetime (e.g. 90d, 12h) or expiry time (RFC 3339); default never")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if len(roles) == 0 {
			return usagef("give the token at least one --role")
		}
		req := client.TokenRequest{Name: argv[0], Roles: splitList(roles), Environments: splitList(envs)}
		if expiresArg != "" {
			t, err := a.parseTime(expiresArg, +1)
			if err != nil {
				return &usageError{fmt.Errorf("--expires: %w", err)}
			}
			req.ExpiresAt = t
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		tok, err := c.CreateToken(cmd.Context(), req)
		if err != nil {
			return err
		}
		switch *output {
		case formatJSON:
			var buf bytes.Buffer // the server's answer, its field order kept
			if err := json.Indent(&buf, tok.Raw, "", "  "); err != nil {
				return fmt.Errorf("decode the server's answer: %w", err)
			}
			buf.WriteByte('\n')
			_, err := buf.WriteTo(a.stdout)
			return err
		case formatYAML:
			var v any
			if err := json.Unmarshal(tok.Raw, &v); err != nil {
				return fmt.Errorf("decode the server's answer: %w", err)
			}
			return writeData(a.stdout, *output, v)
		}
		fmt.Fprintln(a.stdout, tok.Token)
		scope := "all environments"
		if len(tok.Environments) > 0 {
			scope = "environments " + strings.Join(tok.Environments, ", ")
		}
		fmt.Fprintf(a.stderr, "token %q created with roles %s for %s", tok.Name, strings.Join(tok.Roles, ", "), scope)
		if !tok.ExpiresAt.IsZero() {
			fmt.Fprintf(a.stderr, ", expires %s", tok.ExpiresAt.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(a.stderr)
		fmt.Fprintln(a.stderr, "warning: the secret above is shown only once; store it now (e.g. in your CI's secret store)")
		return nil
	}
	return cmd
}

// splitList accepts both repeated flags and comma-separated values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// parseTime reads an RFC 3339 time or a duration taken from now, forward
// (sign +1) or back (sign -1).
func (a *app) parseTime(s string, sign int) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (e.g. 90d, 12h, 30m) nor an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)", s)
	}
	return a.now().Add(time.Duration(sign) * d).UTC(), nil
}

func (a *app) tokenListCommand() *cobra.Command {
	return a.listCommand("List API tokens (never their secrets)", "", (*client.Client).ListTokens)
}

func (a *app) tokenRevokeCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME [--reason TEXT]",
		Short: "Revoke an API token at once",
		Args:  args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		tok, err := c.RevokeToken(cmd.Context(), argv[0], reason)
		if err != nil {
			return err
		}
		if *output != "" {
			return a.printObjects(*output, []*resource.Object{tok}, false)
		}
		fmt.Fprintf(a.stdout, "token/%s revoked\n", argv[0])
		return nil
	}
	return cmd
}

func (a *app) whoamiCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the server takes you to be",
		Args:  args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		id, err := c.WhoAmI(cmd.Context())
		if err != nil {
			return err
		}
		if *output != formatTable {
			return writeData(a.stdout, *output, id)
		}
		grants := id.Grants
		if len(grants) == 0 {
			grants = []client.Grant{{Roles: id.Roles, Environments: id.Environments, From: "-"}}
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLES\tENVIRONMENTS\tFROM")
		for _, g := range grants {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id.Name, orNone(strings.Join(g.Roles, ",")), orAll(strings.Join(g.Environments, ",")), orNone(g.From))
		}
		return tw.Flush()
	}
	return cmd
}
