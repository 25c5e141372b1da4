package demo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/internal/pgcluster"
)

func TestFindingPostgreSQL(t *testing.T) {
	t.Parallel()

	// machine is an installer on a made-up machine: installed says whether
	// the server binaries are there; commands records what it ran.
	machine := func(installed bool, euid int, aptGet string) (*installer, *[]string) {
		var commands []string
		in := &installer{euid: euid, aptGet: aptGet, out: io.Discard,
			find: func() (string, error) {
				if installed {
					return "/usr/lib/postgresql/15/bin", nil
				}
				return "", pgcluster.ErrNotInstalled
			},
			run: func(_ context.Context, _ io.Writer, name string, args ...string) error {
				commands = append(commands, name+" "+strings.Join(args, " "))
				installed = len(args) > 0 && args[0] == "install"
				return nil
			}}
		return in, &commands
	}

	t.Run("InstalledItIsUsedAsItIs", func(t *testing.T) {
		t.Parallel()
		in, commands := machine(true, 1000, "/usr/bin/apt-get")
		if dir, err := in.binDir(context.Background()); err != nil || dir != "/usr/lib/postgresql/15/bin" || len(*commands) > 0 {
			t.Errorf("got %q, %v; ran %q", dir, err, *commands)
		}
	})

	t.Run("MissingAsRootDebiansPackageIsInstalledAndSaidSo", func(t *testing.T) {
		t.Parallel()
		in, commands := machine(false, 0, "/usr/bin/apt-get")
		var said bytes.Buffer
		in.out = &said
		dir, err := in.binDir(context.Background())
		if err != nil || dir == "" {
			t.Fatalf("got %q, %v", dir, err)
		}
		want := []string{"/usr/bin/apt-get update -qq", "/usr/bin/apt-get install -y -qq --no-install-recommends postgresql"}
		if strings.Join(*commands, "\n") != strings.Join(want, "\n") {
			t.Errorf("ran %q; want %q", *commands, want)
		}
		if !strings.Contains(said.String(), "installing Debian's postgresql package") {
			t.Errorf("did not say what it does: %q", said.String())
		}
	})

	for _, tc := range []struct {
		name      string
		euid      int
		aptGet    string
		noInstall bool
		want      string
	}{
		{"MissingAndNotRootItSaysHowToInstallIt", 1000, "/usr/bin/apt-get", false, "installing it needs root: run 'sudo apt-get install postgresql'"},
		{"MissingWithoutAptGetItSaysWhatIsMissing", 0, "", false, "there is no apt-get here"},
		{"MissingWithNoInstallNothingIsInstalled", 0, "/usr/bin/apt-get", true, "--no-install"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, commands := machine(false, tc.euid, tc.aptGet)
			in.noInstall = tc.noInstall
			_, err := in.binDir(context.Background())
			if !errors.Is(err, pgcluster.ErrNotInstalled) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want ErrNotInstalled saying %q", err, tc.want)
			}
			if len(*commands) > 0 {
				t.Errorf("ran %q", *commands)
			}
		})
	}
}

func TestTheFixturesDatesAreMovedToToday(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 3, 1, 23, 30, 0, 0, time.UTC) // 97 days after 2026-11-24
	shift := dateShift(now)
	if shift != 97 {
		t.Fatalf("shift %d days; want 97", shift)
	}
	in := "5001,301,1001,ORD-1001,2026-11-02T10:15:00-05:00,120.00\r\n" +
		"INQ-1,2026-09-15 14:00,2026-11-10,\"2026-11-11\"\n" +
		"2026-11-02;ORD-2026-11-02-X;2026-11-02X\n"
	want := "5001,301,1001,ORD-1001,2027-02-07T10:15:00-05:00,120.00\r\n" +
		"INQ-1,2026-12-21 14:00,2027-02-15,\"2027-02-16\"\n" +
		"2027-02-07;ORD-2026-11-02-X;2026-11-02X\n"
	if got := string(shiftDates([]byte(in), shift)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTheFixturesTellTheStory(t *testing.T) {
	t.Parallel()
	m, err := readMail("acme_corrections.eml")
	if err != nil {
		t.Fatal(err)
	}
	if m.from != "jane.doe@acme.example" || m.attachment != "ACME corrections wk47.csv" || m.subject != "Corrections wk47" {
		t.Errorf("the mail: %+v", m)
	}
	for _, a := range arrivals {
		if _, err := fixture(a.fixture); err != nil {
			t.Error(err)
		}
	}
	for _, s := range seeds {
		if _, err := fixture(s.fixture); err != nil {
			t.Error(err)
		}
	}
}
