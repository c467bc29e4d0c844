package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/audit"
	"github.com/airlock-dev/airlock/internal/client"
)

func (a *app) auditCommand() *cobra.Command {
	return group("audit", "Read, export and verify the tamper-evident audit log",
		a.auditListCommand(),
		a.auditExportCommand(),
		a.auditVerifyCommand(),
		a.auditCheckpointCommand(),
		a.auditPublicKeyCommand(),
	)
}

func (a *app) auditListCommand() *cobra.Command {
	var (
		f     client.AuditFilter
		since string
	)
	cmd := &cobra.Command{
		Use:     "list [--actor A] [--kind K] [--since DURATION|RFC3339] [--limit N]",
		Short:   "List audit entries",
		Example: "  airlock audit list --kind Environment --since 24h",
		Args:    args(cobra.NoArgs),
	}
	output := outputFlag(cmd, formatTable, formatJSON, formatYAML)
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only entries by this actor")
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only entries about this kind, e.g. Environment")
	cmd.Flags().StringVar(&since, "since", "", "only entries newer than a duration ago (e.g. 24h, 7d) or an RFC 3339 time")
	cmd.Flags().Int64Var(&f.After, "after", 0, "only entries after this sequence number")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many entries")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if since != "" {
			t, err := a.parseTime(since, -1)
			if err != nil {
				return &usageError{fmt.Errorf("--since: %w", err)}
			}
			f.Since = t
		}
		if f.Limit < 0 {
			return usagef("--limit must not be negative")
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		entries, err := c.AuditEntries(cmd.Context(), f)
		if err != nil {
			return err
		}
		if *output != formatTable {
			if entries == nil {
				entries = []audit.Entry{}
			}
			return writeData(a.stdout, *output, struct {
				Items []audit.Entry `json:"items"`
			}{entries})
		}
		if len(entries) == 0 {
			fmt.Fprintln(a.stderr, "No audit entries found.")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tOBJECT\tREVISION\tREASON")
		for _, e := range entries {
			obj := e.Kind
			if e.Name != "" {
				obj += "/" + e.Name
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, orNone(obj), e.Revision, e.Reason)
		}
		return tw.Flush()
	}
	return cmd
}

func (a *app) auditExportCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export -o FILE",
		Short: "Export the whole audit log as JSONL for offline verification",
		Long: `Export the whole audit log as JSONL: a header, every signed checkpoint
(one signed at export time included), then every entry. The file is created
with mode 0600 and appears only once the export is complete. -o - writes to
standard output.

Verify it anywhere with: airlock audit verify --file FILE --public-key KEY`,
		Example: "  airlock audit export -o audit.jsonl",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("give the file to write with -o FILE (or -o - for standard output)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if file == "-" {
				_, err := c.AuditExport(cmd.Context(), a.stdout)
				return err
			}
			n, err := exportToFile(file, func(w io.Writer) (int64, error) { return c.AuditExport(cmd.Context(), w) })
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "audit log exported to %s (%d bytes)\n", file, n)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "output", "o", "", "file to write (required; - for standard output)")
	return cmd
}

// exportToFile writes through a temporary file in the same directory,
// created 0600, and renames it into place only when write succeeded, so
// FILE never holds a partial export.
func exportToFile(path string, write func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", path, unwrapPath(err))
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	n, err := write(tmp)
	if err != nil {
		return n, err
	}
	if err := tmp.Sync(); err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	done = true
	return n, nil
}

func (a *app) auditVerifyCommand() *cobra.Command {
	var file, keyFile string
	cmd := &cobra.Command{
		Use:   "verify [--file FILE --public-key KEYFILE]",
		Short: "Verify the audit log's hash chain and signed checkpoints",
		Long: `Verify the audit log's hash chain and signed checkpoints.

Without --file the server verifies its stored log. With --file, an export
(see 'airlock audit export') is verified here, offline, against the public
key in KEYFILE (see 'airlock audit public-key'); no server is needed, and
the export must hold at least one signed checkpoint.

Exit code 0 when the log is intact; 1, naming the first broken entry, when
it is not.`,
		Example: `  airlock audit verify
  airlock audit verify --file audit.jsonl --public-key airlock.pub`,
		Args: args(cobra.NoArgs),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.Flags().StringVar(&file, "file", "", "verify this export offline instead of asking the server")
	cmd.Flags().StringVar(&keyFile, "public-key", "", "PEM public key to verify an export against (with --file)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var res client.VerifyResult
		switch {
		case file != "" && keyFile == "":
			return usagef("--file needs --public-key KEYFILE: an export is only as trustworthy as the key it is checked against")
		case file == "" && keyFile != "":
			return usagef("--public-key is used with --file; without --file the server verifies its own log")
		case file != "":
			rep, err := verifyExportFile(file, keyFile)
			if err != nil {
				return err
			}
			res = client.VerifyResult{OK: rep.OK(), Summary: rep.String(), Report: rep}
		default:
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.AuditVerify(cmd.Context())
			if err != nil {
				return err
			}
			res = *r
		}
		switch {
		case *output != "":
			if err := writeData(a.stdout, *output, res); err != nil {
				return err
			}
		case res.OK:
			fmt.Fprintln(a.stdout, res.Summary)
		default:
			fmt.Fprintf(a.stderr, "error: audit log %s\n", res.Summary)
		}
		if !res.OK {
			return &exitError{ExitError}
		}
		return nil
	}
	return cmd
}

func verifyExportFile(file, keyFile string) (audit.Report, error) {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return audit.Report{}, fmt.Errorf("read public key %s: %w", keyFile, unwrapPath(err))
	}
	pub, err := audit.ParsePublicKey(pem)
	if err != nil {
		return audit.Report{}, fmt.Errorf("public key %s: %w", keyFile, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return audit.Report{}, fmt.Errorf("read export %s: %w", file, unwrapPath(err))
	}
	defer f.Close()
	rep, err := audit.VerifyExport(f, pub)
	if err != nil {
		return audit.Report{}, fmt.Errorf("export %s: %w", file, err)
	}
	return rep, nil
}

func (a *app) auditCheckpointCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Have the server sign a checkpoint over the log now",
		Args:  args(cobra.NoArgs),
	}
	output := outputFlag(cmd, "", formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		cp, err := c.SignCheckpoint(cmd.Context())
		if err != nil {
			return err
		}
		if *output != "" {
			return writeData(a.stdout, *output, cp)
		}
		fmt.Fprintf(a.stdout, "checkpoint signed: %s entries, head %s, key %s\n", strconv.FormatInt(cp.Size, 10), cp.Head, cp.KeyID)
		return nil
	}
	return cmd
}

func (a *app) auditPublicKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "public-key",
		Short:   "Print the server's audit public key (PEM)",
		Long:    "Print the server's audit public key (PEM), to verify exports offline.\nCheck it through a channel you trust before relying on it.",
		Example: "  airlock audit public-key > airlock.pub",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			pem, err := c.PublicKey(cmd.Context())
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(pem)
			return err
		},
	}
}
