// Package cli implements the airlock command line: kubectl-like verbs that
// talk to an airlock server only through internal/client, and the
// `airlock server` command that runs one.
//
// Exit codes are part of the interface, so CI can tell "not allowed" from
// "broken": 0 ok, 1 error, 2 usage (unknown command, bad flag, missing
// argument), 3 blocked (the server answered 403 or 422: a role, a gate or a
// policy said no).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-dev/airlock/internal/client"
	"github.com/airlock-dev/airlock/internal/server"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitUsage   = 2
	ExitBlocked = 3
)

// Environment variables the CLI reads.
const (
	EnvServer = "AIRLOCK_SERVER"
	EnvToken  = "AIRLOCK_TOKEN"
)

// Execute runs the airlock command line with args (without the program
// name) and returns the process exit code. It never calls os.Exit. SIGINT
// and SIGTERM cancel the running command's context; `airlock server` then
// stops gracefully.
func Execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{
		stdin: stdin, stdout: stdout, stderr: stderr,
		getenv: os.Getenv,
		now:    time.Now,
		serve:  server.Run,
	}
	return a.run(ctx, args)
}

// app is one invocation's world: its streams, environment and clock, so
// tests can run many invocations in parallel.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	httpClient     *http.Client
	serve          func(ctx context.Context, cfg server.Config) error
	// pollBase is how often promote --wait polls at first (default 1s).
	pollBase time.Duration

	// Global flags.
	server string
	token  string
}

// usageError marks an error as the caller's misuse of the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitError ends a command with a code after it has printed its own
// message (e.g. a broken audit log, already reported).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var (
		ue *usageError
		ee *exitError
		ae *client.APIError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusUnprocessableEntity):
		return ExitBlocked
	}
	return ExitError
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		fmt.Fprintf(a.stderr, "error: %s\n", strings.TrimRight(err.Error(), "\n"))
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && a.resolvedToken() == "" {
			fmt.Fprintf(a.stderr, "hint: no token was given; a new server writes its admin token to DATA/admin.token: export %s=$(cat DATA/admin.token)\n", EnvToken)
		}
	}
	code := exitCode(err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "airlock",
		Short: "airlock carries changes to production safely, and keeps the record",
		Long: `airlock holds the line between production and everything else.

Declare environments and pipelines with 'airlock apply', register releases
from CI with 'airlock release create', attach their evidence with 'airlock
evidence add', move them through gates with 'airlock promote', and check the tamper-evident audit log
with 'airlock audit verify'.

Exit codes: 0 ok, 1 error, 2 usage, 3 blocked by a role, gate or policy.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRunE,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "", fmt.Sprintf("airlock server address (env %s, default %s)", EnvServer, client.DefaultServer))
	pf.StringVar(&a.token, "token", "", fmt.Sprintf("API token (env %s)", EnvToken))

	root.AddCommand(
		a.serverCommand(),
		a.applyCommand(),
		a.getCommand(),
		a.deleteCommand(),
		a.releaseCommand(),
		a.evidenceCommand(),
		a.promoteCommand(),
		a.approveCommand(),
		a.rejectCommand(),
		a.approvalsCommand(),
		a.reviewCommand(),
		a.rolloutCommand(),
		a.rollbackCommand(),
		a.statusCommand(),
		a.incidentCommand(),
		a.breakglassCommand(),
		a.changeCommand(),
		a.verdictCommand(),
		a.clusterCommand(),
		a.accessCommand(),
		a.flagsCommand(),
		a.keyCommand(),
		a.tokenCommand(),
		a.whoamiCommand(),
		a.auditCommand(),
		a.versionCommand(),
		a.demoAppCommand(),
		a.demoCommand(),
	)
	return root
}

// groupRunE is the RunE of commands that only hold subcommands: without
// arguments it shows help, otherwise it reports an unknown subcommand. Both
// are usage errors.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		cmd.SetOut(cmd.ErrOrStderr())
		_ = cmd.Help()
		return usagef("%s needs a subcommand", cmd.CommandPath())
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usagef("%s", msg)
}

// group returns a command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRunE}
	c.AddCommand(subs...)
	return c
}

// args wraps a positional-argument check so its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

func (a *app) resolvedServer() string {
	if a.server != "" {
		return a.server
	}
	if s := a.getenv(EnvServer); s != "" {
		return s
	}
	return client.DefaultServer
}

func (a *app) resolvedToken() string {
	if a.token != "" {
		return a.token
	}
	return strings.TrimSpace(a.getenv(EnvToken))
}

// client returns a client of the configured server.
func (a *app) client() (*client.Client, error) {
	opts := []client.Option{client.WithUserAgent("airlock-cli/" + version())}
	if a.httpClient != nil {
		opts = append(opts, client.WithHTTPClient(a.httpClient))
	}
	c, err := client.New(a.resolvedServer(), a.resolvedToken(), opts...)
	if err != nil {
		return nil, &usageError{err}
	}
	return c, nil
}
