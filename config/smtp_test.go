package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateSMTP(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		breaks func(c *Config)
		want   string
	}{
		{"RequiredByAnIMAPSource", func(c *Config) { c.SMTP = SMTP{} },
			"smtp: is required: imap source inbox mails its result files back to their senders"},
		{"AddressRequired", func(c *Config) { c.SMTP.Address = "" }, "smtp.address: is required (host:port, e.g. smtp.platform.example:465)"},
		{"AddressWithoutPort", func(c *Config) { c.SMTP.Address = "smtp.example" }, `smtp.address: "smtp.example" is not host:port`},
		{"NoPlaintext", func(c *Config) { c.SMTP.TLS = TLSNone }, `smtp.tls: "none" is not implicit or starttls (mail is only sent over TLS)`},
		{"ExplicitIsAnFTPWord", func(c *Config) { c.SMTP.TLS = TLSExplicit }, `smtp.tls: "explicit" is not implicit or starttls (mail is only sent over TLS)`},
		{"FromRequired", func(c *Config) { c.SMTP.From = "" }, "smtp.from: is required: the sender address of the mail returnsd sends"},
		{"FromMustBeAnAddress", func(c *Config) { c.SMTP.From = "returnsd" }, `smtp.from: "returnsd" is not an email address`},
		{"LiteralPassword", func(c *Config) { c.SMTP.PasswordFile, c.SMTP.PasswordEnv = "", Secret{value: "hunter2"} },
			"smtp.password: is written literally in the config; use password: ${VAR} or password_file"},
		{"PasswordAndFile", func(c *Config) { c.SMTP.PasswordEnv = SecretFromEnv("x") }, "smtp.password: set password or password_file, not both"},
		{"PasswordWithoutUsername", func(c *Config) { c.SMTP.Username = "" }, "smtp.username: is required with a password"},
		{"UsernameWithoutPassword", func(c *Config) { c.SMTP.PasswordFile = "" }, "smtp.password: a username needs password: ${VAR} or password_file"},
		{"TimeoutInDays", func(c *Config) { c.SMTP.Timeout = Duration{Days: 1} }, "smtp.timeout: 1d: want a positive clock duration such as 30s or 2m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			tt.breaks(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate: no error; want %q", tt.want)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				found = found || line == tt.want
			}
			if !found {
				t.Errorf("Validate:\n%v\nwant the line:\n%s", err, tt.want)
			}
		})
	}

	t.Run("NotRequiredWithoutIMAPSources", func(t *testing.T) {
		t.Parallel()
		c := validConfig(t)
		c.Sources, c.SMTP = c.Sources[:3], SMTP{}
		if err := c.WithDefaults().Validate(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ARelayWithoutLogin", func(t *testing.T) {
		t.Parallel()
		c := validConfig(t)
		c.SMTP.Username, c.SMTP.PasswordFile, c.SMTP.TLS = "", "", TLSStartTLS
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSMTPDefaults(t *testing.T) {
	t.Parallel()
	if got := (SMTP{}).withDefaults(); !got.IsZero() {
		t.Errorf("an absent section got defaults: %+v", got)
	}
	got := SMTP{Address: "smtp.example:587", TLS: TLSStartTLS}.withDefaults()
	if got.TLS != TLSStartTLS || got.Timeout != (Duration{Time: time.Minute}) {
		t.Errorf("defaults = %+v", got)
	}
}

func TestSMTPPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	os.WriteFile(file, []byte("from-file\r\n"), 0o600)
	if pw, err := (&SMTP{PasswordFile: file}).Password(); err != nil || pw != "from-file" {
		t.Errorf("Password() = %q, %v", pw, err)
	}
	if pw, err := (&SMTP{PasswordEnv: SecretFromEnv("from-env")}).Password(); err != nil || pw != "from-env" {
		t.Errorf("Password() = %q, %v", pw, err)
	}
	if _, err := (&SMTP{PasswordFile: filepath.Join(dir, "missing")}).Password(); err == nil || !strings.HasPrefix(err.Error(), "smtp: read password_file") {
		t.Errorf("err %v", err)
	}
}

func TestLoadSMTPPasswordFromTheEnvironment(t *testing.T) {
	t.Parallel()
	y := minimal + `smtp:
  address: smtp.platform.example:465
  username: returnsd
  password: ${SMTP_PASSWORD}
  from: returnsd <returns@platform.example>
`
	c, err := Load(strings.NewReader(y), env(map[string]string{"SMTP_PASSWORD": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := c.SMTP.Password(); err != nil || pw != "s3cret" {
		t.Errorf("Password() = %q, %v", pw, err)
	}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(format, c.SMTP); strings.Contains(s, "s3cret") {
			t.Errorf("%s shows the password: %s", format, s)
		}
	}
	literal := strings.Replace(y, "${SMTP_PASSWORD}", "hunter2", 1)
	if _, err := Load(strings.NewReader(literal), env(nil)); err == nil || !strings.Contains(err.Error(), "smtp.password: is written literally") {
		t.Errorf("a literal password: %v", err)
	}
}
