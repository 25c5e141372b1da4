package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env returns a getenv that reads from vars only.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var specEnv = env(map[string]string{
	"DATABASE_URL":       "postgres://returnsd:s3cret@db.example/returnsd",
	"ACME_SFTP_PASSWORD": "hunter2",
})

func TestSpecExample(t *testing.T) {
	t.Parallel()

	// The SPEC §8 example declares sources of brand globex but no globex
	// brand, and an imap source but not the smtp section (SPEC §8: "may hold
	// much more (... SMTP ...)") its results are mailed through, so it decodes
	// as it is and fails validation on exactly those two.
	t.Run("DecodesUnchangedAndOnlyMissesTheGlobexBrandAndSMTP", func(t *testing.T) {
		t.Parallel()
		_, err := LoadFile("testdata/spec.yaml", specEnv)
		if err == nil {
			t.Fatal("Load: want the unknown brand globex, got no error")
		}
		want := `testdata/spec.yaml: sources[1].brand: unknown brand "globex"` + "\n" +
			`testdata/spec.yaml: smtp: is required: imap source returns-inbox mails its result files back to their senders`
		if err.Error() != want {
			t.Fatalf("Load error:\n%s\nwant exactly:\n%s", err, want)
		}
	})

	t.Run("ValidatesOnceGlobexIsDeclared", func(t *testing.T) {
		t.Parallel()
		c := loadSpec(t)

		if got := c.Database.URL; got != "postgres://returnsd:s3cret@db.example/returnsd" {
			t.Errorf("database.url = %q", got)
		}
		acme, err := c.Brand("acme")
		if err != nil {
			t.Fatal(err)
		}
		if acme.Name != "ACME Outdoor" || acme.Currency != "USD" || acme.Location().String() != "America/New_York" {
			t.Errorf("acme = %q %q %v", acme.Name, acme.Currency, acme.Location())
		}
		k := acme.Contract
		if k.LockingDays == nil || *k.LockingDays != 30 || k.OpenEnded || k.PayoutDelayDays != 15 {
			t.Errorf("contract = %+v", k)
		}
		if !k.Inquiries.Accept || k.Inquiries.AutoResolve ||
			k.Inquiries.Window != (Window{Min: Duration{Time: 24 * time.Hour}, Max: Duration{Months: 3}}) {
			t.Errorf("inquiries = %+v", k.Inquiries)
		}
		wantTrackers := []Tracker{
			{ID: 1001, Name: "Online Sale", Kind: TrackerSale, PayoutPercent: "8.5"},
			{ID: 1002, Name: "Newsletter Lead", Kind: TrackerLead, PayoutFixed: "4.00"},
			{ID: 1003, Name: "Paid Click", Kind: TrackerCPC, PayoutFixed: "0.10"},
		}
		if len(acme.Trackers) != len(wantTrackers) {
			t.Fatalf("trackers = %+v", acme.Trackers)
		}
		for i, tr := range wantTrackers {
			if acme.Trackers[i] != tr {
				t.Errorf("trackers[%d] = %+v, want %+v", i, acme.Trackers[i], tr)
			}
		}
		if f := acme.FileFormat; f.Encoding != "windows-1252" || f.DecimalComma || f.Aliases["Bestellnummer"] != "Oid" {
			t.Errorf("file_format = %+v", f)
		}

		sftp, err := c.Source("acme-sftp")
		if err != nil {
			t.Fatal(err)
		}
		if pw, err := sftp.Password(); err != nil || pw != "hunter2" {
			t.Errorf("acme-sftp Password() = %q, %v", pw, err)
		}
		if sftp.Type != SFTP || sftp.Address != "sftp.acme.example:22" || sftp.KnownHosts != "/etc/returnsd/known_hosts" ||
			sftp.After != AfterMove || sftp.ResultPath != "/inbound/results" ||
			sftp.Schedule != "CRON_TZ=America/New_York 15 * * * *" || strings.Join(sftp.Include, " ") != "*.csv *.xlsx *.zip *.gz" {
			t.Errorf("acme-sftp = %+v", sftp)
		}
		ftp, _ := c.Source("globex-ftp")
		if ftp.TLS != TLSExplicit || ftp.CAFile != "/etc/returnsd/globex-ca.pem" || ftp.PasswordFile != "/run/secrets/globex_ftp" {
			t.Errorf("globex-ftp = %+v", ftp)
		}
		drop, _ := c.Source("drop")
		if drop.Type != LocalDir || drop.Path != "/var/spool/returnsd/acme" || drop.ResultPath != drop.Path {
			t.Errorf("drop = %+v", drop)
		}
		inbox, _ := c.Source("returns-inbox")
		wantRoute := Route{Recipient: "returns+acme@platform.example", Brand: "acme", Senders: []string{"*@acme.example"}}
		if inbox.TLS != TLSImplicit || inbox.Mailbox != "INBOX" || inbox.ProcessedMailbox != "Processed" ||
			inbox.QuarantineMailbox != "Quarantine" || len(inbox.Routes) != 1 ||
			inbox.Routes[0].Recipient != wantRoute.Recipient || inbox.Routes[0].Brand != wantRoute.Brand ||
			strings.Join(inbox.Routes[0].Senders, ",") != "*@acme.example" {
			t.Errorf("returns-inbox = %+v", inbox)
		}
	})
}

// loadSpec decodes testdata/spec.yaml unchanged, adds the globex brand its
// sources refer to and the smtp section its imap source needs, and validates
// the result.
func loadSpec(t *testing.T) *Config {
	t.Helper()
	f, err := os.Open("testdata/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := decode(f, specEnv)
	if err != nil {
		t.Fatal(err)
	}
	days := 14
	c.Brands = append(c.Brands, Brand{
		ID: "globex", Name: "Globex", Currency: "EUR", Timezone: "Europe/Berlin",
		Contract: Contract{LockingDays: &days},
	})
	c.SMTP = SMTP{Address: "smtp.platform.example:587", TLS: TLSStartTLS, From: "returns@platform.example"}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

// minimal is a valid config used as the base of YAML tests.
const minimal = `
database:
  url: ${DATABASE_URL:-postgres://localhost/returnsd}
brands:
  - id: acme
    name: ACME
    currency: USD
    timezone: UTC
    contract: {locking_days: 30}
sources:
  - name: drop
    brand: acme
    type: localdir
    path: /tmp/drop
`

func TestLoadExpandsVariables(t *testing.T) {
	t.Parallel()

	load := func(t *testing.T, yaml string, vars map[string]string) *Config {
		t.Helper()
		c, err := Load(strings.NewReader(yaml), env(vars))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return c
	}

	t.Run("ReplacesAVariableInAScalar", func(t *testing.T) {
		t.Parallel()
		c := load(t, minimal, map[string]string{"DATABASE_URL": "postgres://db/x"})
		if c.Database.URL != "postgres://db/x" {
			t.Errorf("database.url = %q", c.Database.URL)
		}
	})

	t.Run("UsesTheDefaultWhenTheVariableIsUnset", func(t *testing.T) {
		t.Parallel()
		c := load(t, minimal, nil)
		if c.Database.URL != "postgres://localhost/returnsd" {
			t.Errorf("database.url = %q", c.Database.URL)
		}
	})

	t.Run("KeepsAValueWithYAMLSyntaxAsOnePlainString", func(t *testing.T) {
		t.Parallel()
		evil := "x\nbrands:\n  - id: evil\n# {a: [b]} &anchor *alias !!int"
		c := load(t, minimal, map[string]string{"DATABASE_URL": evil})
		if c.Database.URL != evil {
			t.Errorf("database.url = %q, want %q", c.Database.URL, evil)
		}
		if len(c.Brands) != 1 {
			t.Errorf("brands = %d, want 1: the variable added structure", len(c.Brands))
		}
	})

	t.Run("KeepsAValueThatReadsAsNullAString", func(t *testing.T) {
		t.Parallel()
		c := load(t, minimal, map[string]string{"DATABASE_URL": "null"})
		if c.Database.URL != "null" {
			t.Errorf("database.url = %q, want \"null\"", c.Database.URL)
		}
	})

	t.Run("FillsANumberFieldFromAQuotedReference", func(t *testing.T) {
		t.Parallel()
		y := strings.Replace(minimal, "locking_days: 30", `locking_days: "${LOCK}"`, 1)
		c := load(t, y, map[string]string{"LOCK": "45"})
		if d := c.Brands[0].Contract.LockingDays; d == nil || *d != 45 {
			t.Errorf("locking_days = %v", d)
		}
	})

	t.Run("FillsNumberAndBoolFieldsFromPlainReferences", func(t *testing.T) {
		t.Parallel()
		y := strings.Replace(minimal, "contract: {locking_days: 30}", "contract:\n      locking_days: ${LOCK}\n      inquiries:\n        accept: ${ACCEPT}", 1)
		c := load(t, y, map[string]string{"LOCK": "7", "ACCEPT": "true"})
		k := c.Brands[0].Contract
		if k.LockingDays == nil || *k.LockingDays != 7 || !k.Inquiries.Accept {
			t.Errorf("contract = %+v, locking_days %v", k, k.LockingDays)
		}
	})

	t.Run("KeepsANumberLookingValueVerbatimInAStringField", func(t *testing.T) {
		t.Parallel()
		y := strings.Replace(minimal, "name: ACME", "name: ${NAME}", 1)
		for _, v := range []string{"0123", "1e3", "true", "2025-01-01", "0x1F"} {
			c := load(t, y, map[string]string{"NAME": v})
			if c.Brands[0].Name != v {
				t.Errorf("name = %q, want %q", c.Brands[0].Name, v)
			}
		}
	})

	t.Run("ExpandsSeveralReferencesAndDollarDollar", func(t *testing.T) {
		t.Parallel()
		y := strings.Replace(minimal, "name: ACME", "name: ${A}-$${B}-${C:-c}-$5", 1)
		c := load(t, y, map[string]string{"A": "a"})
		if got, want := c.Brands[0].Name, "a-${B}-c-$5"; got != want {
			t.Errorf("name = %q, want %q", got, want)
		}
	})

	t.Run("DoesNotExpandAValueTwice", func(t *testing.T) {
		t.Parallel()
		c := load(t, minimal, map[string]string{"DATABASE_URL": "${OTHER}", "OTHER": "no"})
		if c.Database.URL != "${OTHER}" {
			t.Errorf("database.url = %q", c.Database.URL)
		}
	})
}

func TestAnUnsetSecretMakesItsSourceUnusableNotTheConfig(t *testing.T) {
	t.Parallel()
	y := strings.Replace(minimal, "    path: /tmp/drop\n", "    path: /tmp/drop\n", 1) + `  - name: ftp
    brand: acme
    type: ftp
    address: ftp.example:21
    username: u
    password: ${FTP_PASSWORD}
    path: /in
  - name: mail
    type: imap
    address: imap.example:993
    username: u
    password: ${IMAP_PASSWORD}
    routes: [{recipient: r@x.example, brand: acme, senders: ["*@x.example"]}]
smtp:
  address: smtp.example:465
  username: u
  password: ${SMTP_PASSWORD}
  from: r@x.example
`
	c, err := Load(strings.NewReader(y), func(k string) string {
		return map[string]string{"IMAP_PASSWORD": "i"}[k]
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for name, want := range map[string]string{
		"drop": "",
		"ftp":  "source ftp: password: environment variable FTP_PASSWORD is not set",
		"mail": "source mail: its results are mailed through smtp, whose password: environment variable SMTP_PASSWORD is not set",
	} {
		s, err := c.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := c.SourceUnusable(s); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("SourceUnusable(%s) = %q, want %q", name, got, want)
		}
	}
	ftp, _ := c.Source("ftp")
	if _, err := ftp.Password(); err == nil || !strings.Contains(err.Error(), "FTP_PASSWORD is not set") {
		t.Errorf("Password() = %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name  string
		yaml  string
		vars  map[string]string
		wants []string // each must appear in the error
	}{
		{
			name:  "AMissingVariableNamingItAndThePath",
			yaml:  strings.Replace(minimal, "name: ACME", "name: ${BRAND_NAME}", 1),
			wants: []string{"brands[0].name (line 6): environment variable BRAND_NAME is not set"},
		},
		{
			name: "EveryMissingVariableAtOnce",
			yaml: strings.Replace(strings.Replace(minimal, "name: ACME", "name: ${ONE}", 1), "path: /tmp/drop", "path: ${TWO}", 1),
			wants: []string{
				"brands[0].name (line 6): environment variable ONE is not set",
				"sources[0].path (line 14): environment variable TWO is not set",
			},
		},
		{
			name:  "AnEmptyVariableAsUnset",
			yaml:  strings.Replace(minimal, "name: ACME", "name: ${EMPTY}", 1),
			vars:  map[string]string{"EMPTY": ""},
			wants: []string{"environment variable EMPTY is not set"},
		},
		{
			name:  "ABadReference",
			yaml:  strings.Replace(minimal, "name: ACME", "name: ${1x}", 1),
			wants: []string{"brands[0].name (line 6): ${1x} is not a variable reference"},
		},
		{
			name:  "AnUnclosedReference",
			yaml:  strings.Replace(minimal, "name: ACME", "name: ${X", 1),
			wants: []string{"brands[0].name (line 6): unclosed ${"},
		},
		{
			name:  "AnUnknownFieldWithItsPathAndLine",
			yaml:  strings.Replace(minimal, "    path: /tmp/drop", "    path: /tmp/drop\n    pasword: x", 1),
			wants: []string{"sources[0].pasword (line 15): unknown field; did you mean password?"},
		},
		{
			name:  "AnUnknownTopLevelField",
			yaml:  minimal + "mailer: {host: x}\n",
			wants: []string{"mailer (line 15): unknown field"},
		},
		{
			name:  "AnUnknownFieldInSMTP",
			yaml:  minimal + "smtp: {host: x}\n",
			wants: []string{"smtp.host (line 15): unknown field"},
		},
		{
			name:  "AnUnknownFieldInsideFileFormat",
			yaml:  strings.Replace(minimal, "    timezone: UTC", "    timezone: UTC\n    file_format: {encodng: latin1}", 1),
			wants: []string{"brands[0].file_format.encodng (line 9): unknown field; did you mean encoding?"},
		},
		{
			name:  "AWrongType",
			yaml:  strings.Replace(minimal, "locking_days: 30", "locking_days: soon", 1),
			wants: []string{"line 9: cannot unmarshal !!str `soon` into int"},
		},
		{
			name:  "ABadDuration",
			yaml:  strings.Replace(minimal, "contract: {locking_days: 30}", "contract: {locking_days: 30, inquiries: {window: {max: 3 months}}}", 1),
			wants: []string{`line 9: duration "3 months"`},
		},
		{
			name:  "AnEmptyFile",
			yaml:  "",
			wants: []string{"config is empty"},
		},
		{
			name:  "TwoDocuments",
			yaml:  minimal + "---\nbrands: []\n",
			wants: []string{"more than one YAML document"},
		},
		{
			name:  "BadYAML",
			yaml:  "brands: [\n",
			wants: []string{"parse YAML"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(strings.NewReader(tt.yaml), env(tt.vars))
			if err == nil {
				t.Fatal("Load: got no error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestLoadAcceptsMergeKeys(t *testing.T) {
	t.Parallel()
	y := `
brands:
  - &base
    id: acme
    name: ACME
    currency: USD
    timezone: UTC
    contract: {open_ended: true}
  - <<: *base
    id: globex
`
	c, err := Load(strings.NewReader(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brands) != 2 || c.Brands[1].ID != "globex" || c.Brands[1].Currency != "USD" {
		t.Errorf("brands = %+v", c.Brands)
	}
}

func TestLoadTracksWhereAPasswordCameFrom(t *testing.T) {
	t.Parallel()

	source := func(password string) string {
		return minimal + `
  - name: acme-ftp
    brand: acme
    type: ftp
    address: ftp.acme.example:21
    username: returnsd
    path: /returns
    password: ` + password + "\n"
	}
	for _, tt := range []struct {
		name    string
		value   string
		vars    map[string]string
		wantErr string // "" for valid
	}{
		{name: "AcceptsAVariable", value: "${PW}", vars: map[string]string{"PW": "s3cret"}},
		{name: "AcceptsAQuotedVariable", value: `"${PW}"`, vars: map[string]string{"PW": "s3cret"}},
		{name: "RejectsALiteral", value: "hunter2", wantErr: "sources[1].password: is written literally in the config; use password: ${VAR} or password_file"},
		{name: "RejectsLiteralTextAroundAVariable", value: "pre${PW}", vars: map[string]string{"PW": "s3cret"}, wantErr: "sources[1].password: is written literally"},
		{name: "RejectsALiteralDefault", value: "${PW:-hunter2}", wantErr: "sources[1].password: is written literally"},
		{name: "RejectsAnEmptyPasswordWithoutAFile", value: "${PW:-}", wantErr: "sources[1].password: ftp needs password: ${VAR} or password_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(strings.NewReader(source(tt.value)), env(tt.vars))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if pw, err := c.Sources[1].Password(); err != nil || pw != "s3cret" {
					t.Errorf("Password() = %q, %v", pw, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}

	t.Run("NeverPrintsTheSecret", func(t *testing.T) {
		t.Parallel()
		c, err := Load(strings.NewReader(source("${PW}")), env(map[string]string{"PW": "s3cret"}))
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(format, c.Sources[1]); strings.Contains(s, "s3cret") {
				t.Errorf("%s of the source shows the password: %s", format, s)
			}
		}
	})
}

func TestLoadFilePrefixesEveryErrorWithTheFileName(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "returnsd.yaml")
	y := strings.Replace(strings.Replace(minimal, "currency: USD", "currency: usd", 1), "timezone: UTC", "timezone: Mars/Olympus", 1)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path, env(nil))
	if err == nil {
		t.Fatal("LoadFile: got no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 problems, got:\n%v", err)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, path+": brands[0].") {
			t.Errorf("line %q does not start with %q", l, path+": brands[0].")
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("errors.As(*FieldError) failed on %v", err)
	}
}

func TestLoadAppliesDefaults(t *testing.T) {
	t.Parallel()
	y := minimal + `
  - name: inbox
    type: imap
    address: imap.example:993
    username: u
    password_file: /run/secrets/imap
    routes: [{recipient: a@x.example, brand: acme, senders: ["*"]}]
  - name: acme-ftp
    brand: acme
    type: ftp
    address: ftp.acme.example:21
    username: returnsd
    password_file: /run/secrets/ftp
    path: /returns
smtp:
  address: smtp.platform.example:465
  from: returns@platform.example
`
	c, err := Load(strings.NewReader(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SpoolDir != filepath.Join(os.TempDir(), "returnsd-spool") {
		t.Errorf("spool_dir = %q", c.SpoolDir)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("log = %+v", c.Log)
	}
	if c.Limits != (Limits{}) {
		t.Errorf("limits = %+v; unset limits stay zero, which means the processors' defaults", c.Limits)
	}
	w := c.Brands[0].Contract.Inquiries.Window
	if w.Min.String() != "24h" || w.Max.String() != "3mo" {
		t.Errorf("inquiry window = %s..%s", w.Min, w.Max)
	}
	drop, inbox, ftp := c.Sources[0], c.Sources[1], c.Sources[2]
	if drop.Schedule != "*/5 * * * *" || drop.After != AfterMove || drop.ResultPath != "/tmp/drop" ||
		drop.MinAge.String() != "1m" || drop.Timeout.String() != "1m" || drop.TLS != "" {
		t.Errorf("localdir defaults = %+v", drop)
	}
	if inbox.TLS != TLSImplicit || inbox.Mailbox != "INBOX" || inbox.ProcessedMailbox != "Processed" ||
		inbox.QuarantineMailbox != "Quarantine" || inbox.ResultPath != "" {
		t.Errorf("imap defaults = %+v", inbox)
	}
	if ftp.TLS != TLSExplicit {
		t.Errorf("ftp tls = %q, want explicit", ftp.TLS)
	}
	if c.SMTP.TLS != TLSImplicit || c.SMTP.Timeout.String() != "1m" {
		t.Errorf("smtp defaults = %+v", c.SMTP)
	}
	if drop.StableWait.String() != "10s" || ftp.StableWait.String() != "10s" || !inbox.StableWait.IsZero() {
		t.Errorf("stable_wait = %s (localdir), %s (ftp), %s (imap); want 10s, 10s and none", drop.StableWait, ftp.StableWait, inbox.StableWait)
	}
	if c.Report.Timezone != "UTC" || len(c.Report.Recipients) != 0 {
		t.Errorf("report = %+v", c.Report)
	}
	if c.Schedules != (Schedules{Lifecycle: "5 * * * *", AutoResolve: "35 * * * *", Report: "0 7 * * *"}) {
		t.Errorf("schedules = %+v", c.Schedules)
	}
	if c.HTTP.Listen != "127.0.0.1:8080" || c.ShutdownTimeout.String() != "1m" {
		t.Errorf("http.listen = %q, shutdown_timeout = %s", c.HTTP.Listen, c.ShutdownTimeout)
	}
}

func TestLoadReadsTheDaemonSettings(t *testing.T) {
	t.Parallel()
	y := strings.Replace(minimal, "    path: /tmp/drop\n", "    path: /tmp/drop\n    schedule: \"@every 30s\"\n    stable_wait: 3s\n", 1) + `
schedules:
  lifecycle: "*/10 * * * *"
  auto_resolve: "@hourly"
  report: "CRON_TZ=Europe/Berlin 0 6 * * *"
http:
  listen: ${LISTEN:-:9090}
shutdown_timeout: 2m
`
	c, err := Load(strings.NewReader(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedules != (Schedules{Lifecycle: "*/10 * * * *", AutoResolve: "@hourly", Report: "CRON_TZ=Europe/Berlin 0 6 * * *"}) {
		t.Errorf("schedules = %+v", c.Schedules)
	}
	if c.HTTP.Listen != ":9090" || c.ShutdownTimeout.String() != "2m" {
		t.Errorf("http.listen = %q, shutdown_timeout = %s", c.HTTP.Listen, c.ShutdownTimeout)
	}
	if s := c.Sources[0]; s.Schedule != "@every 30s" || s.StableWait.String() != "3s" {
		t.Errorf("source schedule = %q, stable_wait = %s", s.Schedule, s.StableWait)
	}

	t.Run("NamesABadScheduleByItsPath", func(t *testing.T) {
		t.Parallel()
		_, err := Load(strings.NewReader(strings.Replace(y, `"*/10 * * * *"`, `"*/10 * * *"`, 1)), env(nil))
		if err == nil || !strings.Contains(err.Error(), `schedules.lifecycle: "*/10 * * *" has 4 fields`) {
			t.Errorf("Load error = %v", err)
		}
	})
}
