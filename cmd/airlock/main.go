// Command airlock is the airlock CLI and server; see internal/cli.
package main

import (
	"os"

	"github.com/airlock-dev/airlock/internal/cli"
	"github.com/airlock-dev/airlock/internal/gctune"
)

func main() {
	gctune.Apply()
	os.Exit(cli.Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
