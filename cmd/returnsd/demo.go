package main

import (
	"context"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/returnsd/returnsd/internal/demo"
)

// demo is `returnsd demo`: the whole product on this machine (internal/demo).
// It runs on a config of its own, so it takes no --config.
func (e *env) demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p := demo.Params{Stdout: e.stdout, Stderr: e.stderr}
	fs.BoolVar(&p.ExitWhenDone, "exit-when-done", false, "stop once the story is printed (tests, CI)")
	fs.BoolVar(&p.Keep, "keep", false, "keep the work folder when the demo ends")
	fs.BoolVar(&p.NoInstall, "no-install", false, "never install PostgreSQL: fail if it is missing")
	fs.DurationVar(&p.Wait, "wait", demo.DefaultWait, "how long the files may take to be processed")
	fs.StringVar(&p.Listen, "listen", "127.0.0.1:0", "the daemon's operations listener (default: a free port)")
	fs.BoolVar(&p.Verbose, "v", false, "the daemon's log on stderr too")
	for _, a := range args {
		if a == "--config" || a == "-config" || strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config=") {
			return usagef("demo runs on a config of its own and takes no --config")
		}
	}
	if err := fs.Parse(args); err != nil {
		return usagef("demo: %v", err)
	}
	if fs.NArg() > 0 {
		return usagef("demo takes no arguments")
	}
	if p.Wait <= 0 || p.Wait > 24*time.Hour {
		return usagef("demo: --wait %s: want a duration such as 2m", p.Wait)
	}
	return demo.Run(ctx, p)
}
