package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs `returnsd demo` as a person would: it must start its own
// PostgreSQL (never skipped: a machine without one fails, as CI must), tell
// the whole story, serve its endpoints while it runs, and on Ctrl-C stop
// with status 0 and remove what it made.
func TestDemo(t *testing.T) {
	t.Parallel()

	t.Run("ShowsEveryFileWithItsOutcomeAndStopsCleanlyOnCtrlC", func(t *testing.T) {
		t.Parallel()
		ctx, ctrlC := context.WithCancel(context.Background())
		defer ctrlC()
		stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
		exited := make(chan error, 1)
		go func() {
			// --no-install: a test never installs packages (scripts/test does, before).
			exited <- run(ctx, []string{"demo", "--no-install", "--wait", "3m"}, func(string) string { return "" }, strings.NewReader(""), stdout, stderr)
		}()
		select {
		case <-stdout.waitFor("running until Ctrl-C"):
		case err := <-exited:
			t.Fatalf("the demo ended before it ran: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		case <-time.After(4 * time.Minute):
			t.Fatalf("the demo did not tell its story within 4 minutes\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
		out := stdout.String()
		for _, want := range []string{
			"acme_returns.csv (acme, via acme-sftp): COMPLETED, 12 rows: 4 applied, 6 rejected, 2 duplicate",
			"acme_resolutions.csv (acme, via acme-sftp): COMPLETED, 6 rows: 4 applied, 1 rejected, 1 duplicate",
			"Retouren_KW47.csv (globex, via globex-drop): COMPLETED, 5 rows: 4 applied, 1 rejected, 0 duplicate",
			"Gutschriften_KW47.csv (globex, via globex-drop): QUARANTINED\n      UNKNOWN_KIND: the header",
			"ACME corrections wk47.csv (acme, via returns-inbox): COMPLETED, 4 rows: 3 applied, 1 rejected, 0 duplicate",
			"processed/acme_returns.csv",
			"failed/Gutschriften_KW47.csv",
			"To: <jane.doe@acme.example>",
			"acme    balance -22.10 USD (2 payouts, 22.10, wait for funds)",
			"globex  balance 0.00 EUR",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the story lacks %q", want)
			}
		}
		// The answers, under the names the sources give them.
		for _, want := range []string{
			`acme_returns.csv: \S+/sftp/acme/results/result_acme_returns\S*\.csv\n`,
			`Retouren_KW47.csv: \S+/drop/globex/results/result_Retouren_KW47\S*\.csv\n`,
			`Gutschriften_KW47.csv: \S+/drop/globex/results/receipt_Gutschriften_KW47\S*\.csv\n`,
			`attached: result_ACME corrections wk47\S*\.csv\n`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("the story lacks %s", want)
			}
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr)
		}

		metrics := regexp.MustCompile(`http://\S+/metrics`).FindString(out)
		if metrics == "" {
			t.Fatalf("no /metrics URL in the story:\n%s", out)
		}
		pages := regexp.MustCompile(`the ops pages: (http://\S+/) \(user demo, password \w+\)`).FindStringSubmatch(out)
		if pages == nil {
			t.Errorf("the story does not say how to sign in to the ops pages:\n%s", out)
		}
		for url, want := range map[string][]string{
			// Each file counted once, by the job that applied it.
			metrics: {`returnsd_files_total{status="COMPLETED"} 4`, `returnsd_files_total{status="QUARANTINED"} 1`,
				`returnsd_brand_negative_balance{brand="acme"} 1`, `returnsd_polls_total{source="returns-inbox"}`},
			strings.TrimSuffix(metrics, "/metrics") + "/readyz": {`"ready": true`},
			strings.TrimSuffix(metrics, "/metrics") + "/login":  {`name="password"`},
		} {
			body := httpGet(t, url)
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("%s lacks %q:\n%.2000s", url, w, body)
				}
			}
		}

		work := regexp.MustCompile(`in (\S+returnsd-demo-\S+)\n`).FindStringSubmatch(out)
		ctrlC()
		select {
		case err := <-exited:
			if code := exitCode(err, io.Discard); code != 0 {
				t.Errorf("Ctrl-C: exit status %d (%v); want 0", code, err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the demo did not stop within a minute of Ctrl-C")
		}
		if work == nil {
			t.Fatalf("the story does not say where its work folder is:\n%s", out)
		}
		if _, err := os.Stat(work[1]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the work folder %s is still there after the demo (%v)", work[1], err)
		}
	})

	t.Run("TakesNoConfig", func(t *testing.T) {
		t.Parallel()
		c := &cli{t: t, env: map[string]string{}}
		if o := c.run("--config", "x.yaml", "demo"); o.code != 2 || !strings.Contains(o.stderr, "takes no --config") {
			t.Errorf("exit %d, stderr %q", o.code, o.stderr)
		}
		if o := c.run("demo", "--wait", "0s"); o.code != 2 {
			t.Errorf("--wait 0s: exit %d, stderr %q", o.code, o.stderr)
		}
	})
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// lockedBuffer is what the demo writes, read by the test while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor returns a channel closed once the buffer holds s.
func (l *lockedBuffer) waitFor(s string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !strings.Contains(l.String(), s) {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return done
}
