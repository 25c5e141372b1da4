package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/returnsd/returnsd/internal/safetext"
)

// WebRole is what a user of the ops pages may see and do.
type WebRole string

const (
	// RoleOps sees every brand and may act (reprocess, retry, the job queue).
	RoleOps WebRole = "ops"
	// RoleBrand only reads, and only the brands the user is given.
	RoleBrand WebRole = "brand"
)

// WebUser is a person who signs in to the ops pages.
type WebUser struct {
	ID        int64
	Name      string
	Role      WebRole
	Brands    []string // slugs, for RoleBrand
	BrandIDs  []int64
	CreatedAt time.Time
	LastLogin time.Time // zero: never
}

// Scope is what the user may see.
func (u WebUser) Scope() Scope {
	if u.Role == RoleOps {
		return ScopeAll()
	}
	return ScopeBrands(u.BrandIDs)
}

// Scope limits what a query of the ops pages returns to the brands a user may
// see. The zero Scope sees nothing: a query that forgot to ask whose it is
// shows no brand's data rather than every brand's.
type Scope struct {
	all    bool
	brands []int64
}

// ScopeAll sees every brand (ops).
func ScopeAll() Scope { return Scope{all: true} }

// ScopeBrands sees only these brands, by their ids in the ledger.
func ScopeBrands(ids []int64) Scope { return Scope{brands: append([]int64{}, ids...)} }

// All says whether the scope sees every brand.
func (s Scope) All() bool { return s.all }

// args are the two parameters of scopeSQL.
func (s Scope) args() (bool, []int64) {
	if s.brands == nil {
		return s.all, []int64{}
	}
	return s.all, s.brands
}

// scopeSQL is the condition "brand column b is in scope", over parameters
// $n (all) and $n+1 (the brand ids).
func scopeSQL(col string, n int) string {
	return fmt.Sprintf("($%d::bool OR %s = ANY($%d::bigint[]))", n, col, n+1)
}

// Actions of the audit log about the ops pages' users and sessions.
const (
	AuditUserAdd    = "users.add"
	AuditUserPasswd = "users.passwd"
	AuditUserRemove = "users.remove"
	AuditSignIn     = "web.sign_in"
	AuditSignOut    = "web.sign_out"
)

// Errors of the ops pages' users and sessions.
var (
	ErrNoWebUser     = errors.New("no such user")
	ErrWebUserExists = errors.New("a user of that name exists")
	ErrNoWebSession  = errors.New("no such session, or it expired")
)

// AddWebUserParams describe a new user of the ops pages.
type AddWebUserParams struct {
	Name         string
	Role         WebRole
	Brands       []string // slugs; required for RoleBrand, refused for RoleOps
	PasswordHash string
	Actor        string // who adds them, for the audit trail: "cli:root"
}

// AddWebUser adds a user of the ops pages.
func (l *Ledger) AddWebUser(ctx context.Context, p AddWebUserParams) error {
	switch {
	case p.Role == RoleBrand && len(p.Brands) == 0:
		return errors.New("ledger: a brand user needs at least one brand")
	case p.Role == RoleOps && len(p.Brands) > 0:
		return errors.New("ledger: an ops user sees every brand; give brands only to brand users")
	case p.Role != RoleOps && p.Role != RoleBrand:
		return fmt.Errorf("ledger: role %q is neither ops nor brand", p.Role)
	}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO web_users (name, role, password_hash) VALUES ($1, $2, $3) RETURNING id`,
			p.Name, string(p.Role), p.PasswordHash).Scan(&id)
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "23505":
			return fmt.Errorf("%s: %w", p.Name, ErrWebUserExists)
		case errors.As(err, &pgErr) && pgErr.Code == "23514":
			return fmt.Errorf("user name %q: use lower-case letters, digits and . _ @ -, at most 64", p.Name)
		case err != nil:
			return interpretError(err)
		}
		for _, slug := range p.Brands {
			brand, err := brandID(ctx, tx, slug)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO web_user_brands (user_id, brand_id) VALUES ($1, $2)
				ON CONFLICT DO NOTHING`, id, brand); err != nil {
				return interpretError(err)
			}
		}
		return insertAudit(ctx, tx, 0, AuditEntry{Actor: p.Actor, Action: AuditUserAdd,
			Detail: map[string]any{"user": p.Name, "role": string(p.Role), "brands": p.Brands}})
	})
	if err != nil {
		return fmt.Errorf("ledger: add user %s: %w", p.Name, err)
	}
	return nil
}

// SetWebUserPassword replaces a user's password and ends every session of
// theirs: a password changed because it leaked leaves no browser signed in.
func (l *Ledger) SetWebUserPassword(ctx context.Context, name, passwordHash, actor string) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `UPDATE web_users SET password_hash = $2, password_at = now() WHERE name = $1 RETURNING id`,
			name, passwordHash).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoWebUser
		}
		if err != nil {
			return interpretError(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, id); err != nil {
			return interpretError(err)
		}
		return insertAudit(ctx, tx, 0, AuditEntry{Actor: actor, Action: AuditUserPasswd, Detail: map[string]any{"user": name}})
	})
	if err != nil {
		return fmt.Errorf("ledger: set the password of %s: %w", name, err)
	}
	return nil
}

// RemoveWebUser removes a user and their sessions. Their audit trail stays.
func (l *Ledger) RemoveWebUser(ctx context.Context, name, actor string) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM web_users WHERE name = $1`, name)
		if err != nil {
			return interpretError(err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNoWebUser
		}
		return insertAudit(ctx, tx, 0, AuditEntry{Actor: actor, Action: AuditUserRemove, Detail: map[string]any{"user": name}})
	})
	if err != nil {
		return fmt.Errorf("ledger: remove user %s: %w", name, err)
	}
	return nil
}

const webUserColumns = `u.id, u.name, u.role, u.created_at, coalesce(u.last_login_at, '0001-01-01Z'),
	coalesce(array(SELECT b.slug FROM web_user_brands ub JOIN brands b ON b.id = ub.brand_id
		WHERE ub.user_id = u.id ORDER BY b.slug), '{}'),
	coalesce(array(SELECT ub.brand_id FROM web_user_brands ub WHERE ub.user_id = u.id ORDER BY ub.brand_id), '{}')`

func scanWebUser(row pgx.Row, extra ...any) (WebUser, error) {
	var u WebUser
	var role string
	err := row.Scan(append([]any{&u.ID, &u.Name, &role, &u.CreatedAt, &u.LastLogin, &u.Brands, &u.BrandIDs}, extra...)...)
	u.Role = WebRole(role)
	return u, err
}

// WebUsers lists the users of the ops pages by name.
func (l *Ledger) WebUsers(ctx context.Context) ([]WebUser, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+webUserColumns+` FROM web_users u ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("ledger: users: %w", interpretError(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebUser, error) { return scanWebUser(r) })
	if err != nil {
		return nil, fmt.Errorf("ledger: users: %w", interpretError(err))
	}
	return users, nil
}

// WebUserForLogin reads a user and their password hash by name.
func (l *Ledger) WebUserForLogin(ctx context.Context, name string) (WebUser, string, error) {
	var hash string
	u, err := scanWebUser(l.pool.QueryRow(ctx, `SELECT `+webUserColumns+`, u.password_hash FROM web_users u WHERE u.name = $1`, name), &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, "", ErrNoWebUser
	}
	if err != nil {
		return u, "", fmt.Errorf("ledger: user %s: %w", name, interpretError(err))
	}
	return u, hash, nil
}

// WebSessionParams describe a session that starts.
type WebSessionParams struct {
	TokenHash  []byte // SHA-256 of the cookie's token
	User       WebUser
	At         time.Time
	ExpiresAt  time.Time
	RemoteAddr string
}

// CreateWebSession records a session that signed in, the sign-in in the audit
// trail, and clears the name's failed attempts.
func (l *Ledger) CreateWebSession(ctx context.Context, p WebSessionParams) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at, remote_addr)
			VALUES ($1, $2, $3, $4, $5)`, p.TokenHash, p.User.ID, p.At, p.ExpiresAt, p.RemoteAddr); err != nil {
			return interpretError(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE web_users SET last_login_at = $2 WHERE id = $1`, p.User.ID, p.At); err != nil {
			return interpretError(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM web_login_failures WHERE user_name = $1`, p.User.Name); err != nil {
			return interpretError(err)
		}
		// Expired sessions go as new ones come: the table stays the size of the live ones.
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, p.At); err != nil {
			return interpretError(err)
		}
		return insertAudit(ctx, tx, 0, AuditEntry{Actor: "web:" + p.User.Name, Action: AuditSignIn,
			Detail: map[string]any{"remote_addr": p.RemoteAddr}})
	})
	if err != nil {
		return fmt.Errorf("ledger: start a session for %s: %w", p.User.Name, err)
	}
	return nil
}

// WebSession returns the user of a live session: one that exists and expires
// after now.
func (l *Ledger) WebSession(ctx context.Context, tokenHash []byte, now time.Time) (WebUser, error) {
	u, err := scanWebUser(l.pool.QueryRow(ctx, `SELECT `+webUserColumns+`
		FROM web_sessions s JOIN web_users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > $2`, tokenHash, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNoWebSession
	}
	if err != nil {
		return u, fmt.Errorf("ledger: session: %w", interpretError(err))
	}
	return u, nil
}

// EndWebSession deletes a session (sign-out) and records it.
func (l *Ledger) EndWebSession(ctx context.Context, tokenHash []byte, user, remoteAddr string) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE token_hash = $1`, tokenHash); err != nil {
			return interpretError(err)
		}
		return insertAudit(ctx, tx, 0, AuditEntry{Actor: "web:" + user, Action: AuditSignOut,
			Detail: map[string]any{"remote_addr": remoteAddr}})
	})
	if err != nil {
		return fmt.Errorf("ledger: end a session of %s: %w", user, err)
	}
	return nil
}

// LoginThrottle bounds password guessing: at most MaxPerName failed sign-ins
// for one user name and MaxPerAddr from one address within Window.
type LoginThrottle struct {
	Window     time.Duration
	MaxPerName int
	MaxPerAddr int
}

// LoginThrottled says whether a sign-in as name from addr is refused unheard,
// and if so until when.
func (l *Ledger) LoginThrottled(ctx context.Context, name, addr string, at time.Time, t LoginThrottle) (time.Time, bool, error) {
	since := at.Add(-t.Window)
	var byName, byAddr int
	var oldestName, oldestAddr *time.Time
	err := l.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM web_login_failures WHERE user_name = $1 AND at > $3),
			(SELECT min(at) FROM web_login_failures WHERE user_name = $1 AND at > $3),
			(SELECT count(*) FROM web_login_failures WHERE remote_addr = $2 AND at > $3),
			(SELECT min(at) FROM web_login_failures WHERE remote_addr = $2 AND at > $3)`,
		name, addr, since).Scan(&byName, &oldestName, &byAddr, &oldestAddr)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("ledger: login throttle: %w", interpretError(err))
	}
	var until time.Time
	if byName >= t.MaxPerName && oldestName != nil {
		until = oldestName.Add(t.Window)
	}
	if byAddr >= t.MaxPerAddr && oldestAddr != nil && oldestAddr.Add(t.Window).After(until) {
		until = oldestAddr.Add(t.Window)
	}
	return until, !until.IsZero(), nil
}

// RecordLoginFailure counts a failed sign-in and forgets those older than
// window.
func (l *Ledger) RecordLoginFailure(ctx context.Context, name, addr string, at time.Time, window time.Duration) error {
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO web_login_failures (at, user_name, remote_addr) VALUES ($1, $2, $3)`,
			at, safetext.Printable(name), addr); err != nil {
			return interpretError(err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM web_login_failures WHERE at < $1`, at.Add(-window))
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("ledger: record a failed sign-in: %w", err)
	}
	return nil
}
