package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/web"
)

// users is `returnsd users add|passwd|remove|list`: who may sign in to the
// ops pages. A password is never an argument (it would sit in the shell's
// history and in ps): it is asked for on a terminal, else read from stdin.
func (e *env) users(ctx context.Context, rest, global []string) error {
	if len(rest) == 0 {
		return usagef("users: say what to do: users add|passwd|remove|list")
	}
	args := append(rest[1:], global...)
	switch rest[0] {
	case "add":
		return e.usersAdd(ctx, args)
	case "passwd":
		return e.usersPasswd(ctx, args)
	case "remove":
		return e.usersRemove(ctx, args)
	case "list":
		return e.usersList(ctx, args)
	}
	return usagef("users: unknown subcommand %q: users add|passwd|remove|list", rest[0])
}

func (e *env) usersAdd(ctx context.Context, args []string) error {
	fs, cfg := e.flags("users add")
	role := fs.String("role", "", "ops (every brand, the controls) or brand (read-only, the --brand brands)")
	var brands []string
	fs.Func("brand", "a brand the user may see (repeat, or comma-separated)", func(v string) error {
		for b := range strings.SplitSeq(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				brands = append(brands, b)
			}
		}
		return nil
	})
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("users add takes one NAME: users add (--role ops | --brand B) NAME")
	}
	if *role == "" && len(brands) > 0 {
		*role = string(ledger.RoleBrand)
	}
	switch ledger.WebRole(*role) {
	case ledger.RoleOps:
		if len(brands) > 0 {
			return usagef("users add: an ops user sees every brand; --brand is for brand users")
		}
	case ledger.RoleBrand:
		if len(brands) == 0 {
			return usagef("users add: a brand user needs --brand B")
		}
		for _, b := range brands {
			if _, err := e.cfg.Brand(b); err != nil {
				return usagef("users add: --brand: %v", err)
			}
		}
	default:
		return usagef("users add: say --role ops, or --brand B for a read-only user of brand B")
	}
	name := strings.ToLower(pos[0])
	hash, err := e.newPassword(name)
	if err != nil {
		return err
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.AddWebUser(ctx, ledger.AddWebUserParams{Name: name, Role: ledger.WebRole(*role), Brands: brands,
		PasswordHash: hash, Actor: e.actor()}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s added (%s)\n", name, describeRole(ledger.WebRole(*role), brands))
	return nil
}

func describeRole(role ledger.WebRole, brands []string) string {
	if role == ledger.RoleOps {
		return "ops: every brand"
	}
	return "brand, read-only: " + strings.Join(brands, ", ")
}

func (e *env) usersPasswd(ctx context.Context, args []string) error {
	fs, cfg := e.flags("users passwd")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("users passwd takes one NAME")
	}
	name := strings.ToLower(pos[0])
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	if _, _, err := l.WebUserForLogin(ctx, name); err != nil {
		return err
	}
	hash, err := e.newPassword(name)
	if err != nil {
		return err
	}
	if err := l.SetWebUserPassword(ctx, name, hash, e.actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "password of %s set; their sessions are ended\n", name)
	return nil
}

func (e *env) usersRemove(ctx context.Context, args []string) error {
	fs, cfg := e.flags("users remove")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("users remove takes one NAME")
	}
	name := strings.ToLower(pos[0])
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.RemoveWebUser(ctx, name, e.actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s removed\n", name)
	return nil
}

func (e *env) usersList(ctx context.Context, args []string) error {
	fs, cfg := e.flags("users list")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("users list takes no arguments")
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	users, err := l.WebUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tBRANDS\tCREATED\tLAST SIGN-IN")
	for _, u := range users {
		last := "never"
		if !u.LastLogin.IsZero() && u.LastLogin.Year() > 1 {
			last = u.LastLogin.UTC().Format("2006-01-02 15:04Z")
		}
		brands := strings.Join(u.Brands, ",")
		if u.Role == ledger.RoleOps {
			brands = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, brands, u.CreatedAt.UTC().Format("2006-01-02"), last)
	}
	return tw.Flush()
}

// newPassword reads a new password for name and hashes it: asked twice on a
// terminal, else the first line of stdin.
func (e *env) newPassword(name string) (string, error) {
	var password string
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(e.stderr, "New password for %s (at least %d characters): ", name, web.MinPasswordLength)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		fmt.Fprint(e.stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		if string(first) != string(again) {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		password = string(first)
	} else {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
		if password == "" {
			return "", errors.New("no password on stdin: give it as the first line (or run this on a terminal)")
		}
	}
	return web.HashPassword(password, 0)
}
