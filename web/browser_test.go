package web_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// chromium finds Debian's Chromium (scripts/test installs it). Without it
// the browser test skips on a developer's machine and fails under CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium: the browser test needs Debian's chromium package (scripts/test installs it)")
	}
	t.Skip("no Chromium (apt-get install chromium); under CI=true this fails")
	return ""
}

// TestBrowser drives the pages in headless Chromium as ops would of a
// morning: sign in, the day's files, a file, its rejected rows, its result,
// and a retry of its rows rejected for an action the tracking export had
// not brought yet, once it has.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	// Secure cookies, as in production: Chromium keeps them over plain HTTP
	// from loopback, which it counts as a secure origin.
	_, b := setup(t, setupOpts{secure: true})
	shots := os.Getenv("SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	downloads := t.TempDir()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	// The browser starts on the test's context: a step's own, shorter one
	// would take it down when the step ends.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// Each step has 30 s; one that fails leaves a screenshot of where it stopped.
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(stepCtx, steps...); err != nil {
			if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				os.WriteFile(filepath.Join(shots, "failed.png"), png, 0o644)
			}
			body, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
			t.Fatalf("%s: %v\nthe page (screenshot %s):\n%s", what, err, filepath.Join(shots, "failed.png"), body)
		}
	}
	screenshot := func(name string, mustShow ...string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
		checkNotBlank(t, name, png)
		body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatalf("%s: read the page's text: %v", name, err)
		}
		for _, s := range mustShow {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the page does not show %q:\n%s", name, s, body)
			}
		}
	}

	// Signed out, the day view sends the browser to the sign-in form.
	step("open the day view",
		chromedp.Navigate(b.srv.URL+"/day"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	screenshot("01-sign-in", "Sign in")
	step("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), opsUser),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), passwordOf(opsUser)),
		chromedp.Click(chromedp.CSS(`section.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("files-total")))
	screenshot("02-day", "Files of", "acme_returns.csv", "Retouren_KW47.csv", "QUARANTINED", opsUser)

	// Drill into acme's returns.
	step("open acme's returns",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/files/%d"]`, b.acmeReturns))),
		chromedp.WaitVisible(chromedp.ID("file-status")))
	screenshot("03-file", "acme_returns.csv", "COMPLETED", "Rejected", "ACTION_LOCKED")

	// Only its rejected rows.
	step("filter the rejected rows",
		chromedp.SetValue(chromedp.ID("filter-outcome"), "REJECTED"),
		chromedp.Click(chromedp.ID("filter")))
	waitForLocation(t, ctx, "outcome=REJECTED")
	step("the filtered rows", chromedp.WaitVisible(chromedp.CSS(`table.rows`)))
	rejected, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`table.rows tbody tr.outcome-rejected`)))
	if err != nil {
		t.Fatal(err)
	}
	others, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.rows tbody tr:not(.outcome-rejected)").length`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 6 || others != 0 {
		t.Errorf("the rejected rows: %d shown, and %d others; want the file's 6 and no other", len(rejected), others)
	}
	screenshot("04-rejected-rows", "REJECTED", "ACTION_LOCKED", "CPC_NOT_REVERSIBLE")

	// The result file, as the brand got it.
	step("download the result file",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
			return err
		}),
		chromedp.Click(chromedp.ID("download-result")))
	want := filepath.Join(downloads, fmt.Sprintf("result_acme_returns_%d.csv", b.acmeReturns))
	result := waitForFile(t, want, 30*time.Second)
	for _, s := range []string{"Line", "Outcome", "ErrorCode", "ResultActionId", "ACTION_LOCKED", "APPLIED"} {
		if !bytes.Contains(result, []byte(s)) {
			t.Errorf("the downloaded result lacks %q:\n%s", s, result)
		}
	}

	// Row 10 named action 9999, which the tracking export had not brought
	// yet. It comes now; ops retry the file's rejected rows.
	b.processBytes(t, "acme", "late_actions.csv", []byte("ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency\n"+
		"9999,4242,1001,ORD-9999,2026-11-20T10:00:00Z,80.00,USD\n"), processors.Actions, outcome.Completed)
	step("open the file again", chromedp.Navigate(fmt.Sprintf("%s/files/%d", b.srv.URL, b.acmeReturns)),
		chromedp.WaitVisible(chromedp.ID("retry-rejected")))
	screenshot("05-before-retry", "Retry rejected rows")
	step("retry the rejected rows", chromedp.Click(chromedp.ID("retry-rejected")))
	waitForLocation(t, ctx, "/files/", func(loc string) bool { return !strings.HasSuffix(loc, fmt.Sprintf("/files/%d", b.acmeReturns)) })
	step("the retry's page", chromedp.WaitVisible(chromedp.ID("file-status")))
	screenshot("06-retry", "COMPLETED", "acme_returns_retry.csv", "Retry of the rejected rows of", "web:olga")
	applied, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`table.rows tbody tr.outcome-applied`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 1 {
		t.Errorf("the retry applied %d rows, want action 9999's", len(applied))
	}
	row, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`table.rows tbody tr.outcome-applied`)))
	if err != nil || !strings.Contains(row, "10") || !strings.Contains(row, "9999") {
		t.Errorf("the retried row: %q (%v); want line 10, action 9999", row, err)
	}
	// Asked for by name, in the audit log.
	trail, err := b.ledger.AuditTrail(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(trail, func(e ledger.AuditEntry) bool {
		return e.Action == ledger.AuditRetryRejected && e.Actor == "web:"+opsUser && e.FileID == b.acmeReturns
	}) {
		t.Errorf("no retry of file %d by web:%s in the audit log: %+v", b.acmeReturns, opsUser, trail)
	}
}

// waitForLocation waits until the page's URL has want in it (and passes
// every check) and the page is loaded.
func waitForLocation(t *testing.T, ctx context.Context, want string, checks ...func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var loc string
	for time.Now().Before(deadline) {
		var err error
		loc, err = chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, want) && !slices.ContainsFunc(checks, func(c func(string) bool) bool { return !c(loc) }) {
			if ready, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.readyState")); err == nil && ready == "complete" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the page did not move to a URL with %q: it is at %q", want, loc)
}

// checkNotBlank fails a screenshot that is not a PNG or that is all one color.
func checkNotBlank(t *testing.T, name string, data []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	bounds := img.Bounds()
	if bounds.Dx() < 100 || bounds.Dy() < 100 {
		t.Fatalf("screenshot %s is %v", name, bounds)
	}
	colors := map[[4]uint32]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, b, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, b, a}] = true
		}
	}
	if len(colors) < 3 {
		t.Errorf("screenshot %s is blank: %d colors", name, len(colors))
	}
}

// waitForFile waits for a download to be complete and returns its bytes.
func waitForFile(t *testing.T, path string, within time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return data
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("no download %s within %s; the folder holds %v", filepath.Base(path), within, names)
	return nil
}
