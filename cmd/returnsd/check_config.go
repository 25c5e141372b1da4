package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"
)

// checkConfig is returnsd check-config: it loads and validates the config as
// returnsd run would, touching no database, server or secret file, and prints
// when each job runs next. An invalid config is reported one problem per line
// on stderr, ending in one "returnsd: ..." line, exit status 1 like every
// command that cannot load its config; 2 stays for mistakes on the command line.
func (e *env) checkConfig(_ context.Context, args []string) error {
	flags, cfgPath := e.flags("check-config")
	atFlag := flags.String("at", "", "the clock, an RFC 3339 time (default: now)")
	if err := flags.Parse(args); err != nil {
		return usagef("check-config: %v", err)
	}
	if flags.NArg() > 0 {
		return usagef("check-config takes no arguments")
	}
	at, err := clockFlag("check-config", *atFlag)
	if err != nil {
		return err
	}
	if err := e.loadConfig(*cfgPath); err != nil {
		return e.reportInvalidConfig(err)
	}
	jobs, err := e.cfg.Jobs()
	if err != nil {
		return err // Validate parsed these already; a failure here is a bug
	}
	fmt.Fprintf(e.stdout, "config OK: %s, %s\n", count(len(e.cfg.Brands), "brand"), count(len(e.cfg.Sources), "source"))
	fmt.Fprintf(e.stdout, "next runs after %s:\n", at.Format(time.RFC3339))
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tSCHEDULE\tZONE\tNEXT RUN")
	for _, j := range jobs {
		zone := j.Schedule.Location()
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", j.Name, j.Schedule, zone, j.Schedule.Next(at).In(zone).Format("2006-01-02 15:04 -07:00 MST"))
	}
	return w.Flush()
}

// clockFlag reads an --at flag: an RFC 3339 time, or now when empty.
func clockFlag(cmd, value string) (time.Time, error) {
	if value == "" {
		return time.Now(), nil
	}
	at, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, usagef("%s: --at %q is not an RFC 3339 time such as 2026-11-01T00:00:00-05:00", cmd, value)
	}
	return at, nil
}

// reportInvalidConfig prints each problem of a config that did not load on a
// line of its own (each names its field) and returns the one-line summary. A
// file that cannot be opened is a single problem, returned as it is.
func (e *env) reportInvalidConfig(err error) error {
	if _, ok := errors.AsType[*fs.PathError](err); ok {
		return err
	}
	problems := strings.Split(err.Error(), "\n")
	for _, p := range problems {
		fmt.Fprintln(e.stderr, p)
	}
	return fmt.Errorf("config is not valid: %s", count(len(problems), "problem"))
}

// count is "1 brand" or "2 brands".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
