// Package sshca is the "ssh" access broker: it signs short-lived OpenSSH
// user certificates for a requester's public key, with the approved
// principals and the grant's validity window, from a CA key that only
// airlock reads.
//
// A certificate needs no cleanup: it stops working at its ValidBefore.
// Early revocation (airlock access revoke) appends the certificate's
// serial to a KRL specification file, which operators convert into an
// OpenSSH KRL (ssh-keygen -k) for sshd's RevokedKeys, and which Go SSH
// servers can read directly through [RevocationList].
//
// See docs/access-ssh.md for the configuration and the sshd setup.
package sshca

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/airlock-dev/airlock/internal/access/broker"
)

// Type is the broker type this package registers.
const Type = "ssh"

// ClockSkew is how far before the grant's NotBefore a certificate becomes
// valid, so that a server whose clock is slightly ahead accepts it at once.
// Revoke also records a serial until ClockSkew after NotAfter, for servers
// whose clock is behind.
const ClockSkew = time.Minute

// MinRSABits is the smallest RSA key (user or CA) the broker certifies
// or signs with.
const MinRSABits = 2048

// maxPublicKeyLen bounds the public key text a grant may carry; the
// largest OpenSSH public key (RSA 16384 bits) is under 3 KiB.
const maxPublicKeyLen = 16 << 10

// DefaultExtensions are the certificate extensions granted when the
// configuration does not list any.
var DefaultExtensions = []string{"permit-pty"}

// knownExtensions are the extensions OpenSSH defines for user certificates.
// Others must be vendor extensions (name@domain).
var knownExtensions = map[string]bool{
	"no-touch-required":       true,
	"permit-X11-forwarding":   true,
	"permit-agent-forwarding": true,
	"permit-port-forwarding":  true,
	"permit-pty":              true,
	"permit-user-rc":          true,
}

func init() {
	broker.Register(Type, func(raw json.RawMessage, _ broker.Env) (broker.Broker, error) {
		cfg, err := ParseConfig(raw)
		if err != nil {
			return nil, err
		}
		return New(cfg, nil)
	})
	broker.RegisterValidator(Type, func(raw json.RawMessage) error {
		_, err := ParseConfig(raw)
		return err
	})
}

// Config is the "ssh" broker's configuration (the resource's broker config
// object).
type Config struct {
	// CAKeyFile is the path of the CA private key (OpenSSH or PEM format,
	// unencrypted), read once when the broker is built. The key itself is
	// never logged, stored or returned.
	CAKeyFile string `json:"caKeyFile"`
	// RevokedSerialsFile, when set, is a KRL specification file to which
	// Revoke appends "serial: N" lines for certificates revoked before
	// they expire. Without it, early revocation is not possible: a
	// certificate stays valid until its ValidBefore.
	RevokedSerialsFile string `json:"revokedSerialsFile,omitempty"`
	// Extensions are the certificate extensions granted (permit-pty,
	// permit-port-forwarding, ...). Absent means DefaultExtensions; an
	// empty list grants none.
	Extensions []string `json:"extensions,omitempty"`
}

// ParseConfig strictly decodes and checks a configuration without reading
// any file: unknown fields, a missing caKeyFile and unknown extensions are
// errors.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, errors.New(`ssh broker: configuration is missing; it needs at least {"caKeyFile": "/path/to/ca"}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return cfg, fmt.Errorf("ssh broker: unknown field %s in configuration; the fields are caKeyFile, revokedSerialsFile and extensions", name)
		}
		return cfg, fmt.Errorf("ssh broker: configuration: %w", err)
	}
	if dec.More() {
		return cfg, errors.New("ssh broker: configuration: unexpected data after the JSON object")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate checks cfg without reading any file.
func (c Config) Validate() error {
	if strings.TrimSpace(c.CAKeyFile) == "" {
		return errors.New("ssh broker: caKeyFile is required: the path of the CA private key airlock signs certificates with")
	}
	for _, e := range c.Extensions {
		if !knownExtensions[e] && !isVendorExtension(e) {
			return fmt.Errorf("ssh broker: unknown certificate extension %q; OpenSSH's are no-touch-required, permit-X11-forwarding, permit-agent-forwarding, permit-port-forwarding, permit-pty and permit-user-rc (others must be name@domain)", e)
		}
	}
	return nil
}

func isVendorExtension(e string) bool {
	name, domain, ok := strings.Cut(e, "@")
	if !ok || name == "" || domain == "" {
		return false
	}
	for _, r := range e {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Broker signs and revokes SSH user certificates with one CA. It is safe
// for concurrent use.
type Broker struct {
	ca          ssh.Signer
	revokedPath string
	extensions  map[string]string
	now         func() time.Time
	rand        io.Reader

	mu sync.Mutex // serialises appends to revokedPath
}

var _ broker.Broker = (*Broker)(nil)

// New builds a broker from cfg, reading the CA key from cfg.CAKeyFile. now
// is the broker's clock; nil means time.Now. Errors name the file but never
// include its contents.
func New(cfg Config, now func() time.Time) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ca, err := loadCA(cfg.CAKeyFile)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	exts := cfg.Extensions
	if exts == nil {
		exts = DefaultExtensions
	}
	m := make(map[string]string, len(exts))
	for _, e := range exts {
		m[e] = ""
	}
	return &Broker{
		ca:          ca,
		revokedPath: cfg.RevokedSerialsFile,
		extensions:  m,
		now:         now,
		rand:        rand.Reader,
	}, nil
}

func loadCA(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh broker: read CA key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	clear(b)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("ssh broker: CA key %s is protected by a passphrase; airlock needs it unencrypted (mode 0600, readable only by the airlock server)", path)
	case err != nil:
		return nil, fmt.Errorf("ssh broker: CA key %s is not an OpenSSH or PEM private key: %w", path, err)
	}
	if err := checkKeyStrength(signer.PublicKey()); err != nil {
		return nil, fmt.Errorf("ssh broker: CA key %s: %w", path, err)
	}
	return signer, nil
}

// CAPublicKey returns the CA's public key: what servers trust
// (TrustedUserCAKeys, ssh.CertChecker.IsUserAuthority).
func (b *Broker) CAPublicKey() ssh.PublicKey { return b.ca.PublicKey() }

// Grant signs a user certificate for g.PublicKey valid for the principals
// g.Grants from ClockSkew before g.NotBefore (now when zero) until
// g.NotAfter. The credential is {"certificate", "principals",
// "validBefore", "serial"}; the handle is the serial in decimal.
//
// Called again for the same grant, Grant signs a new certificate with a
// new serial. The earlier one was never handed to the requester (the
// caller delivers a credential only after Grant returned and it was
// recorded) and expires by itself at the same ValidBefore.
func (b *Broker) Grant(ctx context.Context, g broker.Grant) (broker.Issued, error) {
	if err := ctx.Err(); err != nil {
		return broker.Issued{}, err
	}
	key, err := ParsePublicKey(g.PublicKey)
	if err != nil {
		return broker.Issued{}, fmt.Errorf("ssh broker: grant %s: %w", g.ID, err)
	}
	if err := checkPrincipals(g.Grants); err != nil {
		return broker.Issued{}, fmt.Errorf("ssh broker: grant %s: %w", g.ID, err)
	}
	if g.ID == "" || g.Requester == "" {
		return broker.Issued{}, errors.New("ssh broker: a grant needs an ID and a requester (they make the certificate's key ID)")
	}
	now := b.now()
	notBefore := g.NotBefore
	if notBefore.IsZero() {
		notBefore = now
	}
	if g.NotAfter.IsZero() || !g.NotAfter.After(notBefore) {
		return broker.Issued{}, fmt.Errorf("ssh broker: grant %s: its window must end after it starts (not before %s, not after %s)",
			g.ID, notBefore.UTC().Format(time.RFC3339), g.NotAfter.UTC().Format(time.RFC3339))
	}
	if !g.NotAfter.After(now) {
		return broker.Issued{}, fmt.Errorf("ssh broker: grant %s: its window ended at %s; nothing to issue",
			g.ID, g.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := b.serial()
	if err != nil {
		return broker.Issued{}, fmt.Errorf("ssh broker: grant %s: serial: %w", g.ID, err)
	}
	validAfter := notBefore.Add(-ClockSkew).Unix()
	if validAfter < 0 {
		validAfter = 0
	}
	exts := make(map[string]string, len(b.extensions))
	for k, v := range b.extensions {
		exts[k] = v
	}
	cert := &ssh.Certificate{
		Key:             key,
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           g.ID + " " + g.Requester,
		ValidPrincipals: append([]string(nil), g.Grants...),
		ValidAfter:      uint64(validAfter),
		ValidBefore:     uint64(g.NotAfter.Unix()),
		Permissions:     ssh.Permissions{Extensions: exts},
	}
	if err := cert.SignCert(b.rand, b.ca); err != nil {
		return broker.Issued{}, fmt.Errorf("ssh broker: grant %s: sign certificate: %w", g.ID, err)
	}
	handle := strconv.FormatUint(serial, 10)
	return broker.Issued{
		Credential: map[string]string{
			"certificate": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))),
			"principals":  strings.Join(cert.ValidPrincipals, ","),
			"validBefore": time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339),
			"serial":      handle,
		},
		Handle: handle,
	}, nil
}

// serial returns a random non-zero serial.
func (b *Broker) serial() (uint64, error) {
	var buf [8]byte
	for {
		if _, err := io.ReadFull(b.rand, buf[:]); err != nil {
			return 0, err
		}
		if s := binary.BigEndian.Uint64(buf[:]); s != 0 {
			return s, nil
		}
	}
}

// Revoke revokes the certificate whose serial is handle. While the
// certificate may still be valid (until ClockSkew after g.NotAfter) and a
// revokedSerialsFile is configured, it appends "serial: <handle>" to that
// file, once: a serial already listed is not written again. Otherwise
// there is nothing to do and Revoke succeeds: an expired certificate no
// longer works, and without a revokedSerialsFile a certificate cannot be
// revoked early and stays valid until its ValidBefore. An empty handle
// (Grant never returned) is also success.
func (b *Broker) Revoke(ctx context.Context, g broker.Grant, handle string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if handle == "" || b.revokedPath == "" {
		return nil
	}
	if !b.now().Before(g.NotAfter.Add(ClockSkew)) {
		return nil
	}
	serial, err := parseHandle(handle)
	if err != nil {
		return fmt.Errorf("ssh broker: revoke %s: %w", g.ID, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := appendSerial(b.revokedPath, serial); err != nil {
		return fmt.Errorf("ssh broker: revoke %s: %w", g.ID, err)
	}
	return nil
}

func parseHandle(h string) (uint64, error) {
	s, err := strconv.ParseUint(h, 10, 64)
	if err != nil || s == 0 || strconv.FormatUint(s, 10) != h {
		return 0, fmt.Errorf("handle %q is not a certificate serial (a non-zero decimal number)", h)
	}
	return s, nil
}

// ParsePublicKey parses one public key in authorized_keys format
// ("ssh-ed25519 AAAA... user@host") and refuses what the broker does not
// certify: options, more than one key, certificates and RSA keys under
// MinRSABits. (x/crypto/ssh no longer parses DSA keys at all.)
func ParsePublicKey(text string) (ssh.PublicKey, error) {
	const want = `expected one public key in authorized_keys format, e.g. "ssh-ed25519 AAAA... user@host" (the contents of ~/.ssh/id_ed25519.pub)`
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("no public key given; " + want)
	}
	if len(text) > maxPublicKeyLen {
		return nil, fmt.Errorf("public key is %d bytes, longer than any OpenSSH key; %s", len(text), want)
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("malformed public key (%v); %s", err, want)
	}
	if len(options) > 0 {
		return nil, fmt.Errorf("public key has authorized_keys options (%s); %s", strings.Join(options, ","), want)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("more than one line given; " + want)
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, errors.New("the public key is itself a certificate (" + key.Type() + "); give the plain public key it certifies: " + want)
	}
	if err := checkKeyStrength(key); err != nil {
		return nil, err
	}
	return key, nil
}

func checkKeyStrength(key ssh.PublicKey) error {
	switch key.Type() {
	case ssh.KeyAlgoRSA:
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return errors.New("unreadable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return errors.New("unreadable RSA key")
		}
		if bits := rk.N.BitLen(); bits < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too short; at least %d bits are required (or use ssh-keygen -t ed25519)", bits, MinRSABits)
		}
	}
	return nil
}

// checkPrincipals refuses an empty list and principals that are empty or
// contain a comma, whitespace or control characters (which neither the
// comma-joined credential nor an AuthorizedPrincipalsFile can carry).
func checkPrincipals(ps []string) error {
	if len(ps) == 0 {
		return errors.New("no principals: the access role must map to at least one SSH principal (the login names the certificate is valid for)")
	}
	for _, p := range ps {
		if p == "" {
			return errors.New("empty principal in the role's grants")
		}
		if strings.ContainsFunc(p, func(r rune) bool {
			return r == ',' || unicode.IsSpace(r) || unicode.IsControl(r)
		}) {
			return fmt.Errorf("principal %q contains a comma, whitespace or a control character", p)
		}
	}
	return nil
}

// GenerateCA writes a new ed25519 CA private key in OpenSSH format to path
// with mode 0600 and returns its public key. It refuses to overwrite an
// existing file. The public key, in authorized_keys format
// (ssh.MarshalAuthorizedKey), is what sshd's TrustedUserCAKeys lists.
func GenerateCA(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "airlock ssh ca")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create CA key: %w", err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write CA key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write CA key %s: %w", path, err)
	}
	return ssh.NewPublicKey(pub)
}
