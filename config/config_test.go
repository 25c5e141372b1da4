package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookups(t *testing.T) {
	t.Parallel()
	c := validConfig(t)

	t.Run("BrandReturnsTheBrandInTheConfig", func(t *testing.T) {
		t.Parallel()
		b, err := c.Brand("globex")
		if err != nil || b != &c.Brands[1] {
			t.Errorf("Brand(globex) = %p, %v; want %p", b, err, &c.Brands[1])
		}
	})
	t.Run("BrandErrorListsTheKnownBrands", func(t *testing.T) {
		t.Parallel()
		_, err := c.Brand("initech")
		if err == nil || err.Error() != `unknown brand "initech" (known: acme, globex)` {
			t.Errorf("Brand(initech) error = %v", err)
		}
	})
	t.Run("SourceReturnsTheSourceInTheConfig", func(t *testing.T) {
		t.Parallel()
		s, err := c.Source("inbox")
		if err != nil || s != &c.Sources[3] {
			t.Errorf("Source(inbox) = %p, %v", s, err)
		}
	})
	t.Run("SourceErrorListsTheKnownSources", func(t *testing.T) {
		t.Parallel()
		_, err := c.Source("nope")
		if err == nil || err.Error() != `unknown source "nope" (known: drop, acme-sftp, globex-ftp, inbox)` {
			t.Errorf("Source(nope) error = %v", err)
		}
	})
	t.Run("ErrorsSayWhenNothingIsConfigured", func(t *testing.T) {
		t.Parallel()
		_, err := (&Config{}).Brand("acme")
		if err == nil || !strings.Contains(err.Error(), "none configured") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestSourcePassword(t *testing.T) {
	t.Parallel()

	file := func(t *testing.T, content string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name    string
		content string
		want    string
	}{
		{"TrimsOneTrailingNewline", "s3cret\n", "s3cret"},
		{"TrimsOneTrailingCRLF", "s3cret\r\n", "s3cret"},
		{"KeepsASecondNewline", "s3cret\n\n", "s3cret\n"},
		{"KeepsSpaces", " s3cret ", " s3cret "},
	} {
		t.Run("ReadsPasswordFileAnd"+tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Source{Name: "x", PasswordFile: file(t, tt.content)}
			if got, err := s.Password(); err != nil || got != tt.want {
				t.Errorf("Password() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("RejectsAnEmptyPasswordFile", func(t *testing.T) {
		t.Parallel()
		s := &Source{Name: "x", PasswordFile: file(t, "\n")}
		if _, err := s.Password(); err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("Password() error = %v", err)
		}
	})
	t.Run("NamesTheSourceWhenTheFileIsMissing", func(t *testing.T) {
		t.Parallel()
		s := &Source{Name: "globex-ftp", PasswordFile: "/nonexistent/pw"}
		if _, err := s.Password(); err == nil || !strings.HasPrefix(err.Error(), "source globex-ftp: read password_file:") {
			t.Errorf("Password() error = %v", err)
		}
	})
	t.Run("ReturnsTheEnvironmentPassword", func(t *testing.T) {
		t.Parallel()
		s := &Source{PasswordEnv: SecretFromEnv("pw")}
		if got, err := s.Password(); err != nil || got != "pw" {
			t.Errorf("Password() = %q, %v", got, err)
		}
	})
	t.Run("IsEmptyWithoutAPassword", func(t *testing.T) {
		t.Parallel()
		if got, err := (&Source{}).Password(); err != nil || got != "" {
			t.Errorf("Password() = %q, %v", got, err)
		}
	})
}

func TestWithDefaultsLeavesTheOriginalAlone(t *testing.T) {
	t.Parallel()
	c := &Config{
		Brands:  []Brand{{ID: "acme"}},
		Sources: []Source{{Name: "drop", Type: LocalDir, Path: "/p"}},
	}
	d := c.WithDefaults()
	if c.SpoolDir != "" || c.Log.Level != "" || !c.Brands[0].Contract.Inquiries.Window.Max.IsZero() ||
		c.Sources[0].Schedule != "" || c.Sources[0].ResultPath != "" {
		t.Errorf("original changed: %+v", c)
	}
	if d.Sources[0].Schedule != DefaultSchedule || d.Sources[0].ResultPath != "/p" {
		t.Errorf("defaults = %+v", d.Sources[0])
	}
}
