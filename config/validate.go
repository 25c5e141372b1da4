package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/encoding/htmlindex"

	"github.com/returnsd/returnsd/money"
)

// FieldError is one problem with one field, named by its YAML path.
type FieldError struct {
	Field   string // e.g. brands[0].trackers[1].payout_percent
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

var (
	brandIDPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	sourceNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	currencyPattern   = regexp.MustCompile(`^[A-Z]{3}$`)
	percentPattern    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// Validate checks c, normally after WithDefaults, and returns every problem
// found, joined with errors.Join; each is a *FieldError. It also loads each
// brand's timezone for Brand.Location. It does not touch files (password_file,
// known_hosts, ca_file are read when a source connects) nor the network.
func (c *Config) Validate() error {
	v := &validator{}
	brands := map[string]bool{}
	for i := range c.Brands {
		b := &c.Brands[i]
		v.brand(b, fmt.Sprintf("brands[%d]", i), brands)
	}
	names := map[string]bool{}
	for i := range c.Sources {
		s, p := &c.Sources[i], fmt.Sprintf("sources[%d]", i)
		v.source(s, p, brands, names)
		v.schedule(p+".schedule", s.Schedule, c.sourceZone(s))
	}
	v.limits(c)
	v.smtp(c)
	v.report(c)
	v.daemon(c)
	if c.SpoolDir == "" {
		v.add("spool_dir", "is required")
	}
	if c.Log.Level != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
			v.addf("log.level", "%q is not debug, info, warn or error", c.Log.Level)
		}
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		v.addf("log.format", "%q is not text or json", c.Log.Format)
	}
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) add(field, msg string) {
	v.errs = append(v.errs, &FieldError{Field: field, Message: msg})
}

func (v *validator) addf(field, format string, args ...any) {
	v.add(field, fmt.Sprintf(format, args...))
}

func (v *validator) brand(b *Brand, p string, seen map[string]bool) {
	switch {
	case b.ID == "":
		v.add(p+".id", "is required")
	case !brandIDPattern.MatchString(b.ID):
		v.addf(p+".id", "%q is not a slug (lower-case letters, digits, - and _, starting with a letter or digit, at most 32)", b.ID)
	case seen[b.ID]:
		v.addf(p+".id", "%q is used by another brand", b.ID)
	}
	seen[b.ID] = true
	if b.Name == "" {
		v.add(p+".name", "is required")
	}
	if !currencyPattern.MatchString(b.Currency) {
		v.addf(p+".currency", "%q is not an ISO 4217 code such as USD (3 upper-case letters)", b.Currency)
	}
	b.location = nil
	if b.Timezone == "" {
		v.add(p+".timezone", "is required (an IANA zone such as America/New_York)")
	} else if loc, err := time.LoadLocation(b.Timezone); err != nil {
		v.addf(p+".timezone", "%q is not a known IANA time zone", b.Timezone)
	} else {
		b.location = loc
	}

	k := b.Contract
	cp := p + ".contract"
	switch {
	case k.LockingDays != nil && k.OpenEnded:
		v.add(cp, "set locking_days or open_ended: true, not both")
	case k.LockingDays == nil && !k.OpenEnded:
		v.add(cp, "set locking_days (days until an action locks) or open_ended: true")
	case k.LockingDays != nil && *k.LockingDays < 0:
		v.addf(cp+".locking_days", "%d is negative", *k.LockingDays)
	}
	if k.PayoutDelayDays < 0 {
		v.addf(cp+".payout_delay_days", "%d is negative", k.PayoutDelayDays)
	}
	w := k.Inquiries.Window
	if w.Max.IsZero() {
		v.add(cp+".inquiries.window.max", "must be more than 0")
	} else if ref := time.Date(2001, 1, 31, 0, 0, 0, 0, time.UTC); w.Min.AddTo(ref, nil).After(w.Max.AddTo(ref, nil)) {
		v.addf(cp+".inquiries.window", "min %s is after max %s", w.Min, w.Max)
	}
	if d := k.Inquiries.ResolutionDeadline; d.IsZero() {
		v.add(cp+".inquiries.resolution_deadline", "must be more than 0")
	}
	if a := k.Inquiries.AutoApprove; a != nil {
		if a.Off {
			v.add(cp+".inquiries.auto_approve.off", "only applies to a partner's rule (contract.partners[].inquiries.auto_approve); leave out auto_approve instead")
		}
		v.autoApprove(a, cp+".inquiries.auto_approve")
	}

	ids := map[int64]bool{}
	for j, t := range b.Trackers {
		tp := fmt.Sprintf("%s.trackers[%d]", p, j)
		if t.ID <= 0 {
			v.addf(tp+".id", "%d is not a positive tracker id", t.ID)
		} else if ids[t.ID] {
			v.addf(tp+".id", "%d is used by another tracker of brand %s", t.ID, b.ID)
		}
		ids[t.ID] = true
		switch t.Kind {
		case TrackerSale:
			if t.PayoutPercent == "" {
				v.add(tp+".payout_percent", "is required for SALE trackers")
			}
			if t.PayoutFixed != "" {
				v.add(tp+".payout_fixed", "is not allowed for SALE trackers (they pay payout_percent)")
			}
		case TrackerLead, TrackerInstall, TrackerCPC:
			if t.PayoutFixed == "" {
				v.addf(tp+".payout_fixed", "is required for %s trackers", t.Kind)
			}
			if t.PayoutPercent != "" {
				v.addf(tp+".payout_percent", "is not allowed for %s trackers (they pay payout_fixed)", t.Kind)
			}
		case "":
			v.add(tp+".kind", "is required (SALE, LEAD, INSTALL or CPC)")
		default:
			v.addf(tp+".kind", "%q is not SALE, LEAD, INSTALL or CPC", t.Kind)
		}
		if t.PayoutPercent != "" {
			if err := checkPercent(t.PayoutPercent); err != nil {
				v.add(tp+".payout_percent", err.Error())
			}
		}
		if t.PayoutFixed != "" {
			if _, err := money.Parse(t.PayoutFixed, false); err != nil {
				v.add(tp+".payout_fixed", moneyMessage(t.PayoutFixed, err))
			}
		}
	}

	v.partners(b, cp+".partners")
	v.format(b, p+".file_format")
}

func (v *validator) partners(b *Brand, p string) {
	kinds := map[int64]TrackerKind{}
	for _, t := range b.Trackers {
		kinds[t.ID] = t.Kind
	}
	seen := map[int64]bool{}
	for i, pc := range b.Contract.Partners {
		pp := fmt.Sprintf("%s[%d]", p, i)
		if pc.Partner <= 0 {
			v.addf(pp+".partner", "%d is not a partner id (a whole number above 0)", pc.Partner)
		} else if seen[pc.Partner] {
			v.addf(pp+".partner", "%d has another entry in this brand's partners", pc.Partner)
		}
		seen[pc.Partner] = true
		if pc.LockingDays != nil && pc.OpenEnded {
			v.add(pp, "set locking_days or open_ended: true, not both")
		}
		if pc.LockingDays != nil && *pc.LockingDays < 0 {
			v.addf(pp+".locking_days", "%d is negative", *pc.LockingDays)
		}
		if pc.PayoutDelayDays != nil && *pc.PayoutDelayDays < 0 {
			v.addf(pp+".payout_delay_days", "%d is negative", *pc.PayoutDelayDays)
		}
		if pc.Contact != "" {
			if a, err := mail.ParseAddress(pc.Contact); err != nil || a.Name != "" {
				v.addf(pp+".contact", "%q is not an e-mail address such as claims@partner.example", pc.Contact)
			}
		}
		if a := pc.Inquiries.AutoApprove; a != nil {
			v.autoApprove(a, pp+".inquiries.auto_approve")
		}
		trackers := map[int64]bool{}
		for j, po := range pc.Payouts {
			op := fmt.Sprintf("%s.payouts[%d]", pp, j)
			kind, ok := kinds[po.Tracker]
			switch {
			case !ok:
				v.addf(op+".tracker", "%d is not a tracker of brand %s", po.Tracker, b.ID)
			case trackers[po.Tracker]:
				v.addf(op+".tracker", "%d has another payout for this partner", po.Tracker)
			case kind == TrackerSale && (po.PayoutPercent == "" || po.PayoutFixed != ""):
				v.add(op, "a SALE tracker's payout is payout_percent (and no payout_fixed)")
			case kind != TrackerSale && (po.PayoutFixed == "" || po.PayoutPercent != ""):
				v.addf(op, "a %s tracker's payout is payout_fixed (and no payout_percent)", kind)
			}
			trackers[po.Tracker] = true
			if po.PayoutPercent != "" {
				if err := checkPercent(po.PayoutPercent); err != nil {
					v.add(op+".payout_percent", err.Error())
				}
			}
			if po.PayoutFixed != "" {
				if _, err := money.Parse(po.PayoutFixed, false); err != nil {
					v.add(op+".payout_fixed", moneyMessage(po.PayoutFixed, err))
				}
			}
		}
	}
}

// autoApprove checks an automatic approval rule, a brand's or a partner's.
func (v *validator) autoApprove(a *AutoApprove, p string) {
	if a.Off {
		if !a.After.IsZero() || len(a.Types) > 0 || a.MaxPayout != "" || a.MonthlyCap != "" {
			v.add(p, "off: true exempts the partner; it takes no other field")
		}
		return
	}
	if a.After.IsZero() {
		v.add(p+".after", "is required: how long after the submission an inquiry is approved, e.g. 30d")
	}
	seen := map[string]bool{}
	for i, t := range a.Types {
		switch {
		case t != "UNTRACKED" && t != "INCORRECT" && t != "DECLINED":
			v.addf(fmt.Sprintf("%s.types[%d]", p, i), "%q is not UNTRACKED, INCORRECT or DECLINED", t)
		case seen[t]:
			v.addf(fmt.Sprintf("%s.types[%d]", p, i), "%q is listed twice", t)
		}
		seen[t] = true
	}
	for _, f := range []struct{ name, value string }{{"max_payout", a.MaxPayout}, {"monthly_cap", a.MonthlyCap}} {
		if f.value == "" {
			continue
		}
		if _, err := money.Parse(f.value, false); err != nil {
			v.add(p+"."+f.name, moneyMessage(f.value, err))
		}
	}
}

// checkPercent accepts "0" to "100" with at most 4 decimal places; trailing
// zeros do not count ("8.50000" is 8.5), as in money.Parse.
func checkPercent(s string) error {
	if !percentPattern.MatchString(s) {
		return fmt.Errorf("%q is not a decimal number such as 8.5", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 4 {
		return fmt.Errorf("%q has more than 4 decimal places", s)
	}
	whole = strings.TrimLeft(whole, "0")
	if n, err := strconv.Atoi(whole); len(whole) > 3 || (whole != "" && err != nil) || n > 100 || (n == 100 && frac != "") {
		return fmt.Errorf("%q is more than 100 percent", s)
	}
	return nil
}

func moneyMessage(s string, err error) string {
	if errors.Is(err, money.ErrPrecision) {
		return fmt.Sprintf("%q has more than 2 decimal places", s)
	}
	return fmt.Sprintf("%q is %v", s, err)
}

func (v *validator) format(b *Brand, p string) {
	f := b.FileFormat
	if f.Encoding != "" {
		if _, err := htmlindex.Get(f.Encoding); err != nil {
			v.addf(p+".encoding", "%q is not a known encoding (e.g. windows-1252, iso-8859-1, utf-16le)", f.Encoding)
		}
	}
	switch f.Delimiter {
	case "", ",", ";", "\t", "|":
	case `\t`, "tab", "TAB":
		v.addf(p+".delimiter", "%q: write a tab as \"\\t\" in double quotes", f.Delimiter)
	default:
		v.addf(p+".delimiter", "%q is not one of , ; \"\\t\" | (or empty to detect it)", f.Delimiter)
	}
	// processors owns the canonical column names; until it exports them, any
	// non-empty target is accepted and an unknown one fails when a file is read.
	for from, to := range f.Aliases {
		if strings.TrimSpace(from) == "" {
			v.add(p+".aliases", "has an empty header name")
		}
		if strings.TrimSpace(to) == "" {
			v.add(p+".aliases."+from, "is empty; want a column name such as Oid")
		}
	}
}

func (v *validator) source(s *Source, p string, brands, seen map[string]bool) {
	switch {
	case s.Name == "":
		v.add(p+".name", "is required")
	case !sourceNamePattern.MatchString(s.Name):
		v.addf(p+".name", "%q is not a slug (lower-case letters, digits, - and _, starting with a letter or digit, at most 64)", s.Name)
	case seen[s.Name]:
		v.addf(p+".name", "%q is used by another source", s.Name)
	}
	seen[s.Name] = true

	switch s.Type {
	case LocalDir, SFTP, FTP, IMAP:
	case "":
		v.add(p+".type", "is required (localdir, sftp, ftp or imap)")
		return
	default:
		v.addf(p+".type", "%q is not localdir, sftp, ftp or imap", s.Type)
		return
	}

	// Fields that only some types use: set on another type they are a mistake
	// (a password on a localdir, a path on a mailbox) rather than harmless.
	for _, f := range []struct {
		name  string
		set   bool
		types []SourceType
	}{
		{"address", s.Address != "", []SourceType{SFTP, FTP, IMAP}},
		{"username", s.Username != "", []SourceType{SFTP, FTP, IMAP}},
		{"password", !s.PasswordEnv.IsZero(), []SourceType{SFTP, FTP, IMAP}},
		{"password_file", s.PasswordFile != "", []SourceType{SFTP, FTP, IMAP}},
		{"private_key_file", s.PrivateKeyFile != "", []SourceType{SFTP}},
		{"known_hosts", s.KnownHosts != "", []SourceType{SFTP}},
		{"tls", s.TLS != "", []SourceType{FTP, IMAP}},
		{"insecure_plaintext", s.InsecurePlaintext, []SourceType{FTP}},
		{"ca_file", s.CAFile != "", []SourceType{FTP, IMAP}},
		{"path", s.Path != "", []SourceType{LocalDir, SFTP, FTP}},
		{"result_path", s.ResultPath != "", []SourceType{LocalDir, SFTP, FTP}},
		{"done_marker", s.DoneMarker != "", []SourceType{LocalDir, SFTP, FTP}},
		{"stable_wait", !s.StableWait.IsZero(), []SourceType{LocalDir, SFTP, FTP}},
		{"mailbox", s.Mailbox != "", []SourceType{IMAP}},
		{"processed_mailbox", s.ProcessedMailbox != "", []SourceType{IMAP}},
		{"quarantine_mailbox", s.QuarantineMailbox != "", []SourceType{IMAP}},
		{"routes", len(s.Routes) > 0, []SourceType{IMAP}},
		{"require_dmarc", s.RequireDMARC, []SourceType{IMAP}},
		{"authserv_id", s.AuthservID != "", []SourceType{IMAP}},
	} {
		if f.set && !hasType(f.types, s.Type) {
			v.addf(p+"."+f.name, "does not apply to %s sources", s.Type)
		}
	}

	if s.Type == IMAP {
		if s.Brand != "" {
			v.add(p+".brand", "is not allowed on an imap source: each route names its brand")
		}
	} else {
		switch {
		case s.Brand == "":
			v.add(p+".brand", "is required")
		case !brands[s.Brand]:
			v.addf(p+".brand", "unknown brand %q", s.Brand)
		}
		if s.Path == "" {
			v.add(p+".path", "is required")
		}
	}

	switch s.Kind {
	case "", "action-updates", "inquiry-resolutions", "actions", "inquiries":
	default:
		v.addf(p+".kind", "%q is not action-updates, inquiry-resolutions, actions or inquiries (or empty to detect it)", s.Kind)
	}

	remote := s.Type != LocalDir
	if remote {
		if s.Address == "" {
			v.add(p+".address", "is required (host:port)")
		}
		if s.Username == "" {
			v.add(p+".username", "is required")
		}
	}
	if !s.PasswordEnv.IsZero() {
		if !s.PasswordEnv.FromEnv() {
			v.add(p+".password", "is written literally in the config; use password: ${VAR} or password_file")
		}
		if s.PasswordFile != "" {
			v.add(p+".password", "set password or password_file, not both")
		}
	}
	hasCredential := !s.PasswordEnv.IsZero() || s.PasswordFile != ""
	switch s.Type {
	case SFTP:
		if s.KnownHosts == "" {
			v.add(p+".known_hosts", "is required for sftp: the server's host key must be pinned")
		}
		if !hasCredential && s.PrivateKeyFile == "" {
			v.add(p+".password", "sftp needs password: ${VAR}, password_file or private_key_file")
		}
	case FTP, IMAP:
		if !hasCredential {
			v.addf(p+".password", "%s needs password: ${VAR} or password_file", s.Type)
		}
	}

	switch s.Type {
	case FTP:
		switch s.TLS {
		case TLSExplicit, TLSImplicit:
			if s.InsecurePlaintext {
				v.addf(p+".insecure_plaintext", "only applies with tls: none, not tls: %s", s.TLS)
			}
		case TLSNone:
			if !s.InsecurePlaintext {
				v.add(p+".tls", "none sends the password in clear text; it also needs insecure_plaintext: true")
			}
			if s.CAFile != "" {
				v.add(p+".ca_file", "does not apply with tls: none")
			}
		case "":
			v.add(p+".tls", "is required (explicit, implicit or none)")
		default:
			v.addf(p+".tls", "%q is not explicit, implicit or none", s.TLS)
		}
	case IMAP:
		switch s.TLS {
		case TLSImplicit, TLSStartTLS:
		case "":
			v.add(p+".tls", "is required (implicit or starttls)")
		default:
			v.addf(p+".tls", "%q is not implicit or starttls (IMAP is only read over TLS)", s.TLS)
		}
		if s.Mailbox == "" {
			v.add(p+".mailbox", "is required")
		}
		if s.After == AfterMove && (s.ProcessedMailbox == "" || s.QuarantineMailbox == "") {
			v.add(p+".after", "move needs processed_mailbox and quarantine_mailbox")
		}
		if s.RequireDMARC && s.AuthservID == "" {
			v.add(p+".authserv_id", "is required with require_dmarc: only the receiving server's own Authentication-Results can be trusted")
		}
		if len(s.Routes) == 0 {
			v.add(p+".routes", "is required: an imap source routes mail by recipient to brands")
		}
		recipients := map[string]bool{}
		for j, r := range s.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", p, j)
			rcpt := strings.ToLower(strings.TrimSpace(r.Recipient))
			switch {
			case rcpt == "":
				v.add(rp+".recipient", "is required")
			case !strings.Contains(rcpt, "@"):
				v.addf(rp+".recipient", "%q is not an email address", r.Recipient)
			case recipients[rcpt]:
				v.addf(rp+".recipient", "%q is routed twice", r.Recipient)
			}
			recipients[rcpt] = true
			switch {
			case r.Brand == "":
				v.add(rp+".brand", "is required")
			case !brands[r.Brand]:
				v.addf(rp+".brand", "unknown brand %q", r.Brand)
			}
			if len(r.Senders) == 0 {
				v.add(rp+".senders", `is required: list the allowed From patterns, e.g. "*@acme.example" ("*" allows anyone)`)
			}
			v.patterns(rp+".senders", r.Senders)
		}
	}

	switch s.After {
	case AfterMove, AfterDelete, AfterLeave:
	case "":
		v.add(p+".after", "is required (move, delete or leave)")
	default:
		v.addf(p+".after", "%q is not move, delete or leave", s.After)
	}
	v.patterns(p+".include", s.Include)
	v.patterns(p+".exclude", s.Exclude)
	v.clockDuration(p+".timeout", s.Timeout, "30s or 2m")
	if s.Type != IMAP {
		v.clockDuration(p+".stable_wait", s.StableWait, "10s")
	}
	if _, ok := s.MinAge.Fixed(); !ok {
		v.addf(p+".min_age", "%s: months are not allowed; use days, hours or minutes", s.MinAge)
	}
	if strings.ContainsAny(s.DoneMarker, `/\`) {
		v.addf(p+".done_marker", "%q must be a file name suffix such as .done, not a path", s.DoneMarker)
	}
}

func hasType(types []SourceType, t SourceType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func (v *validator) patterns(p string, pats []string) {
	for i, pat := range pats {
		if pat == "" {
			v.addf(p, "[%d] is empty", i)
		} else if _, err := path.Match(pat, ""); err != nil {
			v.addf(fmt.Sprintf("%s[%d]", p, i), "%q is not a valid pattern", pat)
		}
	}
}

// daemon checks what only returnsd run uses: its schedules, its listener and
// how long it waits to stop.
func (v *validator) daemon(c *Config) {
	for _, d := range c.Schedules.named() {
		v.schedule("schedules."+d.job, d.spec, c.scheduleZone(d.job))
	}
	v.listen("http.listen", c.HTTP.Listen)
	v.clockDuration("shutdown_timeout", c.ShutdownTimeout, "60s or 2m")
	v.clockDuration("queue.rescue_after", c.Queue.RescueAfter, "10m or 1h")
	if c.Queue.PollWorkers < 0 {
		v.addf("queue.poll_workers", "%d is negative", c.Queue.PollWorkers)
	}
	if c.Queue.FileWorkers < 0 {
		v.addf("queue.file_workers", "%d is negative", c.Queue.FileWorkers)
	}
	v.clockDuration("web.session_lifetime", c.Web.SessionLifetime, "12h or 30m")
}

// listen checks a host:port to listen on; the host may be empty (every
// interface) and the port 0 (any free port).
func (v *validator) listen(field, addr string) {
	if addr == "" {
		v.add(field, "is required (host:port, e.g. 127.0.0.1:8080 or :8080)")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.addf(field, "%q is not host:port, e.g. 127.0.0.1:8080 or :8080", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.addf(field, "port %q is not a number from 0 to 65535", port)
	}
}

// clockDuration checks a duration that is elapsed time: more than zero and
// in clock units, since a day or month of waiting is always a mistake here.
func (v *validator) clockDuration(field string, d Duration, example string) {
	if fixed, ok := d.Fixed(); !ok || d.Days != 0 || fixed <= 0 {
		v.addf(field, "%s: want a positive clock duration such as %s", d, example)
	}
}

func (v *validator) limits(c *Config) {
	l := c.Limits
	for _, f := range []struct {
		name string
		n    int64
	}{
		{"max_file_bytes", l.MaxFileBytes},
		{"max_uncompressed_bytes", l.MaxUncompressedBytes},
		{"max_rows", int64(l.MaxRows)},
		{"max_field_bytes", int64(l.MaxFieldBytes)},
		{"max_archive_entries", int64(l.MaxArchiveEntries)},
		{"max_expansion_ratio", int64(l.MaxExpansionRatio)},
	} {
		if f.n < 0 {
			v.addf("limits."+f.name, "%d is negative", f.n)
		}
	}
}
