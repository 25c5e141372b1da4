// Package config reads returnsd's YAML configuration: the database, the brands
// with their contracts and trackers, the sources their files come from, the
// file limits, logging and the daemon's schedules and listener.
//
// Load expands ${VAR} references from the environment inside scalar values,
// rejects unknown fields, applies WithDefaults and runs Validate, whose error
// names every bad field by its YAML path (brands[0].trackers[1].payout_percent).
// Nothing here is global: callers pass the Config where it is needed.
package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is the whole configuration file (SPEC §8).
type Config struct {
	// Database is the PostgreSQL the ledger lives in. No default; write the URL
	// as ${DATABASE_URL} so its password stays out of the file.
	Database Database `yaml:"database"`
	// Brands are the advertisers whose files returnsd applies. No default.
	Brands []Brand `yaml:"brands"`
	// Sources are where the brands' files come from. No default.
	Sources []Source `yaml:"sources"`
	// Limits bound what one file may cost; each zero field takes its default
	// (processors.Limits.WithDefaults: 256 MiB per file, 1 GiB uncompressed,
	// 2,000,000 rows, 64 KiB per cell, 16 zip entries, expansion ratio 200).
	Limits Limits `yaml:"limits"`
	// SpoolDir is where downloaded files are staged before they are applied.
	// Default: filepath.Join(os.TempDir(), "returnsd-spool").
	SpoolDir string `yaml:"spool_dir"`
	// Log configures the daemon's logger. Default: level info, format text.
	Log Log `yaml:"log"`
	// SMTP is the mail server results of imap sources are mailed back
	// through. Default: none; required when any source is imap.
	SMTP SMTP `yaml:"smtp"`
	// Schedules are when the daemon (returnsd run) runs its own jobs; each
	// source has its own schedule.
	Schedules Schedules `yaml:"schedules"`
	// HTTP is the daemon's operations listener (/healthz, /readyz, /metrics).
	HTTP HTTP `yaml:"http"`
	// ShutdownTimeout is how long the daemon, once told to stop, lets a
	// running apply finish before rolling it back. Clock units only.
	// Default: 1m.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Queue tunes the daemon's job queue.
	Queue Queue `yaml:"queue"`
	// Report says whom the daemon mails the daily report to, and in which
	// zone its days are. Default: no recipients, days in UTC.
	Report Report `yaml:"report"`
	// Web configures the ops pages, served on the operations listener.
	Web Web `yaml:"web"`
}

// Web configures the ops pages (web/), which the daemon serves on http.listen
// beside /metrics. Who may sign in is in the database (returnsd users). Its
// days are the report's (report.timezone).
type Web struct {
	// InsecureCookie drops the Secure flag from the session cookie, so a
	// browser keeps it over plain HTTP from another host than loopback
	// (Chromium and Firefox keep it from http://127.0.0.1 as it is). Only
	// where nobody else can listen on the network; anywhere else serve the
	// pages through HTTPS (a reverse proxy) and leave this false. Default: false.
	InsecureCookie bool `yaml:"insecure_cookie"`
	// SessionLifetime is how long a sign-in lasts; then the user signs in
	// again. Clock units. Default: 12h.
	SessionLifetime Duration `yaml:"session_lifetime"`
}

// Queue tunes the daemon's job queue (River, in the ledger's database). Every
// replica works every queue; the numbers of workers are per replica.
type Queue struct {
	// PollWorkers is how many sources one replica polls at once. Default: 4.
	PollWorkers int `yaml:"poll_workers"`
	// FileWorkers is how many files one replica applies at once (files of
	// one brand are applied one after another whatever this says). Default: 2.
	FileWorkers int `yaml:"file_workers"`
	// RescueAfter is how long a job may run: one running longer is cancelled
	// (an apply rolls back whole) and retried, and the job of a replica that
	// died is taken for such a job and run again elsewhere after this long
	// (give or take the queue's 30 s rescue interval). It must exceed the
	// longest apply, poll and lifecycle run. Running a job twice is harmless
	// (a file is applied once, under its brand's lock), only wasted work.
	// Clock units. Default: 10m.
	RescueAfter Duration `yaml:"rescue_after"`
}

// Schedules are the daemon's own schedules, each a cron expression in the
// syntax of a source's schedule. Without CRON_TZ they run in UTC: the
// daemon's replicas may sit in machines of different zones, and the leader
// that enqueues a run must not move it.
type Schedules struct {
	// Lifecycle locks and pays due actions, as returnsd lifecycle does.
	// Hourly is enough: a lock date passes at midnight in the brand's zone,
	// which is a different hour of UTC for each brand. Default: "5 * * * *".
	Lifecycle string `yaml:"lifecycle"`
	// AutoResolve declines open inquiries whose order is already tracked,
	// for the brands with contract.inquiries.auto_resolve, as returnsd
	// inquiries auto-resolve does. Default: "35 * * * *", half an hour from
	// the lifecycle so the two do not queue for the same brands' locks.
	AutoResolve string `yaml:"auto_resolve"`
	// Report builds and mails the daily processing report (SPEC §7) of the
	// day before, to report.recipients. Unlike the other schedules it runs
	// on the wall clock of report.timezone unless it names a CRON_TZ, so
	// "0 7 * * *" is 07:00 where the report's days are. Default: "0 7 * * *".
	Report string `yaml:"report"`
	// AutoApprove approves the inquiries due under the brands' automatic
	// approval rules, as returnsd inquiries auto-approve does. Hourly is
	// enough: a rule counts days. Default: "20 * * * *", between the
	// lifecycle and auto-resolution.
	AutoApprove string `yaml:"auto_approve"`
	// Notify mails partners the changes of their inquiries not yet told, as
	// returnsd inquiries notify does; a mail that fails is tried again on a
	// later run, up to an hour apart. Default: "* * * * *", every minute.
	Notify string `yaml:"notify"`
}

// HTTP configures the daemon's operations listener.
type HTTP struct {
	// Listen is the host:port it serves on; port 0 takes any free port.
	// Default: 127.0.0.1:8080, this machine only, since /metrics and /readyz
	// name brands and sources. Write :8080 to serve on every interface (in a
	// container, say).
	Listen string `yaml:"listen"`
}

// Database says how to reach PostgreSQL.
type Database struct {
	// URL is a libpq/pgx connection string. No default; Validate does not
	// require it because some commands (checking a file, the config itself)
	// need no database — commands that do must check it is set.
	URL string `yaml:"url"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error (slog syntax, so "debug-4" works
	// too). Default: info.
	Level string `yaml:"level"`
	// Format is text or json. Default: text.
	Format string `yaml:"format"`
}

// Brand is an advertiser (SPEC §1, §8).
type Brand struct {
	// ID is the brand's slug, used on the command line (--brand acme):
	// lower-case letters, digits, '-' and '_', at most 32. Required.
	ID string `yaml:"id"`
	// Name is shown in reports and the ops pages. Required.
	Name string `yaml:"name"`
	// Currency is the ISO 4217 code of the brand's actions, e.g. USD. Required.
	Currency string `yaml:"currency"`
	// Timezone is an IANA zone such as America/New_York; lock and payout
	// dates, dates without an offset in files, and source schedules without
	// CRON_TZ are read in it. Required: a wrong default would shift money dates.
	Timezone string `yaml:"timezone"`
	// Contract holds the payout and lifecycle terms.
	Contract Contract `yaml:"contract"`
	// Trackers are the brand's action trackers. No default.
	Trackers []Tracker `yaml:"trackers"`
	// FileFormat is how the brand writes its files. Default: all zero, which
	// means UTF-8 or UTF-16 with a BOM, a detected delimiter, a decimal point
	// and only the built-in header aliases.
	FileFormat FileFormat `yaml:"file_format"`

	location *time.Location // loaded by Validate
}

// FileFormat is how a brand writes its files (SPEC §3, §8), and so how its
// result files are written.
type FileFormat struct {
	// Encoding is "" for UTF-8 (a BOM is dropped) or UTF-16 with a BOM; otherwise
	// an encoding name such as "windows-1252" or "iso-8859-1".
	Encoding string `yaml:"encoding"`
	// Delimiter is one of , ; \t | ; empty means detect it from the header line.
	Delimiter string `yaml:"delimiter"`
	// DecimalComma reads "12,50" as twelve and a half.
	DecimalComma bool `yaml:"decimal_comma"`
	// Aliases maps a header as the brand writes it to a canonical column name,
	// on top of the built-in alias table.
	Aliases map[string]string `yaml:"aliases"`
}

// Limits bound what one file may cost; a file over a limit is quarantined.
// A zero field takes its default: 256 MiB as received, 1 GiB after
// gunzip/unzip, 2,000,000 data rows, 64 KiB for one cell, 16 entries in a
// zip, an expansion ratio of 200 (processors.Limits.WithDefaults).
type Limits struct {
	MaxFileBytes         int64 `yaml:"max_file_bytes"`
	MaxUncompressedBytes int64 `yaml:"max_uncompressed_bytes"`
	MaxRows              int   `yaml:"max_rows"`
	MaxFieldBytes        int   `yaml:"max_field_bytes"`
	MaxArchiveEntries    int   `yaml:"max_archive_entries"`
	MaxExpansionRatio    int   `yaml:"max_expansion_ratio"`
}

// Contract is the payout and lifecycle terms of a brand's program (SPEC §2).
type Contract struct {
	// LockingDays is how long a PENDING action waits before it locks, in
	// calendar days in the brand's timezone. Exactly one of LockingDays and
	// OpenEnded must be set; 0 is a valid value (lock at once).
	LockingDays *int `yaml:"locking_days"`
	// OpenEnded means PENDING actions lock only once approved (a safety net
	// locks them after 730 days). Default: false.
	OpenEnded bool `yaml:"open_ended"`
	// PayoutDelayDays is the time from lock date to payout date, in days.
	// Default: 0 (paid on the lock date).
	PayoutDelayDays int `yaml:"payout_delay_days"`
	// Inquiries are the terms for partners' action inquiries.
	Inquiries Inquiries `yaml:"inquiries"`
	// Partners are partners' own terms, each overriding the brand's for that
	// partner's actions. Default: none, every partner has the brand's terms.
	Partners []PartnerContract `yaml:"partners"`
}

// PartnerContract is one partner's own terms with a brand: what it sets replaces
// the brand's contract for that partner's actions, what it leaves unset is the
// brand's.
type PartnerContract struct {
	// Partner is the partner's id as in files (PartnerId). Required, > 0,
	// unique within the brand.
	Partner int64 `yaml:"partner"`
	// LockingDays, or OpenEnded, replaces the brand's locking period; set at
	// most one. Default: the brand's.
	LockingDays *int `yaml:"locking_days"`
	OpenEnded   bool `yaml:"open_ended"`
	// PayoutDelayDays replaces the brand's payout delay. Default: the brand's.
	PayoutDelayDays *int `yaml:"payout_delay_days"`
	// Payouts replace trackers' payout rules for this partner. Default: none.
	Payouts []PartnerPayout `yaml:"payouts"`
	// Contact is the e-mail address the partner is told at about each change
	// of its inquiries with this brand (mailed through the smtp section).
	// Default: none, the partner is not mailed (its status file is
	// returnsd export inquiries --partner).
	Contact string `yaml:"contact"`
	// Inquiries are the partner's own inquiry terms.
	Inquiries PartnerInquiries `yaml:"inquiries"`
}

// PartnerInquiries are a partner's own terms for its action inquiries.
type PartnerInquiries struct {
	// AutoApprove replaces the brand's automatic approval rule for this
	// partner's inquiries (off: true exempts the partner from the brand's).
	// Default: the brand's rule.
	AutoApprove *AutoApprove `yaml:"auto_approve"`
}

// PartnerPayout is a partner's own payout rule for one of the brand's trackers.
type PartnerPayout struct {
	// Tracker is the tracker's id. Required; a tracker of the brand.
	Tracker int64 `yaml:"tracker"`
	// PayoutPercent or PayoutFixed, exactly one, with the rules of Tracker's
	// fields of the same names (a percent for SALE trackers, fixed otherwise).
	PayoutPercent string `yaml:"payout_percent"`
	PayoutFixed   string `yaml:"payout_fixed"`
}

// Inquiries are a brand's terms for action inquiries (SPEC §3.2).
type Inquiries struct {
	// Accept lets partners file inquiries. Default: false (every inquiry is refused).
	Accept bool `yaml:"accept"`
	// Window is how long after the order date an inquiry may come.
	Window Window `yaml:"window"`
	// AutoResolve declines open inquiries whose order is already tracked.
	// Default: false.
	AutoResolve bool `yaml:"auto_resolve"`
	// AutoApprove approves NEW inquiries the brand has not resolved in time.
	// Default: none, every inquiry waits for the brand.
	AutoApprove *AutoApprove `yaml:"auto_approve"`
	// ResolutionDeadline is how long after its submission an inquiry may stay
	// open before the exports flag it (on the brand's wall clock, like the
	// window). Default: 12w.
	ResolutionDeadline Duration `yaml:"resolution_deadline"`
}

// AutoApprove is an automatic approval rule: a NEW inquiry of one of Types that
// the brand has not resolved After its submission is approved as VALID, with
// its Expected Payout (else the contract's payout), exactly as a VALID row of a
// resolution file would approve it.
type AutoApprove struct {
	// After is how long after the submission (or the partner's completion of
	// an INCOMPLETE inquiry) the inquiry is approved, on the brand's wall
	// clock: "30d" is 30 calendar days. Required (unless Off).
	After Duration `yaml:"after"`
	// Types are the inquiry types approved: UNTRACKED, INCORRECT, DECLINED.
	// Default: [UNTRACKED].
	Types []string `yaml:"types"`
	// MaxPayout: an inquiry whose payout is more waits for the brand.
	// Default: none.
	MaxPayout string `yaml:"max_payout"`
	// MonthlyCap bounds what the rule approves for one partner in a calendar
	// month of the brand's timezone, taken in order of submission; what does
	// not fit waits for a later month's room, or the brand. Default: none.
	MonthlyCap string `yaml:"monthly_cap"`
	// Off, in a partner's terms only, exempts the partner from the brand's
	// rule: its inquiries wait for the brand. Default: false.
	Off bool `yaml:"off"`
}

// Window is a span after an order date.
type Window struct {
	// Min is the earliest an inquiry may come after the order date. Default: 24h.
	Min Duration `yaml:"min"`
	// Max is the latest an inquiry may come after the order date. Default: 3mo.
	Max Duration `yaml:"max"`
}

// TrackerKind is the event type of an action tracker.
type TrackerKind string

const (
	TrackerSale    TrackerKind = "SALE"    // pays PayoutPercent of the sale amount
	TrackerLead    TrackerKind = "LEAD"    // pays PayoutFixed
	TrackerInstall TrackerKind = "INSTALL" // pays PayoutFixed
	TrackerCPC     TrackerKind = "CPC"     // pays PayoutFixed per click; never reversed or modified by a file
)

// Tracker is an action tracker: an event type with its payout rule. Money is
// kept as the decimal string the brand wrote, never a float; Validate checks it.
type Tracker struct {
	// ID is the tracker's integer id as it appears in files. Required, > 0,
	// unique within the brand.
	ID int64 `yaml:"id"`
	// Name is shown in reports. Optional.
	Name string `yaml:"name"`
	// Kind is SALE, LEAD, INSTALL or CPC. Required.
	Kind TrackerKind `yaml:"kind"`
	// PayoutPercent is the percent of the sale amount paid, "0" to "100" with
	// at most 4 decimal places. Required for SALE, not allowed otherwise.
	PayoutPercent string `yaml:"payout_percent"`
	// PayoutFixed is the amount paid per action in the brand's currency, at
	// most 2 decimal places (money.Parse). Required for LEAD, INSTALL and
	// CPC, not allowed for SALE.
	PayoutFixed string `yaml:"payout_fixed"`
}

// SourceType is the kind of place files come from.
type SourceType string

const (
	LocalDir SourceType = "localdir"
	SFTP     SourceType = "sftp"
	FTP      SourceType = "ftp"
	IMAP     SourceType = "imap"
)

// TLSMode is how an FTP or IMAP connection is secured.
type TLSMode string

const (
	TLSExplicit TLSMode = "explicit" // FTP: AUTH TLS on the plain port
	TLSImplicit TLSMode = "implicit" // FTP or IMAP: TLS from the first byte
	TLSStartTLS TLSMode = "starttls" // IMAP: STARTTLS on the plain port
	TLSNone     TLSMode = "none"     // FTP only, and only with insecure_plaintext: true
)

// After is what happens to a source's copy of a file once its outcome is committed.
type After string

const (
	// AfterMove moves it to processed/ (or failed/ when quarantined) under the
	// source's path; for IMAP, to ProcessedMailbox or QuarantineMailbox.
	AfterMove   After = "move"
	AfterDelete After = "delete"
	AfterLeave  After = "leave" // never taken twice: the spool remembers it
)

// Source is where a brand's files come from (SPEC §5, §8). Which fields apply
// depends on Type; Validate rejects a field set on a type it does not apply to.
type Source struct {
	// Name identifies the source on the command line (returnsd poll acme-sftp):
	// lower-case letters, digits, '-' and '_', at most 64. Required, unique.
	Name string `yaml:"name"`
	// Brand is the id of the brand the files belong to. Required, except for
	// imap, which routes each message by recipient (Routes) and must not set it.
	Brand string `yaml:"brand"`
	// Type is localdir, sftp, ftp or imap. Required.
	Type SourceType `yaml:"type"`
	// Kind forces the file kind (action-updates, inquiry-resolutions, actions,
	// inquiries). Default: empty, the kind is decided by the header set.
	Kind string `yaml:"kind"`

	// Address is host:port of the server. Required for sftp, ftp and imap.
	Address string `yaml:"address"`
	// Username logs in. Required for sftp, ftp and imap.
	Username string `yaml:"username"`
	// PasswordEnv is the login password (YAML field "password"). It must be a
	// ${VAR} reference, never literal; or use PasswordFile. Read it through
	// Password(), which also reads PasswordFile. No default.
	PasswordEnv Secret `yaml:"password"`
	// PasswordFile holds the password (one trailing newline is trimmed), e.g.
	// a mounted secret. Not checked for existence until Password() is called.
	PasswordFile string `yaml:"password_file"`
	// PrivateKeyFile is an SSH private key (sftp only), instead of or with a password.
	PrivateKeyFile string `yaml:"private_key_file"`
	// KnownHosts pins the SFTP server's host key (OpenSSH known_hosts format).
	// Required for sftp: an unknown or changed key refuses the connection.
	KnownHosts string `yaml:"known_hosts"`
	// TLS is explicit, implicit or none for ftp (default explicit) and
	// implicit or starttls for imap (default implicit). Not allowed for
	// sftp and localdir.
	TLS TLSMode `yaml:"tls"`
	// InsecurePlaintext must be true for tls: none, so plain FTP is never an
	// accident. Not allowed with any other TLS mode. Default: false.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
	// CAFile is a PEM bundle to verify the server's certificate (ftp, imap).
	// Default: empty, the system roots.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds every network operation (dial, login, list, each read
	// and write). Clock units only (no d, w, mo, y). Default: 1m.
	Timeout Duration `yaml:"timeout"`

	// Path is the folder files are taken from (remote for sftp/ftp, local for
	// localdir). Required for localdir, sftp and ftp; not allowed for imap.
	Path string `yaml:"path"`
	// Include are path.Match patterns on the file name; a file is taken if it
	// matches one. Default: empty, every file. Files named result_* or
	// receipt_* are never taken whatever the patterns say.
	Include []string `yaml:"include"`
	// Exclude are path.Match patterns on the file name that win over Include.
	// Default: empty.
	Exclude []string `yaml:"exclude"`
	// Schedule is when the source is polled: a robfig/cron expression, 5
	// fields or a descriptor (@hourly, @every 10m), optionally prefixed with
	// CRON_TZ=Zone; see schedules.Parse, and the schedules package for what
	// happens when the clocks change. Without a zone it runs in the brand's
	// timezone (imap sources: UTC). Default: "*/5 * * * *".
	Schedule string `yaml:"schedule"`
	// After is move, delete or leave. Default: move.
	After After `yaml:"after"`
	// ResultPath is the folder result files are written to (localdir, sftp,
	// ftp; imap mails results back). Default: Path (result_* files are
	// never taken as input).
	ResultPath string `yaml:"result_path"`
	// MinAge is how old (by modification time) a file must be before it is
	// taken; it must also be unchanged in size and time between two listings.
	// Clock units and days only. Default: 1m. Ignored when DoneMarker is set.
	MinAge Duration `yaml:"min_age"`
	// DoneMarker is a suffix: file X is taken once X+DoneMarker exists (e.g.
	// ".done" or ".ok"), and the marker is handled with it per After.
	// Default: empty, stability by MinAge.
	DoneMarker string `yaml:"done_marker"`
	// StableWait is how long a poll waits before listing the folder again,
	// so a new file unchanged in size and time between the two listings is
	// taken in the poll that found it, not one schedule later. Clock units
	// only; localdir, sftp and ftp. Default: 10s. Ignored when DoneMarker is set.
	StableWait Duration `yaml:"stable_wait"`

	// Mailbox is the IMAP folder read. Default: INBOX.
	Mailbox string `yaml:"mailbox"`
	// ProcessedMailbox receives messages whose files were applied, with after:
	// move. Default: Processed.
	ProcessedMailbox string `yaml:"processed_mailbox"`
	// QuarantineMailbox receives messages that were refused or quarantined,
	// with after: move. Default: Quarantine.
	QuarantineMailbox string `yaml:"quarantine_mailbox"`
	// Routes map recipient addresses to brands (imap only; at least one).
	Routes []Route `yaml:"routes"`
	// RequireDMARC takes a message only if the receiving server's
	// Authentication-Results header (from AuthservID) says dmarc=pass.
	// Default: false.
	RequireDMARC bool `yaml:"require_dmarc"`
	// AuthservID is the authserv-id of the receiving server whose
	// Authentication-Results header is trusted; headers from anyone else are
	// ignored. Required with RequireDMARC.
	AuthservID string `yaml:"authserv_id"`
}

// Route sends mail for one recipient address to one brand (imap sources).
type Route struct {
	// Recipient is the address the brand mails to, e.g.
	// returns+acme@platform.example, matched case-insensitively. Required, unique
	// within the source.
	Recipient string `yaml:"recipient"`
	// Brand is the id of the brand. Required; must exist.
	Brand string `yaml:"brand"`
	// Senders are path.Match patterns on the From address, e.g. "*@acme.example";
	// a message from anyone else is refused. At least one; "*" allows everyone
	// and must be written out.
	Senders []string `yaml:"senders"`
}

// Defaults that WithDefaults applies. The field comments state them too.
const (
	DefaultLogLevel            = "info"
	DefaultLogFormat           = "text"
	DefaultSchedule            = "*/5 * * * *"
	DefaultLifecycleSchedule   = "5 * * * *"
	DefaultAutoResolveSchedule = "35 * * * *"
	DefaultReportSchedule      = "0 7 * * *"
	DefaultAutoApproveSchedule = "20 * * * *"
	DefaultNotifySchedule      = "* * * * *"
	DefaultListen              = "127.0.0.1:8080"
	DefaultMailbox             = "INBOX"
	DefaultProcessedMailbox    = "Processed"
	DefaultQuarantineMailbox   = "Quarantine"
)

var (
	defaultInquiryMin  = Duration{Time: 24 * time.Hour}
	defaultInquiryMax  = Duration{Months: 3}
	defaultDeadline    = Duration{Days: 7 * 12}
	defaultTimeout     = Duration{Time: time.Minute}
	defaultMinAge      = Duration{Time: time.Minute}
	defaultStableWait  = Duration{Time: 10 * time.Second}
	defaultPollWorkers = 4
	defaultFileWorkers = 2
	defaultRescueAfter = Duration{Time: 10 * time.Minute}
	defaultShutdown    = Duration{Time: time.Minute}
	// A working day, so ops sign in once a morning.
	defaultSessionLifetime = Duration{Time: 12 * time.Hour}
)

// DefaultSpoolDir is the SpoolDir used when none is configured.
func DefaultSpoolDir() string { return filepath.Join(os.TempDir(), "returnsd-spool") }

// WithDefaults returns a copy of c with every unset field that has a default
// set to it (see each field's comment). c is not modified. Slices of brands
// and sources are copied; what they point to (trackers, patterns, aliases) is
// shared, since defaults never change it.
func (c *Config) WithDefaults() *Config {
	out := *c
	out.SpoolDir = cmp.Or(c.SpoolDir, DefaultSpoolDir())
	out.Log.Level = cmp.Or(c.Log.Level, DefaultLogLevel)
	out.Log.Format = cmp.Or(c.Log.Format, DefaultLogFormat)
	out.SMTP = c.SMTP.withDefaults()
	out.Schedules.Lifecycle = cmp.Or(c.Schedules.Lifecycle, DefaultLifecycleSchedule)
	out.Schedules.AutoResolve = cmp.Or(c.Schedules.AutoResolve, DefaultAutoResolveSchedule)
	out.Schedules.Report = cmp.Or(c.Schedules.Report, DefaultReportSchedule)
	out.Schedules.AutoApprove = cmp.Or(c.Schedules.AutoApprove, DefaultAutoApproveSchedule)
	out.Schedules.Notify = cmp.Or(c.Schedules.Notify, DefaultNotifySchedule)
	out.Report.Timezone = cmp.Or(c.Report.Timezone, DefaultReportTimezone)
	out.HTTP.Listen = cmp.Or(c.HTTP.Listen, DefaultListen)
	if out.ShutdownTimeout.IsZero() {
		out.ShutdownTimeout = defaultShutdown
	}
	if out.Web.SessionLifetime.IsZero() {
		out.Web.SessionLifetime = defaultSessionLifetime
	}
	out.Queue.PollWorkers = cmp.Or(c.Queue.PollWorkers, defaultPollWorkers)
	out.Queue.FileWorkers = cmp.Or(c.Queue.FileWorkers, defaultFileWorkers)
	if out.Queue.RescueAfter.IsZero() {
		out.Queue.RescueAfter = defaultRescueAfter
	}

	out.Brands = slices.Clone(c.Brands)
	for i := range out.Brands {
		w := &out.Brands[i].Contract.Inquiries.Window
		if w.Min.IsZero() {
			w.Min = defaultInquiryMin
		}
		if w.Max.IsZero() {
			w.Max = defaultInquiryMax
		}
		k := &out.Brands[i].Contract
		if k.Inquiries.ResolutionDeadline.IsZero() {
			k.Inquiries.ResolutionDeadline = defaultDeadline
		}
		k.Inquiries.AutoApprove = k.Inquiries.AutoApprove.withDefaults()
		if len(k.Partners) > 0 {
			k.Partners = slices.Clone(k.Partners)
			for j := range k.Partners {
				pi := &k.Partners[j].Inquiries
				pi.AutoApprove = pi.AutoApprove.withDefaults()
			}
		}
	}

	out.Sources = slices.Clone(c.Sources)
	for i := range out.Sources {
		s := &out.Sources[i]
		s.Schedule = cmp.Or(s.Schedule, DefaultSchedule)
		s.After = cmp.Or(s.After, AfterMove)
		if s.Timeout.IsZero() {
			s.Timeout = defaultTimeout
		}
		if s.MinAge.IsZero() {
			s.MinAge = defaultMinAge
		}
		switch s.Type {
		case FTP:
			s.TLS = cmp.Or(s.TLS, TLSExplicit)
		case IMAP:
			s.TLS = cmp.Or(s.TLS, TLSImplicit)
			s.Mailbox = cmp.Or(s.Mailbox, DefaultMailbox)
			s.ProcessedMailbox = cmp.Or(s.ProcessedMailbox, DefaultProcessedMailbox)
			s.QuarantineMailbox = cmp.Or(s.QuarantineMailbox, DefaultQuarantineMailbox)
		}
		if s.Type != IMAP {
			s.ResultPath = cmp.Or(s.ResultPath, s.Path)
			if s.StableWait.IsZero() {
				s.StableWait = defaultStableWait
			}
		}
	}
	return &out
}

// Brand returns the brand with the given id.
func (c *Config) Brand(id string) (*Brand, error) {
	for i := range c.Brands {
		if c.Brands[i].ID == id {
			return &c.Brands[i], nil
		}
	}
	ids := make([]string, len(c.Brands))
	for i, b := range c.Brands {
		ids[i] = b.ID
	}
	return nil, fmt.Errorf("unknown brand %q (known: %s)", id, knownList(ids))
}

// Source returns the source with the given name.
func (c *Config) Source(name string) (*Source, error) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i], nil
		}
	}
	names := make([]string, len(c.Sources))
	for i, s := range c.Sources {
		names[i] = s.Name
	}
	return nil, fmt.Errorf("unknown source %q (known: %s)", name, knownList(names))
}

func knownList(names []string) string {
	if len(names) == 0 {
		return "none configured"
	}
	return strings.Join(names, ", ")
}

// Location is the brand's timezone. Validate loads it once; on a Brand that
// was never validated it is loaded on each call, and UTC is returned if the
// zone cannot be loaded.
func (b *Brand) Location() *time.Location {
	if b.location != nil {
		return b.location
	}
	if loc, err := time.LoadLocation(b.Timezone); err == nil && b.Timezone != "" {
		return loc
	}
	return time.UTC
}

// withDefaults is a copy of the rule with its default types; nil stays nil.
func (a *AutoApprove) withDefaults() *AutoApprove {
	if a == nil {
		return nil
	}
	out := *a
	if len(out.Types) == 0 && !out.Off {
		out.Types = []string{"UNTRACKED"}
	}
	return &out
}

// AutoApproveBrands are the brands with an automatic approval rule, their own
// or a partner's: those the auto-approval job runs for.
func (c *Config) AutoApproveBrands() []string {
	var brands []string
	for _, b := range c.Brands {
		if b.HasAutoApproval() {
			brands = append(brands, b.ID)
		}
	}
	return brands
}

// HasAutoApproval reports whether some inquiry of the brand can be approved
// automatically: the brand or one of its partners has a rule that is not off.
func (b *Brand) HasAutoApproval() bool {
	if a := b.Contract.Inquiries.AutoApprove; a != nil && !a.Off {
		return true
	}
	for _, p := range b.Contract.Partners {
		if a := p.Inquiries.AutoApprove; a != nil && !a.Off {
			return true
		}
	}
	return false
}

// AutoResolveBrands are the brands whose inquiries are auto-resolved: those
// whose contract says so. The config decides: a brand dropped from it keeps its
// ledger rows but is no longer anyone's to resolve for.
func (c *Config) AutoResolveBrands() []string {
	var brands []string
	for _, b := range c.Brands {
		if b.Contract.Inquiries.AutoResolve {
			brands = append(brands, b.ID)
		}
	}
	return brands
}

// SourceUnusable says why s cannot be used on this machine, or nil: a secret
// it needs is written as ${VAR} and the variable is unset (its own password,
// or for imap the smtp password its results are mailed with). The daemon
// skips and reports such a source; commands that do not use it work.
func (c *Config) SourceUnusable(s *Source) error {
	if why := s.PasswordEnv.Missing(); why != "" {
		return fmt.Errorf("source %s: password: %s", s.Name, why)
	}
	if why := c.SMTP.PasswordEnv.Missing(); s.Type == IMAP && why != "" {
		return fmt.Errorf("source %s: its results are mailed through smtp, whose password: %s", s.Name, why)
	}
	return nil
}

// Password returns the source's password: the contents of PasswordFile (one
// trailing newline trimmed) when set, else PasswordEnv. It is "" when neither
// is set (e.g. key-only SFTP).
func (s *Source) Password() (string, error) {
	return readPassword("source "+s.Name, s.PasswordEnv, s.PasswordFile)
}

// SlogLevel is Level as a slog.Level; info when Level is empty or invalid
// (Validate reports an invalid one).
func (l Log) SlogLevel() slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lv
}
