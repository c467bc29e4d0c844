// Package postgres is the PostgreSQL access broker: for each approved
// access it creates a login role named after the request, with a random
// password and VALID UNTIL at the end of the window, grants it the roles
// the access role maps to, and at revocation locks it, terminates its
// sessions and drops it.
//
// The administrative connection string is read from an environment
// variable each time it is needed; it is never stored in the broker, and
// errors never carry its password. The clear password of an issued role
// never reaches the server either: the broker sends a SCRAM-SHA-256
// verifier, so statement logs and pg_stat_activity show no secret.
//
// Importing the package registers the broker type "postgres".
package postgres

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

// Type is the broker type this package registers.
const Type = "postgres"

// RolePrefix begins the name of every role the broker creates; Revoke
// refuses to drop a role whose name does not begin with it.
const RolePrefix = "airlock_"

// DefaultTimeout bounds the database work of one Grant or Revoke (from
// connecting to commit) when Config.Timeout is zero. The wait for a free
// admin connection slot before it is bounded by the caller's context only.
const DefaultTimeout = 10 * time.Second

// DefaultMaxConns bounds the admin connections one Broker holds open at
// once when Config.MaxConns is zero.
const DefaultMaxConns = 8

// passwordBytes is how much crypto/rand goes into an issued password.
const passwordBytes = 32

// scramIterations is the SCRAM-SHA-256 iteration count of issued roles,
// PostgreSQL's default (scram_iterations).
const scramIterations = 4096

func init() {
	broker.Register(Type, func(config json.RawMessage, env broker.Env) (broker.Broker, error) {
		cfg, err := ParseConfig(config)
		if err != nil {
			return nil, err
		}
		return New(cfg, env)
	})
	broker.RegisterValidator(Type, func(config json.RawMessage) error {
		_, err := ParseConfig(config)
		return err
	})
}

// Config is a postgres broker's configuration: the resource's
// broker.postgres object. Only DSNEnv is required.
type Config struct {
	// DSNEnv names the environment variable holding the admin connection
	// string (URL or keyword/value form) of a role with CREATEROLE.
	DSNEnv string `json:"dsnEnv"`
	// ConnectHost, host:port, is written into issued DSNs instead of the
	// admin DSN's host, for when requesters reach the server by another
	// address than airlock does.
	ConnectHost string `json:"connectHost,omitempty"`
	// Database is the database of issued DSNs; the admin DSN's by default.
	Database string `json:"database,omitempty"`

	// Timeout bounds the database work of one Grant or Revoke
	// (DefaultTimeout when zero). It is not part of the JSON configuration.
	Timeout time.Duration `json:"-"`
	// MaxConns bounds concurrent admin connections (DefaultMaxConns when
	// zero). It is not part of the JSON configuration.
	MaxConns int `json:"-"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseConfig strictly decodes a broker.postgres object: an unknown field
// is refused by name. It reads no environment variable.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, errors.New(`postgres broker: configuration is empty; it needs at least {"dsnEnv": "NAME_OF_ADMIN_DSN_VARIABLE"}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("postgres broker configuration: %w (the fields are dsnEnv, connectHost, database)", err)
	}
	if dec.More() {
		return cfg, errors.New("postgres broker configuration: unexpected data after the object")
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration without reading any secret.
func (c Config) Validate() error {
	if c.DSNEnv == "" {
		return errors.New("postgres broker: dsnEnv is required: the name of the environment variable holding the admin connection string")
	}
	if !envName.MatchString(c.DSNEnv) {
		return fmt.Errorf("postgres broker: dsnEnv %q is not an environment variable name (letters, digits and _, not starting with a digit); it names the variable, it is not the connection string", c.DSNEnv)
	}
	if c.ConnectHost != "" {
		host, port, err := net.SplitHostPort(c.ConnectHost)
		if err != nil || host == "" {
			return fmt.Errorf("postgres broker: connectHost %q is not host:port", c.ConnectHost)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("postgres broker: connectHost %q has no valid port (1-65535)", c.ConnectHost)
		}
	}
	if strings.ContainsAny(c.Database, "\x00/?#") {
		return fmt.Errorf("postgres broker: database %q contains a character a connection URL cannot carry", c.Database)
	}
	if c.Timeout < 0 || c.MaxConns < 0 {
		return errors.New("postgres broker: Timeout and MaxConns must not be negative")
	}
	return nil
}

// Broker issues PostgreSQL login roles. It is safe for concurrent use;
// each call opens its own admin connection (at most MaxConns at once)
// and closes it before returning.
type Broker struct {
	cfg   Config
	env   broker.Env
	slots chan struct{}
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker for cfg. It reads the admin DSN from env (os.Getenv
// when env is nil) once to check that it is set and parses, but does not
// keep it or connect.
func New(cfg Config, env broker.Env) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env == nil {
		env = os.Getenv
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	b := &Broker{cfg: cfg, env: env, slots: make(chan struct{}, cfg.MaxConns)}
	if _, _, _, err := b.adminConfig(); err != nil {
		return nil, err
	}
	return b, nil
}

// adminConfig reads and parses the admin DSN. The returned secrets are
// what errors must not show.
func (b *Broker) adminConfig() (cfg *pgx.ConnConfig, dsn string, secrets []string, err error) {
	dsn = b.env(b.cfg.DSNEnv)
	if dsn == "" {
		return nil, "", nil, fmt.Errorf("postgres broker: environment variable %s (dsnEnv) is not set; it must hold the admin connection string", b.cfg.DSNEnv)
	}
	secrets = dsnSecrets(dsn)
	cfg, err = pgx.ParseConfig(dsn)
	if err != nil {
		return nil, "", nil, redact(fmt.Errorf("postgres broker: the admin connection string in %s does not parse: %w", b.cfg.DSNEnv, err), secrets)
	}
	if cfg.Password != "" {
		secrets = append(secrets, cfg.Password)
	}
	return cfg, dsn, secrets, nil
}

// session is one admin connection with what its errors must not show.
type session struct {
	conn    *pgx.Conn
	cfg     *pgx.ConnConfig
	dsn     string
	secrets []string
}

// connect waits for a connection slot (as long as ctx allows) and opens an
// admin connection. The returned context bounds the work on it by the
// broker's timeout, counted from when the slot was taken; release closes
// the connection, frees the slot and cancels that context.
func (b *Broker) connect(ctx context.Context) (context.Context, *session, func(), error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, nil, fmt.Errorf("postgres broker: waiting for an admin connection slot: %w", ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	free := func() { cancel(); <-b.slots }
	cfg, dsn, secrets, err := b.adminConfig()
	if err != nil {
		free()
		return nil, nil, nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		free()
		return nil, nil, nil, redact(fmt.Errorf("postgres broker: connect with the admin connection string in %s: %w", b.cfg.DSNEnv, err), secrets)
	}
	release := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
		free()
	}
	return ctx, &session{conn: conn, cfg: cfg, dsn: dsn, secrets: secrets}, release, nil
}

// RoleName is the login role a grant with this ID gets: RolePrefix and the
// ID lower-cased, each character outside [a-z0-9_] replaced by '_'. A name
// that would exceed PostgreSQL's 63 bytes is cut and ends in a hash of the
// ID, so distinct long IDs keep distinct roles.
func RoleName(id string) (string, error) {
	if id == "" {
		return "", errors.New("postgres broker: grant has no ID")
	}
	var sb strings.Builder
	sb.WriteString(RolePrefix)
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	name := sb.String()
	const maxLen = 63
	if len(name) > maxLen {
		sum := sha256.Sum256([]byte(id))
		suffix := "_" + hex.EncodeToString(sum[:5])
		name = name[:maxLen-len(suffix)] + suffix
	}
	return name, nil
}

// Grant creates (or, when it already exists after an earlier attempt,
// alters) the grant's login role with a new random password valid until
// g.NotAfter, and makes it a member of exactly the roles in g.Grants. It
// all happens in one transaction: on any error, an unknown grant role
// included, nothing is left behind. The credential holds dsn, user,
// password and validUntil; the handle is the role name. g.NotBefore is
// not enforced (PostgreSQL has no start of validity): call Grant when the
// window opens. Concurrent Grants for one ID may fail; the caller
// serializes the work on one request.
func (b *Broker) Grant(ctx context.Context, g broker.Grant) (broker.Issued, error) {
	role, err := RoleName(g.ID)
	if err != nil {
		return broker.Issued{}, err
	}
	if g.NotAfter.IsZero() {
		return broker.Issued{}, fmt.Errorf("postgres broker: grant %s has no end (NotAfter); a credential without expiry is never issued", g.ID)
	}
	for _, r := range g.Grants {
		if r == "" || strings.ContainsRune(r, 0) {
			return broker.Issued{}, fmt.Errorf("postgres broker: grant %s maps to an empty or invalid role name %q", g.ID, r)
		}
	}

	pw := make([]byte, passwordBytes)
	_, _ = rand.Read(pw) // crypto/rand.Read never fails (it crashes the program instead)
	password := hex.EncodeToString(pw)
	verifier, err := scramVerifier(password)
	if err != nil {
		return broker.Issued{}, err
	}
	validUntil := g.NotAfter.UTC().Format(time.RFC3339)

	ctx, s, release, err := b.connect(ctx)
	if err != nil {
		return broker.Issued{}, err
	}
	defer release()
	secrets := append(s.secrets, password, verifier)

	if err := b.grantTx(ctx, s.conn, g, role, verifier, validUntil); err != nil {
		return broker.Issued{}, redact(err, secrets)
	}

	dsn, err := b.issuedDSN(s, role, password)
	if err != nil {
		return broker.Issued{}, redact(err, secrets)
	}
	return broker.Issued{
		Credential: map[string]string{
			"dsn":        dsn,
			"user":       role,
			"password":   password,
			"validUntil": validUntil,
		},
		Handle: role,
	}, nil
}

func (b *Broker) grantTx(ctx context.Context, conn *pgx.Conn, g broker.Grant, role, verifier, validUntil string) (err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres broker: grant %s: begin: %w", g.ID, err)
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = tx.Rollback(rctx)
		}
	}()

	var unknown []string
	if len(g.Grants) > 0 {
		rows, err := tx.Query(ctx,
			`SELECT n FROM unnest($1::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n) ORDER BY n`, g.Grants)
		if err != nil {
			return fmt.Errorf("postgres broker: grant %s: look up roles %v: %w", g.ID, g.Grants, err)
		}
		unknown, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres broker: grant %s: look up roles %v: %w", g.ID, g.Grants, err)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("postgres broker: grant %s: role %s does not exist on the server; map %s/%s to existing PostgreSQL roles", g.ID, strings.Join(quoteAll(unknown), ", "), g.Resource, g.Role)
	}

	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return fmt.Errorf("postgres broker: grant %s: look up role %s: %w", g.ID, role, err)
	}
	ident := pgx.Identifier{role}.Sanitize()
	attrs := " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD " +
		quoteLiteral(verifier) + " VALID UNTIL " + quoteLiteral(validUntil)
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE ROLE "+ident+attrs); err != nil {
			return fmt.Errorf("postgres broker: grant %s: create role %s: %w", g.ID, role, err)
		}
	} else {
		if _, err := tx.Exec(ctx, "ALTER ROLE "+ident+attrs); err != nil {
			return fmt.Errorf("postgres broker: grant %s: alter existing role %s: %w", g.ID, role, err)
		}
		rows, err := tx.Query(ctx, `SELECT r.rolname FROM pg_auth_members m
			JOIN pg_roles r ON r.oid = m.roleid
			JOIN pg_roles u ON u.oid = m.member
			WHERE u.rolname = $1`, role)
		if err != nil {
			return fmt.Errorf("postgres broker: grant %s: list memberships of %s: %w", g.ID, role, err)
		}
		old, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres broker: grant %s: list memberships of %s: %w", g.ID, role, err)
		}
		for _, o := range old {
			if _, err := tx.Exec(ctx, "REVOKE "+pgx.Identifier{o}.Sanitize()+" FROM "+ident); err != nil {
				return fmt.Errorf("postgres broker: grant %s: revoke earlier membership %q from %s: %w", g.ID, o, role, err)
			}
		}
	}
	for _, r := range g.Grants {
		if _, err := tx.Exec(ctx, "GRANT "+pgx.Identifier{r}.Sanitize()+" TO "+ident); err != nil {
			return fmt.Errorf("postgres broker: grant %s: grant role %q to %s: %w", g.ID, r, role, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres broker: grant %s: commit: %w", g.ID, err)
	}
	return nil
}

// issuedDSN builds the requester's connection URL.
func (b *Broker) issuedDSN(s *session, role, password string) (string, error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password)}
	q := url.Values{}
	switch {
	case b.cfg.ConnectHost != "":
		u.Host = b.cfg.ConnectHost
	case strings.HasPrefix(s.cfg.Host, "/"): // a Unix socket directory
		q.Set("host", s.cfg.Host)
		q.Set("port", strconv.Itoa(int(s.cfg.Port)))
	default:
		u.Host = net.JoinHostPort(s.cfg.Host, strconv.Itoa(int(s.cfg.Port)))
	}
	db := b.cfg.Database
	if db == "" {
		db = s.cfg.Database
	}
	u.Path = "/" + db
	mode := sslMode(s.dsn)
	if mode == "" {
		mode = "disable"
	}
	q.Set("sslmode", mode)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Revoke locks the grant's role (NOLOGIN), terminates its sessions,
// reassigns what it owns in the admin DSN's database to the admin role,
// drops its remaining privileges and drops the role. handle is the role
// name Grant returned, derived from g.ID when empty; a handle that does
// not begin with RolePrefix is refused. A role that does not exist is
// success, so Revoke may be retried until it returns nil.
func (b *Broker) Revoke(ctx context.Context, g broker.Grant, handle string) error {
	role := handle
	if role == "" {
		var err error
		if role, err = RoleName(g.ID); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(role, RolePrefix) || len(role) > 63 {
		return fmt.Errorf("postgres broker: revoke %s: handle %q is not a role this broker creates (they begin with %q); refusing to drop it", g.ID, role, RolePrefix)
	}

	ctx, s, release, err := b.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := revoke(ctx, s.conn, g.ID, role); err != nil {
		return redact(err, s.secrets)
	}
	return nil
}

func revoke(ctx context.Context, conn *pgx.Conn, id, role string) (err error) {
	ident := pgx.Identifier{role}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return fmt.Errorf("postgres broker: revoke %s: look up role %s: %w", id, role, err)
	}
	if !exists {
		return nil
	}
	// NOLOGIN commits on its own first, so a session terminated below
	// cannot log in again.
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident+" NOLOGIN"); err != nil {
		if isUndefinedRole(err) {
			return nil
		}
		return fmt.Errorf("postgres broker: revoke %s: lock role %s (NOLOGIN): %w", id, role, err)
	}
	// Terminating its sessions and REASSIGN/DROP OWNED need the admin to
	// have the role's privileges; a CREATEROLE admin that is not a
	// superuser first makes itself a member (DROP ROLE ends that).
	var member bool
	if err := conn.QueryRow(ctx, `SELECT pg_has_role($1, 'USAGE')`, role).Scan(&member); err != nil {
		if isUndefinedRole(err) {
			return nil
		}
		return fmt.Errorf("postgres broker: revoke %s: check membership in %s: %w", id, role, err)
	}
	if !member {
		if _, err := conn.Exec(ctx, "GRANT "+ident+" TO CURRENT_USER"); err != nil {
			return fmt.Errorf("postgres broker: revoke %s: take the privileges of %s to drop it (GRANT %s TO CURRENT_USER): %w", id, role, role, err)
		}
	}
	if _, err := conn.Exec(ctx,
		`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`, role); err != nil {
		return fmt.Errorf("postgres broker: revoke %s: terminate sessions of %s: %w", id, role, err)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres broker: revoke %s: begin: %w", id, err)
	}
	defer func() {
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = tx.Rollback(rctx)
		}
	}()
	for _, stmt := range []string{
		"REASSIGN OWNED BY " + ident + " TO CURRENT_USER",
		"DROP OWNED BY " + ident,
		"DROP ROLE IF EXISTS " + ident,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			if isUndefinedRole(err) { // dropped meanwhile by another Revoke
				return nil
			}
			return fmt.Errorf("postgres broker: revoke %s: %s: %w", id, stmt, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres broker: revoke %s: commit: %w", id, err)
	}
	return nil
}

func isUndefinedRole(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42704"
}

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (the form of pg_authid.rolpassword), with a random salt.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("postgres broker: derive password verifier: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	enc := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations,
		enc.EncodeToString(salt), enc.EncodeToString(storedKey[:]), enc.EncodeToString(serverKey)), nil
}

// quoteLiteral quotes s as an SQL string literal, correct whatever
// standard_conforming_strings is (as libpq's PQescapeLiteral does).
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return ` E'` + strings.ReplaceAll(s, `\`, `\\`) + `'`
	}
	return "'" + s + "'"
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// sslMode is the sslmode a connection string asks for, "" when none.
func sslMode(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return ""
		}
		return u.Query().Get("sslmode")
	}
	return keywordValues(dsn)["sslmode"]
}

// keywordValues parses a keyword/value connection string (libpq's
// "host=h password='a b'" form), as far as it is well formed.
func keywordValues(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t\n\r\f\v")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return out
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t\n\r\f\v")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i := 1
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[min(i+1, len(s)):]
		} else {
			i := 0
			for ; i < len(s) && !strings.ContainsRune(" \t\n\r\f\v", rune(s[i])); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[i:]
		}
		out[key] = val.String()
	}
}

// dsnSecrets is what of a connection string must never be shown: the
// string itself and its password, in either form, parsed or not.
func dsnSecrets(dsn string) []string {
	secrets := []string{dsn}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	// A URL that url.Parse refuses may still carry user:password@.
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			userinfo := rest[:at]
			if c := strings.IndexByte(userinfo, ':'); c >= 0 {
				p := userinfo[c+1:]
				secrets = append(secrets, p)
				if dec, err := url.PathUnescape(p); err == nil {
					secrets = append(secrets, dec)
				}
			}
		}
	}
	if p := keywordValues(dsn)["password"]; p != "" {
		secrets = append(secrets, p)
	}
	return secrets
}

// redactedError is an error whose message had secrets removed. It does
// not unwrap: the original error's message is what held them.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }

// redact returns err unchanged when its message shows none of secrets,
// and otherwise an error with each of them replaced by "xxxxx".
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "xxxxx")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean}
}
