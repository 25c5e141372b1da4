package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/returnsd/returnsd/internal/pgcluster"
)

// installer finds PostgreSQL's server binaries, and installs Debian's
// postgresql package when they are missing and it may (as root, with
// apt-get). Its fields are the machine, so that a test can be another one.
type installer struct {
	find   func() (string, error) // pgcluster.BinDir
	euid   int
	aptGet string // path of apt-get, "" when there is none
	// run runs a command, its output to out.
	run       func(ctx context.Context, out io.Writer, name string, args ...string) error
	noInstall bool
	out       io.Writer // what it does, for the person watching
}

func newInstaller(noInstall bool, out io.Writer) *installer {
	apt, _ := exec.LookPath("apt-get")
	return &installer{find: pgcluster.BinDir, euid: os.Geteuid(), aptGet: apt, run: runCommand,
		noInstall: noInstall, out: out}
}

// binDir returns the folder of initdb and pg_ctl, installing them first if
// it must and may.
func (in *installer) binDir(ctx context.Context) (string, error) {
	dir, err := in.find()
	if !errors.Is(err, pgcluster.ErrNotInstalled) {
		return dir, err
	}
	const pkg = "postgresql"
	switch {
	case in.noInstall:
		return "", fmt.Errorf("%w; --no-install: install it (apt-get install %s) and run the demo again", err, pkg)
	case in.aptGet == "":
		return "", fmt.Errorf("%w, and there is no apt-get here to install Debian's %s package: "+
			"install PostgreSQL's server (initdb and pg_ctl) and run the demo again", err, pkg)
	case in.euid != 0:
		return "", fmt.Errorf("%w, and installing it needs root: run 'sudo apt-get install %s' and then the demo again, "+
			"or run the demo as root and it installs it", err, pkg)
	}
	fmt.Fprintf(in.out, "PostgreSQL's server is not installed: installing Debian's %s package\n"+
		"  (apt-get update; apt-get install %s). Debian's package also sets up a cluster of its own\n"+
		"  (\"main\", started as a service where services run); the demo does not use it.\n", pkg, pkg)
	if err := in.run(ctx, in.out, in.aptGet, "update", "-qq"); err != nil {
		return "", fmt.Errorf("apt-get update: %w", err)
	}
	if err := in.run(ctx, in.out, in.aptGet, "install", "-y", "-qq", "--no-install-recommends", pkg); err != nil {
		return "", fmt.Errorf("apt-get install %s: %w", pkg, err)
	}
	dir, err = in.find()
	if err != nil {
		return "", fmt.Errorf("after installing %s: %w", pkg, err)
	}
	fmt.Fprintf(in.out, "  installed: %s\n", dir)
	return dir, nil
}

// runCommand runs name non-interactively, its output to out only if it fails
// (apt-get's progress is noise when it works). A Ctrl-C does not kill it: the
// terminal's interrupt reaches apt-get itself, which stops where it safely
// can, while killing dpkg midway would break the machine's package database.
func runCommand(ctx context.Context, out io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(context.WithoutCancel(ctx), name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	output, err := cmd.CombinedOutput()
	if err != nil {
		out.Write(output)
	}
	return err
}
