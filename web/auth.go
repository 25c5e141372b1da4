package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/returnsd/returnsd/ledger"
)

// PasswordCost is bcrypt's work factor for new passwords: about a quarter of
// a second on a server core, so a stolen hash costs a guesser as much.
const PasswordCost = 12

// MinPasswordLength is the shortest password HashPassword takes; bcrypt reads
// at most 72 bytes, so longer ones are refused rather than cut silently.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 72
)

// HashPassword hashes a new password with bcrypt at cost (PasswordCost when 0).
func HashPassword(password string, cost int) (string, error) {
	switch {
	case len(password) < MinPasswordLength:
		return "", fmt.Errorf("the password is shorter than %d characters", MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return "", fmt.Errorf("the password is longer than %d bytes, which bcrypt does not read", MaxPasswordLength)
	}
	if cost == 0 {
		cost = PasswordCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	return string(h), nil
}

// noSuchUserHash is compared against when the name is unknown, so a wrong
// name takes as long to refuse as a wrong password. It is the hash, at
// PasswordCost, of a random password nobody kept.
const noSuchUserHash = "$2a$12$UxFTXdedX9UA52yxodM3QeYk1dMYtM9ZTJivbSAsMv2xzHKODOHLu"

// Cookie names. With Secure cookies the session's carries the __Host- prefix:
// a browser then takes it only from this origin over HTTPS, for the path /.
const (
	sessionCookie = "returnsd_session"
	loginCookie   = "returnsd_login" // the sign-in form's CSRF token, before there is a session
)

func (s *Server) cookieName(name string) string {
	if s.secure {
		return "__Host-" + name
	}
	return name
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	c := &http.Cookie{Name: s.cookieName(name), Value: value, Path: "/", Secure: s.secure, HttpOnly: true,
		SameSite: http.SameSiteLaxMode}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

func (s *Server) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(name))
	if err != nil {
		return ""
	}
	return c.Value
}

// newToken is 32 random bytes, base64url.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// csrfToken is the token a session's forms post: an HMAC of the session's
// own token, so it needs no storage, differs per session, and tells nothing
// of the session token (which only the HttpOnly cookie carries).
func csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("returnsd csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session is the signed-in user of a request.
type session struct {
	user  ledger.WebUser
	token string
	csrf  string
}

type ctxKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

// requireSession lets a request through only with a live session; others are
// sent to the sign-in page (and the page they asked for is opened after it).
// Every unsafe request must carry the session's CSRF token too.
func (s *Server) requireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := s.cookie(r, sessionCookie)
		var u ledger.WebUser
		err := ledger.ErrNoWebSession
		if token != "" {
			u, err = s.ledger.WebSession(r.Context(), tokenHash(token), s.now())
		}
		if errors.Is(err, ledger.ErrNoWebSession) {
			if token != "" {
				s.setCookie(w, sessionCookie, "", time.Time{})
			}
			next := "/login"
			if r.Method == http.MethodGet && r.URL.Path != "/" {
				next += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		sess := &session{user: u, token: token, csrf: csrfToken(token)}
		if !safeMethod(r.Method) && !isJobsAPI(r) && !s.validCSRF(r, sess) {
			s.fail(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)), http.StatusForbidden,
				"This form has expired or did not come from these pages; nothing was changed. Reload the page and try again.")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// validCSRF checks the form's token against the session's, in constant time.
func (s *Server) validCSRF(r *http.Request, sess *session) bool {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<16)
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

// opsOnly hides a handler from brand users: for them it does not exist.
func (s *Server) opsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sessionOf(r).user.Role != ledger.RoleOps {
			s.notFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type loginPage struct {
	CSRF    string
	Next    string
	Name    string
	Message string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, r, http.StatusOK, r.URL.Query().Get("next"), "", "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, next, name, msg string) {
	// The browser's token is kept if it has one: a second tab, or a request
	// sent to this page (a favicon's, say), must not void the form it shows.
	token := s.cookie(r, loginCookie)
	if len(token) != len(newToken()) {
		token = newToken()
	}
	s.setCookie(w, loginCookie, token, s.now().Add(time.Hour))
	s.render(w, r, code, "login", loginPage{CSRF: token, Next: localPath(next), Name: name, Message: msg})
}

// localPath keeps a redirect on these pages: a path of this site, or /day.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/day"
	}
	return next
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<14)
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("name")))
	password := r.PostFormValue("password")
	next := r.PostFormValue("next")
	form, cookie := r.PostFormValue("csrf"), s.cookie(r, loginCookie)
	if form == "" || cookie == "" || subtle.ConstantTimeCompare([]byte(form), []byte(cookie)) != 1 {
		s.showLogin(w, r, http.StatusForbidden, next, name,
			"The sign-in form had expired (or cookies are off). Try again.")
		return
	}
	addr, now := remoteAddr(r), s.now()
	if until, throttled, err := s.ledger.LoginThrottled(r.Context(), name, addr, now, s.throttle); err != nil {
		s.serverError(w, r, err)
		return
	} else if throttled {
		w.Header().Set("Retry-After", fmt.Sprint(int(until.Sub(now).Seconds())+1))
		s.showLogin(w, r, http.StatusTooManyRequests, next, name,
			"Too many failed sign-ins. Try again after "+until.In(s.zone).Format("15:04 MST")+".")
		return
	}
	u, hash, err := s.ledger.WebUserForLogin(r.Context(), name)
	switch {
	case errors.Is(err, ledger.ErrNoWebUser):
		bcrypt.CompareHashAndPassword([]byte(noSuchUserHash), []byte(password))
	case err != nil:
		s.serverError(w, r, err)
		return
	}
	if err != nil || bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		if err := s.ledger.RecordLoginFailure(r.Context(), name, addr, now, s.throttle.Window); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.log.WarnContext(r.Context(), "failed sign-in", "user", name, "remote_addr", addr)
		s.showLogin(w, r, http.StatusUnauthorized, next, name, "That name and password do not match.")
		return
	}
	token := newToken()
	expires := now.Add(s.lifetime)
	if err := s.ledger.CreateWebSession(r.Context(), ledger.WebSessionParams{TokenHash: tokenHash(token), User: u,
		At: now, ExpiresAt: expires, RemoteAddr: addr}); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setCookie(w, loginCookie, "", time.Time{})
	s.setCookie(w, sessionCookie, token, expires)
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	if err := s.ledger.EndWebSession(r.Context(), tokenHash(sess.token), sess.user.Name, remoteAddr(r)); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setCookie(w, sessionCookie, "", time.Time{})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// audit records what the signed-in user did; a failure to record is logged
// and fails the request, so no action goes unrecorded.
func (s *Server) audit(r *http.Request, e ledger.AuditEntry) error {
	e.Actor = "web:" + sessionOf(r).user.Name
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	e.Detail["remote_addr"] = remoteAddr(r)
	return s.ledger.Audit(r.Context(), e)
}
