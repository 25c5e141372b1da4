package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validConfig is a config with one brand of each contract style and one
// source of each type, defaults applied. Tests break one thing in it.
func validConfig(t *testing.T) *Config {
	t.Helper()
	lock := 30
	c := &Config{
		Database: Database{URL: "postgres://localhost/returnsd"},
		Brands: []Brand{
			{
				ID: "acme", Name: "ACME", Currency: "USD", Timezone: "America/New_York",
				Contract: Contract{LockingDays: &lock, PayoutDelayDays: 15},
				Trackers: []Tracker{
					{ID: 1001, Kind: TrackerSale, PayoutPercent: "8.5"},
					{ID: 1002, Kind: TrackerLead, PayoutFixed: "4.00"},
					{ID: 1003, Kind: TrackerInstall, PayoutFixed: "1"},
					{ID: 1004, Kind: TrackerCPC, PayoutFixed: "0.10"},
				},
			},
			{ID: "globex", Name: "Globex", Currency: "EUR", Timezone: "Europe/Berlin", Contract: Contract{OpenEnded: true}},
		},
		Sources: []Source{
			{Name: "drop", Brand: "acme", Type: LocalDir, Path: "/srv/drop"},
			{
				Name: "acme-sftp", Brand: "acme", Type: SFTP, Address: "sftp.acme.example:22", Username: "u",
				PrivateKeyFile: "/run/secrets/key", KnownHosts: "/etc/known_hosts", Path: "/out",
			},
			{
				Name: "globex-ftp", Brand: "globex", Type: FTP, Address: "ftp.globex.example:21", Username: "u",
				PasswordEnv: SecretFromEnv("pw"), Path: "/returns",
			},
			{
				Name: "inbox", Type: IMAP, Address: "imap.example:993", Username: "u", PasswordFile: "/run/secrets/imap",
				Routes: []Route{{Recipient: "returns+acme@platform.example", Brand: "acme", Senders: []string{"*@acme.example"}}},
			},
		},
		SMTP: SMTP{Address: "smtp.platform.example:465", Username: "u", PasswordFile: "/run/secrets/smtp",
			From: "returnsd <returns@platform.example>"},
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("validConfig does not validate: %v", err)
	}
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name   string
		breaks func(c *Config)
		want   string // the whole message of one of the problems
	}{
		// Brands.
		{"RequiresABrandID", func(c *Config) { c.Brands[0].ID = "" }, "brands[0].id: is required"},
		{"RejectsABrandIDThatIsNotASlug", func(c *Config) { c.Brands[0].ID = "ACME Inc" }, `brands[0].id: "ACME Inc" is not a slug`},
		{"RejectsABrandIDLongerThan32", func(c *Config) { c.Brands[0].ID = strings.Repeat("a", 33) }, `brands[0].id: "` + strings.Repeat("a", 33) + `" is not a slug`},
		{"RejectsADuplicateBrandID", func(c *Config) { c.Brands[1].ID = "acme" }, `brands[1].id: "acme" is used by another brand`},
		{"RequiresABrandName", func(c *Config) { c.Brands[0].Name = "" }, "brands[0].name: is required"},
		{"RejectsALowerCaseCurrency", func(c *Config) { c.Brands[0].Currency = "usd" }, `brands[0].currency: "usd" is not an ISO 4217 code`},
		{"RejectsAnUnknownTimezone", func(c *Config) { c.Brands[0].Timezone = "Mars/Olympus" }, `brands[0].timezone: "Mars/Olympus" is not a known IANA time zone`},
		{"RequiresATimezone", func(c *Config) { c.Brands[0].Timezone = "" }, "brands[0].timezone: is required"},

		// Contracts.
		{"RejectsLockingDaysWithOpenEnded", func(c *Config) { c.Brands[0].Contract.OpenEnded = true }, "brands[0].contract: set locking_days or open_ended: true, not both"},
		{"RequiresLockingDaysOrOpenEnded", func(c *Config) { c.Brands[1].Contract.OpenEnded = false }, "brands[1].contract: set locking_days (days until an action locks) or open_ended: true"},
		{"RejectsNegativeLockingDays", func(c *Config) { n := -1; c.Brands[0].Contract.LockingDays = &n }, "brands[0].contract.locking_days: -1 is negative"},
		{"RejectsAPartnerContractWithoutAPartner", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{}}
		}, "brands[0].contract.partners[0].partner: 0 is not a partner id (a whole number above 0)"},
		{"RejectsTwoContractsForOnePartner", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7}, {Partner: 7}}
		}, "brands[0].contract.partners[1].partner: 7 has another entry in this brand's partners"},
		{"RejectsAPartnerWithLockingDaysAndOpenEnded", func(c *Config) {
			n := 5
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, LockingDays: &n, OpenEnded: true}}
		}, "brands[0].contract.partners[0]: set locking_days or open_ended: true, not both"},
		{"RejectsANegativePartnerPayoutDelay", func(c *Config) {
			n := -2
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, PayoutDelayDays: &n}}
		}, "brands[0].contract.partners[0].payout_delay_days: -2 is negative"},
		{"RejectsAPartnerPayoutForAnUnknownTracker", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Payouts: []PartnerPayout{{Tracker: 9, PayoutFixed: "1"}}}}
		}, "brands[0].contract.partners[0].payouts[0].tracker: 9 is not a tracker of brand acme"},
		{"RejectsAFixedPartnerPayoutOnASaleTracker", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Payouts: []PartnerPayout{{Tracker: 1001, PayoutFixed: "1"}}}}
		}, "brands[0].contract.partners[0].payouts[0]: a SALE tracker's payout is payout_percent (and no payout_fixed)"},
		{"RejectsAPartnerPercentOverAHundred", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Payouts: []PartnerPayout{{Tracker: 1001, PayoutPercent: "101"}}}}
		}, `brands[0].contract.partners[0].payouts[0].payout_percent: "101" is more than 100 percent`},
		{"RejectsANegativePayoutDelay", func(c *Config) { c.Brands[0].Contract.PayoutDelayDays = -2 }, "brands[0].contract.payout_delay_days: -2 is negative"},
		{"RejectsAnInquiryWindowThatEndsBeforeItStarts", func(c *Config) {
			c.Brands[0].Contract.Inquiries.Window = Window{Min: MustParseDuration("2mo"), Max: MustParseDuration("7d")}
		}, "brands[0].contract.inquiries.window: min 2mo is after max 1w"},

		// Inquiries: automatic approval, the deadline, partners' contacts.
		{"RequiresAnAutoApprovalDelay", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{Types: []string{"UNTRACKED"}}
		}, "brands[0].contract.inquiries.auto_approve.after: is required"},
		{"RejectsAnUnknownAutoApprovalType", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{After: MustParseDuration("30d"), Types: []string{"UNTRACKED", "LOST"}}
		}, `brands[0].contract.inquiries.auto_approve.types[1]: "LOST" is not UNTRACKED, INCORRECT or DECLINED`},
		{"RejectsAnAutoApprovalTypeListedTwice", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{After: MustParseDuration("30d"), Types: []string{"DECLINED", "DECLINED"}}
		}, `brands[0].contract.inquiries.auto_approve.types[1]: "DECLINED" is listed twice`},
		{"RejectsAMaxPayoutThatIsNotMoney", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{After: MustParseDuration("30d"), MaxPayout: "50.001"}
		}, `brands[0].contract.inquiries.auto_approve.max_payout: "50.001" has more than 2 decimal places`},
		{"RejectsAMonthlyCapThatIsNotMoney", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{After: MustParseDuration("30d"), MonthlyCap: "lots"}
		}, `brands[0].contract.inquiries.auto_approve.monthly_cap: "lots" is not a decimal number`},
		{"RejectsOffOnTheBrandsOwnRule", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{Off: true}
		}, "brands[0].contract.inquiries.auto_approve.off: only applies to a partner's rule"},
		{"RejectsAPartnerRuleThatIsOffAndSaysMore", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Inquiries: PartnerInquiries{
				AutoApprove: &AutoApprove{Off: true, After: MustParseDuration("3d")}}}}
		}, "brands[0].contract.partners[0].inquiries.auto_approve: off: true exempts the partner; it takes no other field"},
		{"RequiresAPartnerRulesDelay", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Inquiries: PartnerInquiries{AutoApprove: &AutoApprove{}}}}
		}, "brands[0].contract.partners[0].inquiries.auto_approve.after: is required"},
		{"RejectsAZeroResolutionDeadline", func(c *Config) {
			c.Brands[0].Contract.Inquiries.ResolutionDeadline = Duration{}
		}, "brands[0].contract.inquiries.resolution_deadline: must be more than 0"},
		{"RejectsAContactThatIsNotAnAddress", func(c *Config) {
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Contact: "claims at partner"}}
		}, `brands[0].contract.partners[0].contact: "claims at partner" is not an e-mail address`},
		{"RequiresSMTPForAContact", func(c *Config) {
			c.Sources = c.Sources[:3]
			c.SMTP = SMTP{}
			c.Brands[0].Contract.Partners = []PartnerContract{{Partner: 7, Contact: "claims@partner.example"}}
		}, "brands[0].contract.partners[0].contact: is mailed through the smtp section, which is not configured"},

		// Trackers.
		{"RejectsADuplicateTrackerID", func(c *Config) { c.Brands[0].Trackers[1].ID = 1001 }, "brands[0].trackers[1].id: 1001 is used by another tracker of brand acme"},
		{"RejectsANonPositiveTrackerID", func(c *Config) { c.Brands[0].Trackers[1].ID = 0 }, "brands[0].trackers[1].id: 0 is not a positive tracker id"},
		{"RejectsAnUnknownTrackerKind", func(c *Config) { c.Brands[0].Trackers[0].Kind = "sale" }, `brands[0].trackers[0].kind: "sale" is not SALE, LEAD, INSTALL or CPC`},
		{"RequiresAPercentOnASaleTracker", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "" }, "brands[0].trackers[0].payout_percent: is required for SALE trackers"},
		{"RejectsAFixedPayoutOnASaleTracker", func(c *Config) { c.Brands[0].Trackers[0].PayoutFixed = "1.00" }, "brands[0].trackers[0].payout_fixed: is not allowed for SALE trackers (they pay payout_percent)"},
		{"RequiresAFixedPayoutOnALeadTracker", func(c *Config) { c.Brands[0].Trackers[1].PayoutFixed = "" }, "brands[0].trackers[1].payout_fixed: is required for LEAD trackers"},
		{"RequiresAFixedPayoutOnACPCTracker", func(c *Config) { c.Brands[0].Trackers[3].PayoutFixed = "" }, "brands[0].trackers[3].payout_fixed: is required for CPC trackers"},
		{"RejectsAPercentOnAnInstallTracker", func(c *Config) { c.Brands[0].Trackers[2].PayoutPercent = "5" }, "brands[0].trackers[2].payout_percent: is not allowed for INSTALL trackers (they pay payout_fixed)"},
		{"RejectsAPercentWithMoreThan4Decimals", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "8.55555" }, `brands[0].trackers[0].payout_percent: "8.55555" has more than 4 decimal places`},
		{"RejectsAPercentOver100", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "100.01" }, `brands[0].trackers[0].payout_percent: "100.01" is more than 100 percent`},
		{"RejectsANegativePercent", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "-1" }, `brands[0].trackers[0].payout_percent: "-1" is not a decimal number such as 8.5`},
		{"RejectsAPercentWithAComma", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "8,5" }, `brands[0].trackers[0].payout_percent: "8,5" is not a decimal number such as 8.5`},
		{"RejectsAFixedPayoutWithMoreThan2Decimals", func(c *Config) { c.Brands[0].Trackers[1].PayoutFixed = "4.005" }, `brands[0].trackers[1].payout_fixed: "4.005" has more than 2 decimal places`},
		{"RejectsANegativeFixedPayout", func(c *Config) { c.Brands[0].Trackers[1].PayoutFixed = "-4" }, `brands[0].trackers[1].payout_fixed: "-4" is negative`},
		{"RejectsAFixedPayoutThatIsNotANumber", func(c *Config) { c.Brands[0].Trackers[1].PayoutFixed = "four" }, `brands[0].trackers[1].payout_fixed: "four" is not a decimal number`},

		// File formats.
		{"RejectsAnUnknownEncoding", func(c *Config) { c.Brands[0].FileFormat.Encoding = "klingon-8" }, `brands[0].file_format.encoding: "klingon-8" is not a known encoding`},
		{"RejectsAnUnknownDelimiter", func(c *Config) { c.Brands[0].FileFormat.Delimiter = ":" }, `brands[0].file_format.delimiter: ":" is not one of , ; "\t" | (or empty to detect it)`},
		{"ExplainsHowToWriteATab", func(c *Config) { c.Brands[0].FileFormat.Delimiter = `\t` }, `brands[0].file_format.delimiter: "\\t": write a tab as "\t" in double quotes`},
		{"RejectsAnEmptyAliasTarget", func(c *Config) { c.Brands[0].FileFormat.Aliases = map[string]string{"Bestellnummer": ""} }, "brands[0].file_format.aliases.Bestellnummer: is empty; want a column name such as Oid"},

		// Sources.
		{"RejectsADuplicateSourceName", func(c *Config) { c.Sources[1].Name = "drop" }, `sources[1].name: "drop" is used by another source`},
		{"RejectsASourceNameThatIsNotASlug", func(c *Config) { c.Sources[0].Name = "Drop Box" }, `sources[0].name: "Drop Box" is not a slug`},
		{"RejectsAnUnknownSourceType", func(c *Config) { c.Sources[0].Type = "s3" }, `sources[0].type: "s3" is not localdir, sftp, ftp or imap`},
		{"RejectsASourceOfAnUnknownBrand", func(c *Config) { c.Sources[0].Brand = "initech" }, `sources[0].brand: unknown brand "initech"`},
		{"RequiresABrandOnANonIMAPSource", func(c *Config) { c.Sources[0].Brand = "" }, "sources[0].brand: is required"},
		{"RejectsABrandOnAnIMAPSource", func(c *Config) { c.Sources[3].Brand = "acme" }, "sources[3].brand: is not allowed on an imap source: each route names its brand"},
		{"RequiresAPath", func(c *Config) { c.Sources[0].Path = "" }, "sources[0].path: is required"},
		{"RejectsAFieldThatDoesNotApplyToTheType", func(c *Config) { c.Sources[0].Username = "u" }, "sources[0].username: does not apply to localdir sources"},
		{"RejectsTLSOnSFTP", func(c *Config) { c.Sources[1].TLS = TLSImplicit }, "sources[1].tls: does not apply to sftp sources"},
		{"RejectsAnUnknownKind", func(c *Config) { c.Sources[0].Kind = "returns" }, `sources[0].kind: "returns" is not action-updates, inquiry-resolutions, actions or inquiries`},
		{"RequiresAnAddressForARemoteSource", func(c *Config) { c.Sources[2].Address = "" }, "sources[2].address: is required (host:port)"},
		{"RequiresAUsernameForARemoteSource", func(c *Config) { c.Sources[2].Username = "" }, "sources[2].username: is required"},
		{"RequiresKnownHostsForSFTP", func(c *Config) { c.Sources[1].KnownHosts = "" }, "sources[1].known_hosts: is required for sftp: the server's host key must be pinned"},
		{"RequiresACredentialForSFTP", func(c *Config) { c.Sources[1].PrivateKeyFile = "" }, "sources[1].password: sftp needs password: ${VAR}, password_file or private_key_file"},
		{"RequiresACredentialForFTP", func(c *Config) { c.Sources[2].PasswordEnv = Secret{} }, "sources[2].password: ftp needs password: ${VAR} or password_file"},
		{"RejectsALiteralPassword", func(c *Config) { c.Sources[2].PasswordEnv = Secret{value: "hunter2"} }, "sources[2].password: is written literally in the config; use password: ${VAR} or password_file"},
		{"RejectsAPasswordWithAPasswordFile", func(c *Config) { c.Sources[2].PasswordFile = "/run/pw" }, "sources[2].password: set password or password_file, not both"},
		{"RejectsAnUnknownFTPTLSMode", func(c *Config) { c.Sources[2].TLS = "ssl" }, `sources[2].tls: "ssl" is not explicit, implicit or none`},
		{"RejectsPlainFTPWithoutInsecurePlaintext", func(c *Config) { c.Sources[2].TLS = TLSNone }, "sources[2].tls: none sends the password in clear text; it also needs insecure_plaintext: true"},
		{"RejectsInsecurePlaintextWithTLS", func(c *Config) { c.Sources[2].InsecurePlaintext = true }, "sources[2].insecure_plaintext: only applies with tls: none, not tls: explicit"},
		{"RejectsPlainIMAP", func(c *Config) { c.Sources[3].TLS = TLSNone }, `sources[3].tls: "none" is not implicit or starttls (IMAP is only read over TLS)`},
		{"RejectsStartTLSOnFTP", func(c *Config) { c.Sources[2].TLS = TLSStartTLS }, `sources[2].tls: "starttls" is not explicit, implicit or none`},
		{"RequiresRoutesOnIMAP", func(c *Config) { c.Sources[3].Routes = nil }, "sources[3].routes: is required: an imap source routes mail by recipient to brands"},
		{"RejectsARouteToAnUnknownBrand", func(c *Config) { c.Sources[3].Routes[0].Brand = "initech" }, `sources[3].routes[0].brand: unknown brand "initech"`},
		{"RejectsARecipientRoutedTwice", func(c *Config) {
			r := c.Sources[3].Routes[0]
			r.Recipient = strings.ToUpper(r.Recipient)
			c.Sources[3].Routes = append(c.Sources[3].Routes, r)
		}, `sources[3].routes[1].recipient: "RETURNS+ACME@PLATFORM.EXAMPLE" is routed twice`},
		{"RequiresSendersOnARoute", func(c *Config) { c.Sources[3].Routes[0].Senders = nil }, `sources[3].routes[0].senders: is required: list the allowed From patterns, e.g. "*@acme.example" ("*" allows anyone)`},
		{"RequiresAnAuthservIDForDMARC", func(c *Config) { c.Sources[3].RequireDMARC = true }, "sources[3].authserv_id: is required with require_dmarc: only the receiving server's own Authentication-Results can be trusted"},
		{"RejectsAnUnknownAfter", func(c *Config) { c.Sources[0].After = "archive" }, `sources[0].after: "archive" is not move, delete or leave`},
		{"RejectsABadPattern", func(c *Config) { c.Sources[0].Include = []string{"[*.csv"} }, `sources[0].include[0]: "[*.csv" is not a valid pattern`},
		{"RejectsAMinAgeInMonths", func(c *Config) { c.Sources[0].MinAge = MustParseDuration("1mo") }, "sources[0].min_age: 1mo: months are not allowed; use days, hours or minutes"},
		{"RejectsATimeoutInDays", func(c *Config) { c.Sources[2].Timeout = MustParseDuration("1d") }, "sources[2].timeout: 1d: want a positive clock duration such as 30s or 2m"},
		{"RejectsADoneMarkerThatIsAPath", func(c *Config) { c.Sources[0].DoneMarker = "../done" }, `sources[0].done_marker: "../done" must be a file name suffix such as .done, not a path`},

		// Schedules.
		{"RejectsAScheduleWithSixFields", func(c *Config) { c.Sources[0].Schedule = "0 15 * * * *" }, `sources[0].schedule: "0 15 * * * *" has 6 fields; want 5 (minute hour day-of-month month day-of-week)`},
		{"RejectsAnUnknownScheduleZone", func(c *Config) { c.Sources[0].Schedule = "CRON_TZ=Mars/Olympus 15 * * * *" }, `sources[0].schedule: "CRON_TZ=Mars/Olympus 15 * * * *": "Mars/Olympus" is not a known IANA time zone`},
		{"RejectsAnUnknownDescriptor", func(c *Config) { c.Sources[0].Schedule = "@fortnightly" }, `sources[0].schedule: "@fortnightly" is not a cron descriptor`},
		{"RejectsAnEmptySchedule", func(c *Config) { c.Sources[0].Schedule = " " }, "sources[0].schedule: is required"},
		{"NamesEachFieldOutOfRange", func(c *Config) { c.Sources[0].Schedule = "99 99 * * *" }, `sources[0].schedule: "99 99 * * *": minute "99": 99 is not in 0-59; hour "99": 99 is not in 0-23`},
		{"RejectsAScheduleThatNeverRuns", func(c *Config) { c.Sources[1].Schedule = "0 0 31 4 *" }, `sources[1].schedule: "0 0 31 4 *" never runs: no month it names has that day`},
		{"RejectsAnIMAPScheduleOutOfRange", func(c *Config) { c.Sources[3].Schedule = "0 6 * * 7" }, `sources[3].schedule: "0 6 * * 7": day-of-week "7": 7 is not in 0-6 (0 is Sunday)`},
		{"RejectsAZoneWithoutASchedule", func(c *Config) { c.Sources[0].Schedule = "CRON_TZ=Europe/Berlin" }, `sources[0].schedule: "CRON_TZ=Europe/Berlin": nothing follows the time zone`},
		{"RejectsAnEveryBelowASecond", func(c *Config) { c.Sources[0].Schedule = "@every 500ms" }, `sources[0].schedule: "@every 500ms": @every needs at least 1s`},
		{"RejectsABadLifecycleSchedule", func(c *Config) { c.Schedules.Lifecycle = "5 * * *" }, `schedules.lifecycle: "5 * * *" has 4 fields; want 5 (minute hour day-of-month month day-of-week)`},
		{"RejectsABadAutoResolveSchedule", func(c *Config) { c.Schedules.AutoResolve = "CRON_TZ=Mars/Olympus @hourly" }, `schedules.auto_resolve: "CRON_TZ=Mars/Olympus @hourly": "Mars/Olympus" is not a known IANA time zone`},
		{"RejectsABadReportSchedule", func(c *Config) { c.Schedules.Report = "0 25 * * *" }, `schedules.report: "0 25 * * *": hour "25": 25 is not in 0-23`},
		{"RequiresAReportSchedule", func(c *Config) { c.Schedules.Report = "\t" }, "schedules.report: is required"},

		// The daemon.
		{"RejectsAStableWaitOnIMAP", func(c *Config) { c.Sources[3].StableWait = MustParseDuration("5s") }, "sources[3].stable_wait: does not apply to imap sources"},
		{"RejectsAStableWaitInDays", func(c *Config) { c.Sources[0].StableWait = MustParseDuration("1d") }, "sources[0].stable_wait: 1d: want a positive clock duration such as 10s"},
		{"RejectsAListenAddressWithoutAPort", func(c *Config) { c.HTTP.Listen = "8080" }, `http.listen: "8080" is not host:port, e.g. 127.0.0.1:8080 or :8080`},
		{"RejectsAListenPortByName", func(c *Config) { c.HTTP.Listen = "localhost:http" }, `http.listen: port "http" is not a number from 0 to 65535`},
		{"RejectsAListenPortOutOfRange", func(c *Config) { c.HTTP.Listen = ":65536" }, `http.listen: port "65536" is not a number from 0 to 65535`},
		{"RejectsAShutdownTimeoutInMonths", func(c *Config) { c.ShutdownTimeout = MustParseDuration("1mo") }, "shutdown_timeout: 1mo: want a positive clock duration such as 60s or 2m"},

		// Everything else.
		{"RejectsANegativeLimit", func(c *Config) { c.Limits.MaxRows = -1 }, "limits.max_rows: -1 is negative"},
		{"RequiresASpoolDir", func(c *Config) { c.SpoolDir = "" }, "spool_dir: is required"},
		{"RejectsAnUnknownLogLevel", func(c *Config) { c.Log.Level = "verbose" }, `log.level: "verbose" is not debug, info, warn or error`},
		{"RejectsAnUnknownLogFormat", func(c *Config) { c.Log.Format = "xml" }, `log.format: "xml" is not text or json`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			tt.breaks(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate: got no error, want %q", tt.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, tt.want) {
					return
				}
			}
			t.Errorf("Validate error:\n%v\nwant a line:\n%s", err, tt.want)
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name  string
		tweak func(c *Config)
	}{
		{"ZeroLockingDays", func(c *Config) { n := 0; c.Brands[0].Contract.LockingDays = &n }},
		{"AHundredPercent", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "100.0000" }},
		{"ZeroPercent", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "0" }},
		{"FourDecimalsWithTrailingZeros", func(c *Config) { c.Brands[0].Trackers[0].PayoutPercent = "8.123400" }},
		{"AFixedPayoutWithThousandsSeparators", func(c *Config) { c.Brands[0].Trackers[1].PayoutFixed = "1,000.00" }},
		{"EveryDelimiter", func(c *Config) { c.Brands[0].FileFormat.Delimiter = "\t" }},
		{"AnEncodingByAnyOfItsNames", func(c *Config) { c.Brands[0].FileFormat.Encoding = "latin1" }},
		{"PlainFTPWhenItSaysSoExplicitly", func(c *Config) {
			c.Sources[2].TLS, c.Sources[2].InsecurePlaintext = TLSNone, true
		}},
		{"StartTLSOnIMAP", func(c *Config) { c.Sources[3].TLS = TLSStartTLS }},
		{"ATZPrefix", func(c *Config) { c.Sources[0].Schedule = "TZ=Europe/Berlin 0 6 * * MON-FRI" }},
		{"AnEveryDescriptor", func(c *Config) { c.Sources[0].Schedule = "@every 10m" }},
		{"AnHourlyDescriptorWithAZone", func(c *Config) { c.Sources[0].Schedule = "CRON_TZ=UTC @hourly" }},
		{"DaemonSchedulesWithAZone", func(c *Config) { c.Schedules.Report = "CRON_TZ=Europe/Berlin 0 7 * * MON-FRI" }},
		{"ListeningOnEveryInterface", func(c *Config) { c.HTTP.Listen = ":8080" }},
		{"ListeningOnAnyFreePort", func(c *Config) { c.HTTP.Listen = "127.0.0.1:0" }},
		{"ListeningOnAnIPv6Address", func(c *Config) { c.HTTP.Listen = "[::1]:9090" }},
		{"AStableWaitInMinutes", func(c *Config) { c.Sources[1].StableWait = MustParseDuration("2m") }},
		{"SFTPWithAPasswordFromTheEnvironment", func(c *Config) {
			c.Sources[1].PrivateKeyFile, c.Sources[1].PasswordEnv = "", SecretFromEnv("pw")
		}},
		{"AnAutoApprovalRuleWithCapsAndAPartnerExempt", func(c *Config) {
			c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{After: MustParseDuration("30d"),
				Types: []string{"UNTRACKED", "DECLINED"}, MaxPayout: "50.00", MonthlyCap: "500"}
			c.Brands[0].Contract.Partners = []PartnerContract{
				{Partner: 7, Contact: "claims@partner.example", Inquiries: PartnerInquiries{AutoApprove: &AutoApprove{Off: true}}},
				{Partner: 8, Inquiries: PartnerInquiries{AutoApprove: &AutoApprove{After: MustParseDuration("2w")}}},
			}
		}},
		{"DMARCWithAnAuthservID", func(c *Config) {
			c.Sources[3].RequireDMARC, c.Sources[3].AuthservID = true, "mx.platform.example"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			tt.tweak(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := validConfig(t)
	c.Brands[0].Currency = "dollars"
	c.Brands[1].Timezone = "Nowhere"
	c.Sources[2].TLS = TLSNone
	err := c.Validate()

	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	if got, want := strings.Join(fields, " "), "brands[0].currency brands[1].timezone sources[2].tls"; got != want {
		t.Errorf("fields = %s, want %s", got, want)
	}
}

func TestValidateCachesTheBrandLocation(t *testing.T) {
	t.Parallel()
	c := validConfig(t)
	b, err := c.Brand("acme")
	if err != nil {
		t.Fatal(err)
	}
	if b.location == nil || b.Location() != b.location || b.Location().String() != "America/New_York" {
		t.Errorf("Location() = %v, cached %v", b.Location(), b.location)
	}

	t.Run("FallsBackToUTCBeforeValidate", func(t *testing.T) {
		t.Parallel()
		b := &Brand{Timezone: "Nowhere"}
		if b.Location() != time.UTC {
			t.Errorf("Location() = %v", b.Location())
		}
	})
}

func TestAutoApprovalDefaults(t *testing.T) {
	t.Parallel()
	c := validConfig(t)
	c.Brands[0].Contract.Inquiries.AutoApprove = &AutoApprove{After: MustParseDuration("30d")}
	c.Brands[0].Contract.Partners = []PartnerContract{
		{Partner: 7, Inquiries: PartnerInquiries{AutoApprove: &AutoApprove{After: MustParseDuration("5d"), Types: []string{"DECLINED"}}}},
		{Partner: 8, Inquiries: PartnerInquiries{AutoApprove: &AutoApprove{Off: true}}},
		{Partner: 9},
	}
	d := c.WithDefaults()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	acme := d.Brands[0].Contract
	if got := acme.Inquiries.AutoApprove.Types; len(got) != 1 || got[0] != "UNTRACKED" {
		t.Errorf("the brand's rule approves %v, want [UNTRACKED] by default", got)
	}
	if got := acme.Partners[0].Inquiries.AutoApprove.Types; len(got) != 1 || got[0] != "DECLINED" {
		t.Errorf("partner 7's rule approves %v, want its own [DECLINED]", got)
	}
	if got := acme.Partners[1].Inquiries.AutoApprove; !got.Off || len(got.Types) != 0 {
		t.Errorf("partner 8's exemption became %+v", got)
	}
	if acme.Partners[2].Inquiries.AutoApprove != nil {
		t.Error("partner 9, with no rule of its own, got one")
	}
	if got := acme.Inquiries.ResolutionDeadline; got != MustParseDuration("12w") {
		t.Errorf("resolution deadline %s, want 12w by default", got)
	}
	if c.Brands[0].Contract.Inquiries.AutoApprove.Types != nil {
		t.Error("WithDefaults changed the config it copied")
	}
	if got := d.AutoApproveBrands(); len(got) != 1 || got[0] != "acme" {
		t.Errorf("AutoApproveBrands = %v, want [acme]", got)
	}
}
