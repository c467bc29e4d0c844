package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
)

// minBreakGlassReason mirrors the server's minimum, so a short reason is a
// usage error before anything is sent.
const minBreakGlassReason = 10

func (a *app) breakglassCommand() *cobra.Command {
	c := group("breakglass", "Sealed emergency credentials: store, open (no approval, alerted and reviewed), drill, list",
		a.breakglassListCommand(),
		a.breakglassStoreCommand(),
		a.breakglassOpenCommand(),
		a.breakglassDrillCommand(),
	)
	c.Aliases = []string{"bg"}
	c.Long = `A BreakGlass (declared with apply) holds one sealed credential for an
environment, for when production is on fire and normal access will not do.
Opening it needs no approval, only a reason; it alerts every notification
sink at once, opens a sev1 incident and a review due in 24 hours, and the
credential is rotated once its window (validFor) is over: through its
broker, or marked "rotation due" until an admin stores a new one.

Drill the procedure regularly (airlock breakglass drill): a break-glass
whose last successful drill is older than its drillEvery (90 days by
default) is reported as overdue.`
	return c
}

func (a *app) breakglassListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List break-glass credentials with their state, last drill and whether a drill is overdue",
		Args:  args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		l, err := c.ListBreakGlass(cmd.Context())
		if err != nil {
			return err
		}
		if *output != formatTable {
			if l.Summaries == nil {
				l.Summaries = []client.BreakGlassSummary{}
			}
			return writeData(a.stdout, *output, l.Summaries)
		}
		if len(l.Summaries) == 0 {
			fmt.Fprintln(a.stderr, "No break-glass credentials declared.")
			return nil
		}
		return a.printBreakGlassTable(a.stdout, l.Summaries)
	}
	return cmd
}

func (a *app) printBreakGlassTable(w io.Writer, items []client.BreakGlassSummary) error {
	now := a.now()
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENV\tVALID FOR\tBROKER\tCREDENTIAL\tLAST DRILL\tOVERDUE")
	for _, s := range items {
		cred := strings.Replace(s.Credential, "NAME", s.Name, 1)
		if s.OpenedAt != nil && s.Credential != "" && !strings.HasPrefix(s.Credential, "rotation due") {
			cred = fmt.Sprintf("%s by %s %s ago", s.Credential, s.OpenedBy, humanDuration(now.Sub(*s.OpenedAt)))
		}
		if s.RotationError != "" {
			cred += " (last attempt failed: " + shorten(s.RotationError, 60) + ")"
		}
		drill := "never"
		if d := s.LastDrill; d != nil {
			result := "ok"
			if !d.OK {
				result = "FAILED"
			}
			drill = fmt.Sprintf("%s ago by %s, %s", humanDuration(now.Sub(d.At)), d.By, result)
		}
		overdue := "no"
		if s.DrillOverdue {
			overdue = "yes (every " + s.DrillEvery + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Environment, s.ValidFor, orNone(s.Broker), cred, drill, overdue)
	}
	return tw.Flush()
}

func (a *app) breakglassStoreCommand() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "store NAME --from-file FILE|-",
		Short: "Seal and store the credential of a break-glass (admin)",
		Long: `Seal the credential in FILE (- for standard input) into the break-glass
NAME, replacing the one there and ending an outstanding open. The server
keeps it encrypted with a key outside the database; nothing prints or
records it, only its SHA-256 fingerprint prefix.`,
		Example: `  airlock breakglass store prod-root --from-file root.txt
  vault kv get -field=dsn secret/prod-root | airlock breakglass store prod-root --from-file -`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&from, "from-file", "", "the file holding the credential, or - for standard input (required)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		var (
			cred []byte
			err  error
		)
		switch from {
		case "":
			return usagef("--from-file is required: the file holding the credential, or - for standard input (never a command-line argument)")
		case "-":
			cred, err = io.ReadAll(io.LimitReader(a.stdin, 1<<20))
		default:
			cred, err = os.ReadFile(from)
		}
		if err != nil {
			return fmt.Errorf("read the credential: %w", err)
		}
		defer clear(cred)
		c, err := a.client()
		if err != nil {
			return err
		}
		stored, err := c.StoreBreakGlass(cmd.Context(), argv[0], cred)
		if err != nil {
			return err
		}
		if *output != "" {
			return writeData(a.stdout, *output, stored)
		}
		fmt.Fprintf(a.stdout, "breakglass/%s credential stored (%s)\n", stored.Name, stored.Fingerprint)
		return nil
	}
	return cmd
}

func (a *app) breakglassOpenCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "open NAME --reason TEXT",
		Short: "Open a break-glass credential: no approval, a reason; every sink is alerted",
		Long: `Open the break-glass NAME. No approval is needed, but a reason of at least
10 characters is, and the open is loud: every notification sink is alerted
at once, a sev1 incident is opened, and a review (one tech-lead and one
SRE, never you) is due within 24 hours. The credential is shown once, on
standard output alone (the rest goes to standard error); use it within its
window (validFor), after which it is rotated. A second open is refused
until the credential has been replaced.

-o json prints {credential, validUntil, incident, review}.`,
		Example: `  airlock breakglass open prod-root --reason "orders-db down, the operator is unreachable"`,
		Args:    args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON)
	cmd.Flags().StringVar(&reason, "reason", "", "what is broken and why normal access will not do (required, at least 10 characters)")
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		if n := len(strings.TrimSpace(reason)); n < minBreakGlassReason {
			return usagef("--reason is required (at least %d characters): say what is broken and why normal access will not do", minBreakGlassReason)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		o, err := c.OpenBreakGlass(cmd.Context(), argv[0], reason)
		if err != nil {
			return err
		}
		if *output == formatJSON {
			return writeJSON(a.stdout, map[string]any{"credential": o.Credential, "validUntil": o.ValidUntil, "incident": o.Incident, "review": o.Review})
		}
		fmt.Fprintf(a.stderr, "breakglass/%s opened in %s; %d sink(s) alerted. Incident %s is open; review %s is due within 24h.\nThe credential below is valid until %s (%s from now) and is then rotated. It is not shown again.\n",
			o.Name, o.Environment, o.Notified, o.Incident, o.Review, o.ValidUntil.UTC().Format(time.RFC3339), humanDuration(o.ValidUntil.Sub(a.now())))
		fmt.Fprintln(a.stdout, o.Credential)
		return nil
	}
	return cmd
}

func (a *app) breakglassDrillCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drill NAME",
		Short: "Drill a break-glass end to end without using the credential",
		Long: `Run the break-glass procedure for NAME without using the credential in
anger: the sealed credential must open with the server's key (it is not
shown), no earlier open may be outstanding, the alert must reach at least
one sink (a breakglass.drill notification is sent), and the broker, if
any, must build. No incident or review is opened. The result is recorded
and resets the overdue clock when it passed.

Exit codes: 0 the drill passed; 1 it failed (the failed steps say why).`,
		Args: args(cobra.ExactArgs(1)),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, argv []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		d, err := c.DrillBreakGlass(cmd.Context(), argv[0])
		if err != nil {
			return err
		}
		if *output != "" {
			if err := writeData(a.stdout, *output, d); err != nil {
				return err
			}
		} else {
			result := "passed"
			if !d.OK {
				result = "FAILED"
			}
			fmt.Fprintf(a.stdout, "breakglass/%s drill %s\n", d.Name, result)
			for _, s := range d.Steps {
				fmt.Fprintf(a.stdout, "  %s\n", s)
			}
		}
		if !d.OK {
			return &exitError{code: ExitError}
		}
		return nil
	}
	return cmd
}
