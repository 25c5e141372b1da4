package main

import (
	"context"

	"github.com/returnsd/returnsd/daemon"
)

// runDaemon is `returnsd run`: the daemon, until SIGTERM or SIGINT (see main).
// It migrates nothing (returnsd migrate does) and refuses to start on an
// invalid config or a schema behind this binary.
func (e *env) runDaemon(ctx context.Context, args []string) error {
	fs, cfg := e.flags("run")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("run takes no arguments")
	}
	l, err := e.openLedgerPool(ctx, daemon.Connections(e.cfg))
	if err != nil {
		return err
	}
	defer l.Close()
	d, err := daemon.New(daemon.Params{Config: e.cfg, Ledger: l, Logger: e.logger})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
