package config

import (
	"cmp"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
)

// SMTP is the mail server returnsd sends mail through: result files of imap
// sources go back to their senders as replies. It is always reached over TLS
// with the certificate verified, like an imap source.
type SMTP struct {
	// Address is host:port of the submission server, e.g.
	// smtp.platform.example:465. Required when any source is imap.
	Address string `yaml:"address"`
	// TLS is implicit (TLS from the first byte, usually port 465) or starttls
	// (STARTTLS on a plain port, usually 587; a server that does not offer it
	// is refused, never used in clear). Default: implicit.
	TLS TLSMode `yaml:"tls"`
	// CAFile is a PEM bundle to verify the server's certificate. Default:
	// empty, the system roots.
	CAFile string `yaml:"ca_file"`
	// Username logs in with AUTH PLAIN. Default: empty, no login (a relay that
	// trusts this host); then password and password_file must be empty too.
	Username string `yaml:"username"`
	// PasswordEnv is the login password (YAML field "password"); like a
	// source's, it must be a ${VAR} reference, or use PasswordFile. Read it
	// through Password().
	PasswordEnv Secret `yaml:"password"`
	// PasswordFile holds the password (one trailing newline is trimmed).
	PasswordFile string `yaml:"password_file"`
	// From is the sender address of the mail returnsd sends, e.g.
	// "returnsd <returns@platform.example>". Required with Address.
	From string `yaml:"from"`
	// Timeout bounds every network operation (dial, each command, each read
	// and write). Clock units only. Default: 1m.
	Timeout Duration `yaml:"timeout"`
}

// IsZero reports whether no SMTP server is configured.
func (s *SMTP) IsZero() bool {
	return s.Address == "" && s.TLS == "" && s.CAFile == "" && s.Username == "" &&
		s.PasswordEnv.IsZero() && s.PasswordFile == "" && s.From == "" && s.Timeout.IsZero()
}

// withDefaults fills the defaults of a configured server; an unconfigured one
// stays zero, so "no smtp section" can still be told.
func (s SMTP) withDefaults() SMTP {
	if s.IsZero() {
		return s
	}
	s.TLS = cmp.Or(s.TLS, TLSImplicit)
	if s.Timeout.IsZero() {
		s.Timeout = defaultTimeout
	}
	return s
}

// Password returns the SMTP password: the contents of PasswordFile (one
// trailing newline trimmed) when set, else PasswordEnv; "" when neither is set.
func (s *SMTP) Password() (string, error) {
	return readPassword("smtp", s.PasswordEnv, s.PasswordFile)
}

// readPassword is the password of owner (a source, the smtp section): the
// contents of file when set, else env.
func readPassword(owner string, env Secret, file string) (string, error) {
	if file == "" {
		if why := env.Missing(); why != "" {
			return "", fmt.Errorf("%s: password: %s", owner, why)
		}
		return env.Reveal(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: read password_file: %w", owner, err)
	}
	p := string(b)
	if q, ok := strings.CutSuffix(p, "\n"); ok {
		p = strings.TrimSuffix(q, "\r")
	}
	if p == "" {
		return "", fmt.Errorf("%s: password_file %s is empty", owner, file)
	}
	return p, nil
}

// smtp checks the smtp section; imap sources need one to mail results back.
func (v *validator) smtp(c *Config) {
	s := &c.SMTP
	var imapSource string
	for _, src := range c.Sources {
		if src.Type == IMAP {
			imapSource = src.Name
			break
		}
	}
	if s.IsZero() {
		if imapSource != "" {
			v.addf("smtp", "is required: imap source %s mails its result files back to their senders", imapSource)
		}
		for i, b := range c.Brands {
			for j, p := range b.Contract.Partners {
				if p.Contact != "" {
					v.addf(fmt.Sprintf("brands[%d].contract.partners[%d].contact", i, j),
						"is mailed through the smtp section, which is not configured")
				}
			}
		}
		return
	}
	if s.Address == "" {
		v.add("smtp.address", "is required (host:port, e.g. smtp.platform.example:465)")
	} else if _, port, err := net.SplitHostPort(s.Address); err != nil || port == "" {
		v.addf("smtp.address", "%q is not host:port", s.Address)
	}
	switch s.TLS {
	case TLSImplicit, TLSStartTLS:
	case "":
		v.add("smtp.tls", "is required (implicit or starttls)")
	default:
		v.addf("smtp.tls", "%q is not implicit or starttls (mail is only sent over TLS)", s.TLS)
	}
	if s.From == "" {
		v.add("smtp.from", "is required: the sender address of the mail returnsd sends")
	} else if _, err := mail.ParseAddress(s.From); err != nil {
		v.addf("smtp.from", "%q is not an email address", s.From)
	}
	hasPassword := !s.PasswordEnv.IsZero() || s.PasswordFile != ""
	if !s.PasswordEnv.IsZero() {
		if !s.PasswordEnv.FromEnv() {
			v.add("smtp.password", "is written literally in the config; use password: ${VAR} or password_file")
		}
		if s.PasswordFile != "" {
			v.add("smtp.password", "set password or password_file, not both")
		}
	}
	if hasPassword && s.Username == "" {
		v.add("smtp.username", "is required with a password")
	}
	if s.Username != "" && !hasPassword {
		v.add("smtp.password", "a username needs password: ${VAR} or password_file")
	}
	if d, ok := s.Timeout.Fixed(); !ok || s.Timeout.Days != 0 || d <= 0 {
		v.addf("smtp.timeout", "%s: want a positive clock duration such as 30s or 2m", s.Timeout)
	}
}
