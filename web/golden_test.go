package web_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden pages in testdata/")

// normalize takes out of a page what changes from run to run: times, the
// day, durations, form tokens.
var normalize = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC`), "TIME"},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}`), "DAY"},
	{regexp.MustCompile(`DAY \d{2}:\d{2}`), "DAY HH:MM"}, // the report's times
	{regexp.MustCompile(`>\d{2}-\d{2}<`), ">MM-DD<"},     // the report's trend's days
	{regexp.MustCompile(`<dt>Took</dt><dd>[^<]*</dd>`), "<dt>Took</dt><dd>DURATION</dd>"},
	{regexp.MustCompile(`name="csrf" value="[^"]+"`), `name="csrf" value="TOKEN"`},
}

// TestGoldenPages compares whole pages with testdata/*.html: what ops see,
// byte for byte, but for what normalize takes out. go test -run
// TestGoldenPages -update rewrites them.
func TestGoldenPages(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	olga := b.signedIn(t, opsUser)
	anna := b.signedIn(t, acmeUser)
	for name, get := range map[string]func() page{
		"login":             func() page { return b.anonymous(t).get("/login") },
		"day":               func() page { return olga.get("/day") },
		"day-brand-user":    func() page { return anna.get("/day") },
		"file":              func() page { return olga.get(fmt.Sprintf("/files/%d", b.acmeReturns)) },
		"file-rejected":     func() page { return olga.get(fmt.Sprintf("/files/%d?outcome=REJECTED", b.acmeReturns)) },
		"file-quarantined":  func() page { return olga.get(fmt.Sprintf("/files/%d", b.globexQuarantined)) },
		"brands":            func() page { return olga.get("/brands") },
		"not-found":         func() page { return anna.get(fmt.Sprintf("/files/%d", b.globexReturns)) },
		"inquiries-filters": func() page { return olga.get("/inquiries?status=OPEN&brand=acme") },
	} {
		t.Run(name, func(t *testing.T) {
			got := get().body
			for _, n := range normalize {
				got = n.re.ReplaceAllString(got, n.with)
			}
			path := filepath.Join("testdata", name+".html")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestGoldenPages -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (go test -run TestGoldenPages -update rewrites it); got:\n%s", name, path, got)
			}
		})
	}
}
