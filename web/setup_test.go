package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"golang.org/x/crypto/bcrypt"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/sources"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/poller"
	"github.com/returnsd/returnsd/processors"
	"github.com/returnsd/returnsd/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The users every test has; each one's password is its name twice, padded.
const (
	opsUser   = "olga"   // ops
	acmeUser  = "anna"   // brand acme, read-only
	globexUsr = "gunter" // brand globex, read-only
)

func passwordOf(name string) string { return name + "-" + name + "-password" }

// testBundle is what a test of the pages has: the server, its ledger, and
// the files of both brands.
type testBundle struct {
	srv    *httptest.Server
	ledger *ledger.Ledger
	cfg    *config.Config
	files  *pipeline.Pipeline
	clock  *testClock
	dir    string
	// acme's returns (COMPLETED, some rows rejected), globex's (COMPLETED),
	// globex's credit notes (QUARANTINED).
	acmeReturns, globexReturns, globexQuarantined int64
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type setupOpts struct {
	secure bool       // Secure cookies (the test server is plain HTTP: cookies then only in the recorder)
	reruns web.Reruns // the controls; nil: none
}

// setup gives a test the pages on a ledger holding acme's and globex's
// fixture files, and the three users.
func setup(t testing.TB, opts ...setupOpts) (*web.Server, *testBundle) {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	// The example's brands, and a drop folder for each.
	yaml := string(returnsd.ExampleConfig) + fmt.Sprintf(`
sources:
  - {name: acme-drop, brand: acme, type: localdir, path: %[1]s/acme}
  - {name: globex-drop, brand: globex, type: localdir, path: %[1]s/globex, schedule: "*/10 * * * *"}
`, dir)
	cfg, err := config.Load(strings.NewReader(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.SpoolDir = filepath.Join(dir, "spool")
	cfg.Web.InsecureCookie = !o.secure
	l, err := ledger.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	b := &testBundle{ledger: l, cfg: cfg, dir: dir, clock: &testClock{now: time.Now()}}
	b.files = &pipeline.Pipeline{Ledger: l, SpoolDir: filepath.Join(dir, "spool"), RetryWait: 10 * time.Millisecond}
	b.process(t, "acme", "acme_actions.csv", processors.Actions, outcome.Completed)
	b.process(t, "globex", "globex_actions.csv", processors.Actions, outcome.Completed)
	b.acmeReturns = b.process(t, "acme", "acme_returns.csv", "", outcome.Completed)
	b.globexReturns = b.process(t, "globex", "Retouren_KW47.csv", "", outcome.Completed)
	b.globexQuarantined = b.process(t, "globex", "Gutschriften_KW47.csv", "", outcome.Quarantined)
	// globex's folder has failed to be listed: it is backed off.
	if _, err := l.RecordPollFailure(ctx, "globex-drop", b.clock.Now(), "open /drop/globex: no such file or directory",
		func(int) time.Duration { return time.Hour }); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordPollSuccess(ctx, "acme-drop", b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b.addUser(t, opsUser, ledger.RoleOps)
	b.addUser(t, acmeUser, ledger.RoleBrand, "acme")
	b.addUser(t, globexUsr, ledger.RoleBrand, "globex")

	reruns := o.reruns
	if reruns == nil {
		// The command line's way: applied and answered here and now.
		reruns = pollerReruns{&poller.Poller{Ledger: l, Files: b.files, Config: cfg,
			OpenSource: func(sc *config.Source) (ingest.Source, error) { return sources.Open(sc, &cfg.SMTP) }}}
	}
	jobs, err := river.NewClient(riverpgxv5.New(l.Pool()), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := web.New(web.Params{Config: cfg, Ledger: l, Files: b.files, Now: b.clock.Now, Jobs: jobs, Reruns: reruns,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	uiCtx, stopUI := context.WithCancel(ctx)
	if err := s.Start(uiCtx); err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		b.srv.Close()
		stopUI()
	})
	return s, b
}

// pollerReruns are the controls as the command line runs them (poller.Reprocess,
// poller.RetryRejected without the daemon's jobs).
type pollerReruns struct{ p *poller.Poller }

func (r pollerReruns) Reprocess(ctx context.Context, id int64, actor string) (int64, error) {
	rr, err := r.p.Reprocess(ctx, id, actor)
	return rr.File.ID, refusal(err)
}

func (r pollerReruns) RetryRejected(ctx context.Context, id int64, actor string) (int64, error) {
	rr, err := r.p.RetryRejected(ctx, id, actor)
	return rr.File.ID, refusal(err)
}

func refusal(err error) error {
	var refused *ledger.RefusedError
	if errors.As(err, &refused) {
		return &web.Refused{Reason: err}
	}
	return err
}

// testWriter sends the pages' log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// process takes a fixture file through the pipeline as brand's, and checks how it ended.
func (b *testBundle) process(t testing.TB, brand, name string, kind processors.Kind, want outcome.FileStatus) int64 {
	t.Helper()
	data, err := returnsd.Fixtures.ReadFile("fixtures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b.processBytes(t, brand, name, data, kind, want)
}

func (b *testBundle) processBytes(t testing.TB, brand, name string, data []byte, kind processors.Kind, want outcome.FileStatus) int64 {
	t.Helper()
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := b.cfg.Brand(brand)
	if err != nil {
		t.Fatal(err)
	}
	format := pipeline.Format(cb)
	if kind == processors.Actions {
		format = pipeline.ExportFormat(cb)
	}
	res, err := b.files.Process(context.Background(), pipeline.Params{Brand: brand, Format: format, Source: brand + "-drop",
		Actor: "test", Path: path, Kind: kind})
	if err != nil || res.Status != want {
		t.Fatalf("process %s: %+v, %v; want %s", name, res, err, want)
	}
	return res.FileID
}

// addUser adds a user at bcrypt's lowest cost: the tests sign in often.
func (b *testBundle) addUser(t testing.TB, name string, role ledger.WebRole, brands ...string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(passwordOf(name)), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ledger.AddWebUser(context.Background(), ledger.AddWebUserParams{Name: name, Role: role,
		Brands: brands, PasswordHash: string(hash), Actor: "test"}); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with its own cookies, as one browser tab.
type browser struct {
	t      testing.TB
	b      *testBundle
	client *http.Client
}

func (b *testBundle) anonymous(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, b: b, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// signedIn is a browser signed in as name.
func (b *testBundle) signedIn(t testing.TB, name string) *browser {
	t.Helper()
	br := b.anonymous(t)
	res := br.signIn(name, passwordOf(name))
	if res.code != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d\n%s", name, res.code, res.body)
	}
	return br
}

// page is an answer: its status, headers and body.
type page struct {
	code   int
	header http.Header
	body   string
}

func (br *browser) do(req *http.Request) page {
	br.t.Helper()
	res, err := br.client.Do(req)
	if err != nil {
		br.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		br.t.Fatal(err)
	}
	return page{code: res.StatusCode, header: res.Header, body: string(body)}
}

func (br *browser) get(path string) page {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodGet, br.b.srv.URL+path, nil)
	if err != nil {
		br.t.Fatal(err)
	}
	return br.do(req)
}

// post posts a form as a browser does from these pages (same origin).
func (br *browser) post(path string, form url.Values, headers ...string) page {
	br.t.Helper()
	req, err := http.NewRequest(http.MethodPost, br.b.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		br.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", br.b.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return br.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token the forms of a page carry.
func (br *browser) csrf(path string) string {
	br.t.Helper()
	p := br.get(path)
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		br.t.Fatalf("GET %s: no csrf field in\n%s", path, p.body)
	}
	return m[1]
}

func (br *browser) signIn(name, password string) page {
	br.t.Helper()
	token := br.csrf("/login")
	return br.post("/login", url.Values{"csrf": {token}, "name": {name}, "password": {password}})
}
