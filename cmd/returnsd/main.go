// Command returnsd applies brands' batch files to the partner-marketing action ledger.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	// Brands' timezones are required config, and a container built FROM
	// scratch has no /usr/share/zoneinfo: the binary carries the zone database
	// (about 450 kB) so every build loads them the same wherever it runs. A
	// system zoneinfo, where there is one, is still read first.
	_ "time/tzdata"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops gracefully (the daemon lets a running apply
		// finish); a second one means now.
		<-signals
		cancel()
		s := <-signals
		fmt.Fprintf(os.Stderr, "returnsd: %s again: exiting at once\n", s)
		os.Exit(130)
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	cancel()
	os.Exit(exitCode(err, os.Stderr))
}
