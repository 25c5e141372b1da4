package main

// ---- Ops pages phase (issue 11) ---------------------------------------------
//
// benchWeb times two pages of the ops pages (web/) through the real HTTP
// handler, signed in as an ops user, over a ledger built in SQL
// (generate_series), not by applying files: the apply is measured above.
//
//   - the day view of a day with 1,000 files and 5,000,000 rows (target < 300 ms);
//   - page 500 of the rows of a 1,000,000-row file, one of that day's (target
//     < 100 ms), with the first and last pages and a filtered page beside it.
//
// Each is the median of several runs after two warm-up runs (the caches as ops
// would find them on a second look). Run it alone with `go run ./internal/bench -web-only`.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	root "github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/web"
)

const (
	webFiles    = 1000
	webRows     = 5_000_000
	webBigFile  = 1_000_000
	webDay      = "2026-11-24"
	webPage     = 500 // of the big file's rows, 100 a page
	webRuns     = 11
	webPassword = "bench-ops-password"
)

func benchWeb(ctx context.Context) error {
	srv, err := pgtest.Start(ctx, "shared_buffers=2GB", "effective_cache_size=12GB", "max_wal_size=16GB", "autovacuum=off")
	if err != nil {
		return err
	}
	defer srv.Stop()
	cfg, err := config.Load(bytes.NewReader(root.ExampleConfig), func(string) string { return "" })
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "returnsd-bench-web-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.SpoolDir = dir
	cfg.Web.InsecureCookie = true // httptest serves plain HTTP
	l, err := ledger.Open(ctx, srv.URL, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Migrate(ctx); err != nil {
		return err
	}
	if err := l.SyncBrands(ctx, ledger.BrandsFromConfig(cfg)); err != nil {
		return err
	}
	start := time.Now()
	big, err := generateDay(ctx, l)
	if err != nil {
		return fmt.Errorf("generate the day: %w", err)
	}
	fmt.Printf("web: generated %d files with %d rows on %s (file %d has %d) in %s\n", webFiles, webRows, webDay, big,
		webBigFile, time.Since(start).Round(time.Second))
	hash, err := bcrypt.GenerateFromPassword([]byte(webPassword), bcrypt.MinCost)
	if err != nil {
		return err
	}
	if err := l.AddWebUser(ctx, ledger.AddWebUserParams{Name: "bench", Role: ledger.RoleOps, PasswordHash: string(hash), Actor: "bench"}); err != nil {
		return err
	}
	pages, err := web.New(web.Params{Config: cfg, Ledger: l, Files: &pipeline.Pipeline{Ledger: l, SpoolDir: filepath.Join(dir, "spool")}})
	if err != nil {
		return err
	}
	ts := httptest.NewServer(pages.Handler())
	defer ts.Close()
	client, err := signIn(ts.URL, "bench", webPassword)
	if err != nil {
		return err
	}

	// The report of the day (report.Build), and the day's files listed after it.
	day, err := timePage(client, ts.URL+"/day?date="+webDay, "Daily report", "1,000", fmt.Sprintf(">%d<", webFiles))
	if err != nil {
		return err
	}
	after := 1 + (webPage-1)*100 // lines start at 2, the header being line 1
	page500, err := timePage(client, fmt.Sprintf("%s/files/%d?after=%d", ts.URL, big, after), fmt.Sprintf(">%d<", after+100))
	if err != nil {
		return err
	}
	first, err := timePage(client, fmt.Sprintf("%s/files/%d", ts.URL, big), ">101<")
	if err != nil {
		return err
	}
	last, err := timePage(client, fmt.Sprintf("%s/files/%d?before=%d", ts.URL, big, webBigFile+2), fmt.Sprintf(">%d<", webBigFile+1))
	if err != nil {
		return err
	}
	rejected, err := timePage(client, fmt.Sprintf("%s/files/%d?outcome=REJECTED&after=%d", ts.URL, big, webBigFile/2), "REJECTED")
	if err != nil {
		return err
	}
	code, err := timePage(client, fmt.Sprintf("%s/files/%d?code=ACTION_LOCKED&after=%d", ts.URL, big, webBigFile/2), "ACTION_LOCKED")
	if err != nil {
		return err
	}
	fmt.Printf("web: day view of %s, %d files and %d rows: %s median of %d (target < 300 ms)\n", webDay, webFiles, webRows,
		ms(day), webRuns)
	fmt.Printf("web: page %d of a %d-row file's rows: %s median of %d (target < 100 ms)\n", webPage, webBigFile, ms(page500), webRuns)
	fmt.Printf("web:   beside it: its first page %s, its last page %s, its rejected rows from the middle %s, one code's rows from the middle %s\n",
		ms(first), ms(last), ms(rejected), ms(code))
	if day >= 300*time.Millisecond || page500 >= 100*time.Millisecond {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// generateDay writes the day: 1,000 COMPLETED files of acme and globex
// received through it, the first with 1,000,000 rows, the rest sharing
// 4,000,000; each row applied (an event: 80%), rejected (15%) or a
// duplicate (5%), as an apply leaves them, with their tallies. It returns
// the big file's id.
func generateDay(ctx context.Context, l *ledger.Ledger) (int64, error) {
	perFile := (webRows - webBigFile) / (webFiles - 1)
	lastFile := webRows - webBigFile - perFile*(webFiles-2)
	_, err := l.Pool().Exec(ctx, `INSERT INTO received_files (brand_id, source, name, kind, size, sha256, status, bytes_kept,
			received_at, finished_at, rows_total)
		SELECT b.id, b.slug || '-drop', 'returns_' || g || '.csv', 'action-updates', 40 * n, sha256(g::text::bytea),
			'COMPLETED', false, at, at + interval '3 seconds', n
		FROM generate_series(1, $1::int) g
		CROSS JOIN LATERAL (SELECT CASE g WHEN 1 THEN $2::int WHEN $1::int THEN $4::int ELSE $3::int END AS n,
			($5::date)::timestamp AT TIME ZONE 'UTC' + (g - 1) * interval '86 seconds' AS at) x
		JOIN brands b ON b.slug = CASE WHEN g % 3 = 0 THEN 'globex' ELSE 'acme' END`,
		webFiles, webBigFile, perFile, lastFile, webDay)
	if err != nil {
		return 0, err
	}
	for _, q := range []string{
		`INSERT INTO ledger_events (brand_id, action_id, kind, actor, file_id, line, reason,
				old_state, new_state, old_amount, new_amount, old_payout, new_payout)
			SELECT f.brand_id, 1 + l % 1000000, 'REVERSE', 'source:bench', f.id, l, 'ITEM_RETURNED',
				'PENDING', 'REVERSED', 49.90, 0, 4.24, 0
			FROM received_files f CROSS JOIN LATERAL generate_series(2, f.rows_total + 1) l
			WHERE l % 20 < 16 ORDER BY f.id, l`,
		`INSERT INTO file_rows (file_id, line, outcome, code, message, action_id, operation)
			SELECT f.id, l, CASE WHEN l % 20 = 19 THEN 'DUPLICATE_ROW' ELSE 'REJECTED' END,
				CASE l % 20 WHEN 16 THEN 'ACTION_NOT_FOUND' WHEN 17 THEN 'ACTION_LOCKED' WHEN 18 THEN 'INVALID_AMOUNT'
					ELSE 'DUPLICATE_OPERATION' END,
				'a message a brand can act on', CASE WHEN l % 20 = 17 THEN 1 + l % 1000000 END, 'REVERSE'
			FROM received_files f CROSS JOIN LATERAL generate_series(2, f.rows_total + 1) l
			WHERE l % 20 >= 16 ORDER BY f.id, l`,
		`UPDATE received_files f SET rows_applied = c.applied, rows_rejected = c.rejected, rows_duplicate = c.duplicate
			FROM (SELECT file_id, count(*) FILTER (WHERE outcome = 'APPLIED') AS applied,
					count(*) FILTER (WHERE outcome = 'REJECTED') AS rejected,
					count(*) FILTER (WHERE outcome = 'DUPLICATE_ROW') AS duplicate
				FROM row_outcomes GROUP BY file_id) c
			WHERE c.file_id = f.id`,
		// What an apply writes with the COMPLETED mark (ledger.tallyFile):
		// the report sums these, not the day's rows.
		`INSERT INTO file_tallies (file_id, outcome, code, operation, rows, sale_amount_change, payout_change)
			SELECT file_id, outcome, coalesce(code, ''), coalesce(operation, ''), count(*),
				coalesce(sum(new_amount - coalesce(old_amount, 0)), 0), coalesce(sum(new_payout - coalesce(old_payout, 0)), 0)
			FROM row_outcomes GROUP BY 1, 2, 3, 4`,
		`VACUUM ANALYZE`,
	} {
		if _, err := l.Pool().Exec(ctx, q); err != nil {
			return 0, err
		}
	}
	var big int64
	err = l.Pool().QueryRow(ctx, `SELECT id FROM received_files WHERE rows_total = $1`, webBigFile).Scan(&big)
	return big, err
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in as a browser does and returns the client with its session.
func signIn(base, name, password string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(base + "/login")
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("the sign-in page has no form token")
	}
	form := url.Values{"csrf": {string(m[1])}, "name": {name}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = c.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("sign in: %s", res.Status)
	}
	return c, nil
}

// timePage GETs a page two times to warm up, then webRuns times, checking
// each answer is a 200 showing everything in want, and returns the median
// time to the last byte.
func timePage(c *http.Client, u string, want ...string) (time.Duration, error) {
	var times []time.Duration
	for i := range webRuns + 2 {
		start := time.Now()
		res, err := c.Get(u)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		for _, w := range want {
			if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(w)) {
				return 0, fmt.Errorf("GET %s: %s, and the page does not show %q:\n%.2000s", u, res.Status, w, body)
			}
		}
		if i >= 2 {
			times = append(times, took)
		}
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
