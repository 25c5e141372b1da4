package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuthorization(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()

	t.Run("AnonymousRequestsAreSentToSignIn", func(t *testing.T) {
		anon := b.anonymous(t)
		for _, path := range b.everyURL(b.globexReturns) {
			p := anon.get(path)
			if p.code != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
				t.Errorf("GET %s anonymously: %d, Location %q; want a redirect to /login", path, p.code, p.header.Get("Location"))
			}
			if strings.Contains(p.body, "Retouren") || strings.Contains(p.body, "Globex") {
				t.Errorf("GET %s anonymously shows the file:\n%s", path, p.body)
			}
		}
		if p := anon.post("/logout", url.Values{}); p.code != http.StatusSeeOther || p.header.Get("Location") != "/login" {
			t.Errorf("POST /logout anonymously: %d %q", p.code, p.header.Get("Location"))
		}
		// The sign-in page keeps where the user was going, on this site only.
		p := anon.get("/files/1?outcome=REJECTED")
		if loc := p.header.Get("Location"); loc != "/login?next="+url.QueryEscape("/files/1?outcome=REJECTED") {
			t.Errorf("Location %q", loc)
		}
		if login := anon.get("/login?next=//evil.example/x"); !strings.Contains(login.body, `name="next" value="/day"`) {
			t.Errorf("the sign-in page keeps a next that leaves the site:\n%s", login.body)
		}
	})

	t.Run("OperationalEndpointsAreNotThePages", func(t *testing.T) {
		// /healthz, /readyz and /metrics are the daemon's, mounted beside the
		// pages (daemon/http.go); here, under the pages, they are pages like any.
		if p := b.anonymous(t).get("/metrics"); p.code != http.StatusSeeOther {
			t.Errorf("GET /metrics on the pages alone: %d", p.code)
		}
	})

	t.Run("ABrandUserSeesNothingOfAnotherBrand", func(t *testing.T) {
		anna := b.signedIn(t, acmeUser)
		// Every URL of globex's files, tried by hand: a 404, the same as for a
		// file that does not exist, and nothing of the file in the answer.
		for _, id := range []int64{b.globexReturns, b.globexQuarantined} {
			for _, path := range b.fileURLs(id) {
				p := anna.get(path)
				if p.code != http.StatusNotFound {
					t.Errorf("anna GET %s: %d; want 404", path, p.code)
				}
				for _, leak := range []string{"Retouren", "Gutschriften", "Globex", "UNKNOWN_KIND"} {
					if strings.Contains(p.body, leak) {
						t.Errorf("anna GET %s shows %q:\n%s", path, leak, p.body)
					}
				}
			}
		}
		missing := anna.get("/files/999999")
		if missing.code != http.StatusNotFound {
			t.Errorf("a file that does not exist: %d", missing.code)
		}
		if other := anna.get(fmt.Sprintf("/files/%d", b.globexReturns)); other.body != missing.body {
			t.Errorf("another brand's file answers unlike a missing one:\n%s\nvs\n%s", other.body, missing.body)
		}
		// The brand's page, its report (the day view), its inquiries and sources.
		for _, path := range []string{"/brands/globex", "/day?brand=globex"} {
			if p := anna.get(path); p.code != http.StatusNotFound {
				t.Errorf("anna GET %s: %d", path, p.code)
			}
		}
		for _, path := range []string{"/day", "/brands", "/inquiries", "/inquiries?brand=globex",
			"/inquiries?status=OPEN", "/sources"} {
			p := anna.get(path)
			if p.code != http.StatusOK {
				t.Errorf("anna GET %s: %d", path, p.code)
			}
			for _, leak := range []string{"Retouren", "Gutschriften", "Globex Versand", "/brands/globex", "globex-"} {
				if strings.Contains(p.body, leak) {
					t.Errorf("anna GET %s shows %q", path, leak)
				}
			}
		}
		// Her own brand she sees.
		if p := anna.get("/day"); !strings.Contains(p.body, "acme_returns.csv") {
			t.Errorf("anna's day view lacks acme's file:\n%s", p.body)
		}
		for _, path := range b.fileURLs(b.acmeReturns) {
			if p := anna.get(path); p.code != http.StatusOK {
				t.Errorf("anna GET %s: %d", path, p.code)
			}
		}
		// The job queue is ops' only: for her it does not exist.
		for _, path := range []string{"/jobs/", "/jobs/api/jobs?state=available", "/jobs/queues"} {
			if p := anna.get(path); p.code != http.StatusNotFound {
				t.Errorf("anna GET %s: %d", path, p.code)
			}
		}
	})

	t.Run("OpsSeesEveryBrandAndTheJobQueue", func(t *testing.T) {
		olga := b.signedIn(t, opsUser)
		for _, id := range []int64{b.acmeReturns, b.globexReturns, b.globexQuarantined} {
			for _, path := range b.fileURLs(id) {
				if p := olga.get(path); p.code != http.StatusOK {
					t.Errorf("olga GET %s: %d", path, p.code)
				}
			}
		}
		if p := olga.get("/jobs/"); p.code != http.StatusOK || !strings.Contains(p.body, "<script") {
			t.Errorf("olga GET /jobs/: %d\n%s", p.code, p.body)
		}
		if p := olga.get("/jobs/api/jobs?state=available"); p.code != http.StatusOK {
			t.Errorf("olga GET the job queue's API: %d\n%s", p.code, p.body)
		}
	})

	t.Run("AFormWithoutItsTokenChangesNothing", func(t *testing.T) {
		olga := b.signedIn(t, opsUser)
		other := b.signedIn(t, opsUser)
		otherToken := other.csrf("/day")
		token := olga.csrf("/day")
		if token == otherToken {
			t.Fatal("two sessions have one CSRF token")
		}
		for name, form := range map[string]url.Values{
			"none":          {},
			"empty":         {"csrf": {""}},
			"another's":     {"csrf": {otherToken}},
			"made up":       {"csrf": {strings.Repeat("A", len(token))}},
			"in the query?": {},
		} {
			path := "/logout"
			if name == "in the query?" {
				path += "?csrf=" + url.QueryEscape(token)
			}
			if p := olga.post(path, form); p.code != http.StatusForbidden {
				t.Errorf("sign-out with %s token: %d; want 403", name, p.code)
			}
			if p := olga.get("/day"); p.code != http.StatusOK {
				t.Fatalf("sign-out with %s token ended the session: %d", name, p.code)
			}
		}
		// From another site, even with the right token.
		p := olga.post("/logout", url.Values{"csrf": {token}}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if p.code != http.StatusForbidden {
			t.Errorf("a cross-site sign-out: %d", p.code)
		}
		if p := olga.get("/day"); p.code != http.StatusOK {
			t.Fatalf("a cross-site post ended the session: %d", p.code)
		}
		// The job queue's controls: JSON only, and not from another site.
		req := httptest.NewRequest(http.MethodPost, b.srv.URL+"/jobs/api/jobs/cancel", strings.NewReader(`{"ids":["1"]}`))
		req.RequestURI = ""
		req.Header.Set("Content-Type", "text/plain")
		if p := olga.do(req); p.code != http.StatusUnsupportedMediaType {
			t.Errorf("a job cancel posted as text: %d", p.code)
		}
		req = httptest.NewRequest(http.MethodPost, b.srv.URL+"/jobs/api/jobs/cancel", strings.NewReader(`{"ids":["1"]}`))
		req.RequestURI = ""
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if p := olga.do(req); p.code != http.StatusForbidden {
			t.Errorf("a cross-site job cancel: %d", p.code)
		}
	})

	t.Run("TheSignInFormNeedsItsTokenToo", func(t *testing.T) {
		anon := b.anonymous(t)
		p := anon.post("/login", url.Values{"name": {opsUser}, "password": {passwordOf(opsUser)}})
		if p.code != http.StatusForbidden {
			t.Errorf("a sign-in without the form's token: %d", p.code)
		}
	})

	t.Run("SignOutEndsTheSessionOnTheServer", func(t *testing.T) {
		olga := b.signedIn(t, opsUser)
		stolen := olga.client.Jar.Cookies(mustURL(t, b.srv.URL))
		if p := olga.post("/logout", url.Values{"csrf": {olga.csrf("/day")}}); p.code != http.StatusSeeOther {
			t.Fatalf("sign out: %d\n%s", p.code, p.body)
		}
		// The cookie, kept by someone: no longer a session.
		thief := b.anonymous(t)
		thief.client.Jar.SetCookies(mustURL(t, b.srv.URL), stolen)
		if p := thief.get("/day"); p.code != http.StatusSeeOther {
			t.Errorf("the signed-out session's cookie still opens the pages: %d", p.code)
		}
	})

	t.Run("SessionsExpire", func(t *testing.T) {
		_, b := setup(t)
		olga := b.signedIn(t, opsUser)
		b.clock.Advance(11 * time.Hour)
		if p := olga.get("/day"); p.code != http.StatusOK {
			t.Fatalf("a session 11 hours old: %d", p.code)
		}
		b.clock.Advance(time.Hour + time.Second)
		if p := olga.get("/day"); p.code != http.StatusSeeOther {
			t.Errorf("a session past its 12 hours: %d", p.code)
		}
	})

	t.Run("PasswordGuessingIsThrottled", func(t *testing.T) {
		_, b := setup(t)
		guesser := b.anonymous(t)
		for i := range 5 {
			if p := guesser.signIn(acmeUser, fmt.Sprintf("wrong-password-%d", i)); p.code != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d", i, p.code)
			}
		}
		// Now even the right password is refused unheard, until the window passes.
		p := guesser.signIn(acmeUser, passwordOf(acmeUser))
		if p.code != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Errorf("the sixth try: %d, Retry-After %q", p.code, p.header.Get("Retry-After"))
		}
		// Other users are not locked out by it.
		if p := b.anonymous(t).signIn(opsUser, passwordOf(opsUser)); p.code != http.StatusSeeOther {
			t.Errorf("another user after anna's throttle: %d", p.code)
		}
		b.clock.Advance(15*time.Minute + time.Second)
		if p := guesser.signIn(acmeUser, passwordOf(acmeUser)); p.code != http.StatusSeeOther {
			t.Errorf("after the window: %d", p.code)
		}
		// An unknown name is refused like a wrong password.
		if p := b.anonymous(t).signIn("nobody", "some-password-12"); p.code != http.StatusUnauthorized ||
			!strings.Contains(p.body, "do not match") {
			t.Errorf("an unknown name: %d", p.code)
		}
	})

	t.Run("ActionsAreAuditedByName", func(t *testing.T) {
		anna := b.signedIn(t, acmeUser)
		anna.get(fmt.Sprintf("/files/%d/result", b.acmeReturns))
		anna.get(fmt.Sprintf("/files/%d/original", b.acmeReturns))
		trail, err := b.ledger.AuditTrail(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"web.sign_in": false, "web.download_result": false, "web.download_original": false}
		for _, e := range trail {
			if e.Actor == "web:"+acmeUser {
				if _, ok := want[e.Action]; ok {
					want[e.Action] = true
				}
			}
			if e.Actor == "web:"+acmeUser && e.FileID != 0 && e.FileID != b.acmeReturns {
				t.Errorf("anna's trail names file %d", e.FileID)
			}
		}
		for action, seen := range want {
			if !seen {
				t.Errorf("no %s by web:anna in the audit trail: %+v", action, trail)
			}
		}
		// The trail cannot be rewritten.
		if _, err := b.ledger.Pool().Exec(ctx, "DELETE FROM audit_log"); err == nil {
			t.Error("the audit trail could be deleted")
		}
	})
}

func TestCookies(t *testing.T) {
	t.Parallel()
	s, b := setup(t, setupOpts{secure: true})
	// Over plain HTTP a browser would drop a Secure cookie: look at the headers.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
	login := rec.Result().Cookies()
	if len(login) != 1 {
		t.Fatalf("cookies of the sign-in page: %v", login)
	}
	token := csrfField.FindStringSubmatch(rec.Body.String())[1]
	form := url.Values{"csrf": {token}, "name": {opsUser}, "password": {passwordOf(opsUser)}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(login[0])
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign in: %d\n%s", rec.Code, rec.Body)
	}
	var session *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-returnsd_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("no __Host-returnsd_session cookie: %v", rec.Header()["Set-Cookie"])
	}
	if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" ||
		session.Domain != "" || len(session.Value) < 40 {
		t.Errorf("session cookie %+v", session)
	}
	// Only the token's hash is kept.
	var n int
	if err := b.ledger.Pool().QueryRow(context.Background(),
		"SELECT count(*) FROM web_sessions WHERE token_hash = convert_to($1, 'UTF8')", session.Value).Scan(&n); err != nil || n != 0 {
		t.Errorf("the session token is stored as it is: %d, %v", n, err)
	}
}

// fileURLs are every URL of a file: its page, a filtered page of its rows, its downloads.
func (b *testBundle) fileURLs(id int64) []string {
	return []string{
		fmt.Sprintf("/files/%d", id),
		fmt.Sprintf("/files/%d?outcome=REJECTED", id),
		fmt.Sprintf("/files/%d?outcome=APPLIED&after=1", id),
		fmt.Sprintf("/files/%d?code=ACTION_NOT_FOUND", id),
		fmt.Sprintf("/files/%d/original", id),
		fmt.Sprintf("/files/%d/result", id),
	}
}

// everyURL are the pages, and a file's URLs.
func (b *testBundle) everyURL(file int64) []string {
	return append([]string{"/", "/day", "/brands", "/brands/globex", "/inquiries", "/sources", "/jobs/",
		"/no/such/page"}, b.fileURLs(file)...)
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
