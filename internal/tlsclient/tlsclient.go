// Package tlsclient is the one TLS-client configuration of every outbound client dcrgate makes
// (JWKS fetches, token introspection and revocation, Redis). It is reverse_proxy's http
// transport TLS config (reverseproxy.TLSConfig) with the same JSON fields and the same
// Caddyfile options, so an operator who has configured TLS to a backend in Caddy already knows
// it:
//
//	tls_trust_pool <source> [...]     # e.g. tls_trust_pool file ca.pem; default the system roots
//	tls_client_auth <cert> <key>      # a client certificate (or one automate name)
//	tls_server_name <name>
//	tls_timeout <duration>
//	tls_insecure_skip_verify          # never in production
//	tls_curves <curve>...
//	tls_renegotiation never|once|freely
//
// Resources built from it are pooled across reloads; Digest covers the contents of every file
// the configuration reads, so a reload after a key or CA rotation takes the new contents.
package tlsclient

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// Config is the TLS configuration of one outbound client.
type Config struct {
	reverseproxy.TLSConfig
}

// TrustPoolFiles returns the `ca` value that trusts the CAs in the given PEM files (Caddy's
// tls.ca_pool.source.file), for options that name files directly.
func TrustPoolFiles(files ...string) json.RawMessage {
	return caddyconfig.JSONModuleObject(caddytls.FileCAPool{TrustedCACertPEMFiles: files}, "provider", "file", nil)
}

// AddTrustedFiles adds PEM files of trusted CAs to c, for the deprecated options that named
// files directly (trusted_roots, ca). It fails if a trust pool of another kind is configured.
func (c *Config) AddTrustedFiles(files ...string) error {
	if len(files) == 0 {
		return nil
	}
	if len(c.CARaw) == 0 {
		c.CARaw = TrustPoolFiles(files...)
		return nil
	}
	pool, err := c.filePool()
	if err != nil || pool == nil {
		return errors.New("a trust pool is already configured (tls_trust_pool); remove the deprecated file option")
	}
	c.CARaw = TrustPoolFiles(append(pool, files...)...)
	return nil
}

// SetClientCertificate sets the client certificate and key files.
func (c *Config) SetClientCertificate(cert, key string) {
	c.ClientCertificateFile, c.ClientCertificateKeyFile = cert, key
}

// HasClientCertificate reports whether a client certificate is configured.
func (c *Config) HasClientCertificate() bool {
	return c != nil && (c.ClientCertificateFile != "" || c.ClientCertificateAutomate != "")
}

// Make builds the crypto/tls client configuration (TLS 1.2 at least). A nil Config is the
// default: system roots, no client certificate. c itself is left as it is, so it can still be
// digested or marshalled afterwards.
func (c *Config) Make(ctx caddy.Context) (*tls.Config, error) {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	if err := c.checkCAFiles(); err != nil {
		return nil, err
	}
	cp := c.TLSConfig // LoadModule clears the raw module field it loads
	cfg, err := cp.MakeTLSClientConfig(ctx)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = new(tls.Config)
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg, nil
}

// Digest identifies the configuration and the current contents of every file it reads (client
// certificate and key, trusted CA files), so that a pool keyed by it builds a new resource
// after a rotation. It reads the files; a file that cannot be read is an error.
func (c *Config) Digest() (string, error) {
	h := sha256.New()
	if c == nil {
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	b, err := json.Marshal(c.TLSConfig)
	if err != nil {
		return "", err
	}
	h.Write(b)
	files, err := c.files()
	if err != nil {
		return "", err
	}
	fd, err := FilesDigest(files...)
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	h.Write([]byte(fd))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FilesDigest is a digest of the names and current contents of files, for pool keys of
// resources that read other files than the TLS configuration's (a signing key, say).
func FilesDigest(files ...string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "\x00%s\x00%x", f, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkCAFiles refuses a CA file without a certificate: Caddy's file pool would load it as an
// empty pool, which trusts nothing and fails every handshake with a message about the peer.
func (c *Config) checkCAFiles() error {
	files := slices.Clone(c.RootCAPEMFiles)
	if pool, err := c.filePool(); err != nil {
		return err
	} else if pool != nil {
		files = append(files, pool...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("tls: trust pool: %w", err)
		}
		found := false
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type == "CERTIFICATE" {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("tls: trust pool: %s holds no PEM certificate", f)
		}
	}
	return nil
}

// filePool returns the files of a tls.ca_pool.source.file trust pool (nil for other sources).
func (c *Config) filePool() ([]string, error) {
	if len(c.CARaw) == 0 {
		return nil, nil
	}
	var pool struct {
		Provider string   `json:"provider"`
		PEMFiles []string `json:"pem_files"`
	}
	if err := json.Unmarshal(c.CARaw, &pool); err != nil {
		return nil, fmt.Errorf("tls: ca: %w", err)
	}
	if pool.Provider != "file" {
		return nil, nil
	}
	return pool.PEMFiles, nil
}

// files are the files the configuration reads. Trust pools of other sources than files hold
// their certificates in the configuration itself (inline) or fetch them (http, storage) and are
// covered by the JSON.
func (c *Config) files() ([]string, error) {
	var out []string
	if c.ClientCertificateFile != "" {
		out = append(out, c.ClientCertificateFile)
	}
	if c.ClientCertificateKeyFile != "" {
		out = append(out, c.ClientCertificateKeyFile)
	}
	out = append(out, c.RootCAPEMFiles...)
	pool, err := c.filePool()
	return append(out, pool...), err
}

// UnmarshalCaddyfileOption parses one tls_* option at the dispenser's position into *c
// (allocating it) and reports whether it was one. The options and their arguments are those of
// reverse_proxy's http transport.
func UnmarshalCaddyfileOption(d *caddyfile.Dispenser, c **Config) (bool, error) {
	name := d.Val()
	switch name {
	case "tls_trust_pool", "tls_client_auth", "tls_server_name", "tls_timeout",
		"tls_insecure_skip_verify", "tls_curves", "tls_renegotiation", "tls_trusted_ca_certs":
	default:
		return false, nil
	}
	if *c == nil {
		*c = new(Config)
	}
	t := *c
	switch name {
	case "tls_trust_pool":
		if !d.NextArg() {
			return true, d.ArgErr()
		}
		stem := d.Val()
		id := "tls.ca_pool.source." + stem
		unm, err := caddyfile.UnmarshalModule(d, id)
		if err != nil {
			return true, err
		}
		if _, ok := unm.(caddytls.CA); !ok {
			return true, d.Errf("module %s is not a certificate pool source", id)
		}
		if len(t.CARaw) > 0 {
			return true, d.Err("tls_trust_pool is set twice")
		}
		t.CARaw = caddyconfig.JSONModuleObject(unm, "provider", stem, nil)
	case "tls_trusted_ca_certs":
		caddy.Log().Named("dcr").Warn("tls_trusted_ca_certs is deprecated; use tls_trust_pool file <pem>...")
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		if err := t.AddTrustedFiles(args...); err != nil {
			return true, d.Err(err.Error())
		}
	case "tls_client_auth":
		args := d.RemainingArgs()
		switch len(args) {
		case 1:
			t.ClientCertificateAutomate = args[0]
		case 2:
			t.SetClientCertificate(args[0], args[1])
		default:
			return true, d.Errf("tls_client_auth takes <cert_file> <key_file> or one automate name")
		}
	case "tls_server_name":
		if !d.AllArgs(&t.ServerName) {
			return true, d.ArgErr()
		}
	case "tls_timeout":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil || dur < 0 {
			return true, d.Errf("tls_timeout: bad duration %q", v)
		}
		t.HandshakeTimeout = caddy.Duration(dur)
	case "tls_insecure_skip_verify":
		if d.NextArg() {
			return true, d.ArgErr()
		}
		t.InsecureSkipVerify = true
	case "tls_curves":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		t.Curves = args
	case "tls_renegotiation":
		var v string
		if !d.AllArgs(&v) {
			return true, d.ArgErr()
		}
		switch v {
		case "never", "once", "freely":
			t.Renegotiation = v
		default:
			return true, d.Errf("tls_renegotiation must be never, once or freely")
		}
	}
	return true, nil
}
