package sandbox

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/cert"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// DirectoryIssuer is the iss of every sandbox SSA, as in the OB directory.
const DirectoryIssuer = "OpenBanking Ltd"

// Defaults of Options.
const (
	DefaultHost    = "localhost"
	DefaultBaseURL = "https://localhost:8443"
)

// ErrExists is returned by Init when Dir already holds a sandbox and Options.Force is false.
var ErrExists = errors.New("sandbox: directory already contains a sandbox")

// Names of the files and directories of the layout, relative to the sandbox directory.
const (
	manifestFile   = "sandbox.json"
	rootCAFile     = "ca/root.pem"
	issuingCAFile  = "ca/issuing.pem"
	issuingKeyFile = "ca/issuing.key"
	caBundleFile   = "ca/bundle.pem"
	serverCertFile = "server/cert.pem"
	serverKeyFile  = "server/key.pem"
	dirKeyFile     = "directory/signing.key"
	dirJWKSFile    = "directory/jwks.json"
	jwksDir        = "jwks"
	tppsDir        = "tpps"
	crlDir         = "crl"
	issuingCRLFile = "crl/issuing.crl"
)

// managedEntries are what Init writes at the top of the sandbox directory; Force removes them
// (and nothing else, so a sandbox can share a directory with e.g. a Caddyfile).
var managedEntries = []string{manifestFile, "ca", "server", "directory", jwksDir, tppsDir, crlDir}

// Options configure Init.
type Options struct {
	// Dir is where the sandbox is written (created if missing).
	Dir string
	// TPPs is how many TPPs to create; 0 means 1.
	TPPs int
	// Host is added to the server certificate SANs; default "localhost".
	Host string
	// BaseURL is where the gateway serves the sandbox JWKS files ({BaseURL}/sandbox/jwks/...);
	// it goes into the SSA JWKS endpoint claims. Default "https://localhost:8443".
	BaseURL string
	// OCSPURL, when set, goes into the Authority Information Access extension of the
	// transport certificates (an OCSP responder the sandbox does not run: tests bring their
	// own, signing with ca/issuing.key).
	OCSPURL string
	// Force overwrites an existing sandbox in Dir.
	Force bool
}

// Files are the absolute paths of the sandbox-wide files.
type Files struct {
	RootCA        string `json:"root_ca"`
	IssuingCA     string `json:"issuing_ca"`
	IssuingKey    string `json:"issuing_key"`
	CABundle      string `json:"ca_bundle"`
	ServerCert    string `json:"server_cert"`
	ServerKey     string `json:"server_key"`
	DirectoryKey  string `json:"directory_key"`
	DirectoryJWKS string `json:"directory_jwks"`
	// JWKSDir is the directory served at {BaseURL}/sandbox/jwks/.
	JWKSDir string `json:"jwks_dir"`
	// CRLDir is the directory served at {BaseURL}/sandbox/crl/; IssuingCRL (DER) in it is
	// the issuing CA's CRL, the CRL distribution point of the transport certificates.
	CRLDir     string `json:"crl_dir"`
	IssuingCRL string `json:"issuing_crl"`
}

// Sandbox is an initialised (or loaded) sandbox. All paths are absolute.
type Sandbox struct {
	Dir             string
	DirectoryIssuer string
	// DirectoryKID is the kid of the directory signing key (RFC 7638 SHA-256 thumbprint).
	DirectoryKID string
	Host         string
	BaseURL      string
	// OCSPURL is the OCSP responder named in the transport certificates ("" for none).
	OCSPURL string
	Files   Files
	TPPs    []*TPP

	directoryKey *rsa.PrivateKey
	issuingCA    *issuer
}

// TPP is one third-party provider of the sandbox: one organisation with one piece of software.
// File paths are absolute in memory and relative to the sandbox directory in tpp.json.
type TPP struct {
	Index       int    `json:"index"`
	OrgID       string `json:"org_id"`
	OrgName     string `json:"org_name"`
	SoftwareID  string `json:"software_id"`
	ClientName  string `json:"client_name"`
	Description string `json:"description"`
	// ClientURI is the software_client_uri; the redirect, logo, policy and ToS URIs live under it.
	ClientURI string `json:"client_uri"`

	Dir           string `json:"dir"`
	TransportCert string `json:"transport_cert"`
	TransportKey  string `json:"transport_key"`
	SigningKey    string `json:"signing_key"`
	SigningKeyEC  string `json:"signing_key_ec"`
	SSAFile       string `json:"ssa_file"`
	JWKSFile      string `json:"jwks_file"`
	OrgJWKSFile   string `json:"org_jwks_file"`

	// TransportSubjectDN is the transport certificate's Subject.String(), the
	// tls_client_auth_subject_dn the TPP registers with.
	TransportSubjectDN string `json:"transport_subject_dn"`
	// TransportKID is the kid of the transport key in the JWKS (use "tls").
	TransportKID string `json:"transport_kid"`
	// TransportSerial is the transport certificate's serial number in hex.
	TransportSerial string `json:"transport_serial"`
	// SigningKID / SigningKIDEC are the kids of the PS256 and ES256 signing keys.
	SigningKID   string `json:"signing_kid"`
	SigningKIDEC string `json:"signing_kid_ec"`

	JWKSURL           string   `json:"jwks_url"`
	JWKSRevokedURL    string   `json:"jwks_revoked_url"`
	OrgJWKSURL        string   `json:"org_jwks_url"`
	OrgJWKSRevokedURL string   `json:"org_jwks_revoked_url"`
	RedirectURIs      []string `json:"redirect_uris"`
	Roles             []string `json:"roles"`
}

type manifest struct {
	Version         int       `json:"version"`
	DirectoryIssuer string    `json:"directory_issuer"`
	DirectoryKID    string    `json:"directory_kid"`
	Host            string    `json:"host"`
	BaseURL         string    `json:"base_url"`
	OCSPURL         string    `json:"ocsp_url,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	// Files are relative to the sandbox directory; informational (Load uses the fixed layout).
	Files Files `json:"files"`
}

// Init creates a sandbox in opts.Dir. It refuses to touch a directory that already holds
// sandbox files unless opts.Force, in which case only those files are replaced.
func Init(opts Options) (*Sandbox, error) {
	if opts.Dir == "" {
		return nil, errors.New("sandbox: Dir is required")
	}
	if opts.TPPs < 0 {
		return nil, errors.New("sandbox: TPPs must not be negative")
	}
	if opts.TPPs == 0 {
		opts.TPPs = 1
	}
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	for _, name := range managedEntries {
		_, err := os.Lstat(filepath.Join(dir, name))
		if err == nil && !opts.Force {
			return nil, fmt.Errorf("%w: %s", ErrExists, filepath.Join(dir, name))
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if opts.Force {
		for _, name := range managedEntries {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	s := &Sandbox{
		Dir:             dir,
		DirectoryIssuer: DirectoryIssuer,
		Host:            opts.Host,
		BaseURL:         strings.TrimRight(opts.BaseURL, "/"),
		OCSPURL:         opts.OCSPURL,
		Files:           layoutFiles(dir),
	}

	root, err := newRootCA()
	if err != nil {
		return nil, err
	}
	if s.issuingCA, err = newIssuingCA(root); err != nil {
		return nil, err
	}
	if err := writeFile(s.Files.RootCA, certPEM(root.cert), false); err != nil {
		return nil, err
	}
	if err := writeFile(s.Files.IssuingCA, certPEM(s.issuingCA.cert), false); err != nil {
		return nil, err
	}
	if err := writeKey(s.Files.IssuingKey, s.issuingCA.key); err != nil {
		return nil, err
	}
	if err := writeFile(s.Files.CABundle, certPEM(root.cert, s.issuingCA.cert), false); err != nil {
		return nil, err
	}
	if err := s.writeCRL(nil, 1); err != nil {
		return nil, err
	}

	serverCert, serverKey, err := newServerCert(s.issuingCA, opts.Host)
	if err != nil {
		return nil, err
	}
	if err := writeFile(s.Files.ServerCert, certPEM(serverCert, s.issuingCA.cert), false); err != nil {
		return nil, err
	}
	if err := writeKey(s.Files.ServerKey, serverKey); err != nil {
		return nil, err
	}

	if s.directoryKey, err = newRSAKey(); err != nil {
		return nil, err
	}
	dirPub, err := publicJWK(s.directoryKey.Public(), "sig", jwa.PS256)
	if err != nil {
		return nil, err
	}
	s.DirectoryKID = dirPub.KeyID()
	if err := writeKey(s.Files.DirectoryKey, s.directoryKey); err != nil {
		return nil, err
	}
	if err := writeJWKS(s.Files.DirectoryJWKS, dirPub); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Files.JWKSDir, 0o755); err != nil {
		return nil, err
	}

	if err := s.writeManifest(); err != nil {
		return nil, err
	}
	for i := 0; i < opts.TPPs; i++ {
		if _, err := s.NewTPP(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func layoutFiles(dir string) Files {
	p := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	return Files{
		RootCA:        p(rootCAFile),
		IssuingCA:     p(issuingCAFile),
		IssuingKey:    p(issuingKeyFile),
		CABundle:      p(caBundleFile),
		ServerCert:    p(serverCertFile),
		ServerKey:     p(serverKeyFile),
		DirectoryKey:  p(dirKeyFile),
		DirectoryJWKS: p(dirJWKSFile),
		JWKSDir:       p(jwksDir),
		CRLDir:        p(crlDir),
		IssuingCRL:    p(issuingCRLFile),
	}
}

func (s *Sandbox) writeManifest() error {
	m := manifest{
		Version:         1,
		DirectoryIssuer: s.DirectoryIssuer,
		DirectoryKID:    s.DirectoryKID,
		Host:            s.Host,
		BaseURL:         s.BaseURL,
		OCSPURL:         s.OCSPURL,
		CreatedAt:       time.Now().UTC().Truncate(time.Second),
		Files:           layoutFiles("."),
	}
	return writeJSON(filepath.Join(s.Dir, manifestFile), m, false)
}

// Load reads a sandbox written by Init.
func Load(dir string) (*Sandbox, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := readJSON(filepath.Join(dir, manifestFile), &m); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &Sandbox{
		Dir:             dir,
		DirectoryIssuer: m.DirectoryIssuer,
		DirectoryKID:    m.DirectoryKID,
		Host:            m.Host,
		BaseURL:         m.BaseURL,
		OCSPURL:         m.OCSPURL,
		Files:           layoutFiles(dir),
	}
	if s.directoryKey, err = readRSAKey(s.Files.DirectoryKey); err != nil {
		return nil, fmt.Errorf("sandbox: directory key: %w", err)
	}
	certs, err := ReadCertificates(s.Files.IssuingCA)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	key, err := ReadPrivateKey(s.Files.IssuingKey)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s.issuingCA = &issuer{cert: certs[0], key: key}

	entries, err := os.ReadDir(filepath.Join(dir, tppsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var t TPP
		if err := readJSON(filepath.Join(dir, tppsDir, e.Name(), "tpp.json"), &t); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		t.resolvePaths(dir)
		s.TPPs = append(s.TPPs, &t)
	}
	sort.Slice(s.TPPs, func(i, j int) bool { return s.TPPs[i].Index < s.TPPs[j].Index })
	return s, nil
}

// TPP returns the TPP with the given index (from 1), or nil.
func (s *Sandbox) TPP(index int) *TPP {
	for _, t := range s.TPPs {
		if t.Index == index {
			return t
		}
	}
	return nil
}

// NewTPP creates one more TPP (next index) on disk, with its own org, software, keys, JWKS and
// SSA, and appends it to s.TPPs.
func (s *Sandbox) NewTPP() (*TPP, error) {
	index := 1
	for _, t := range s.TPPs {
		if t.Index >= index {
			index = t.Index + 1
		}
	}
	orgID, err := NewOrgID()
	if err != nil {
		return nil, err
	}
	softwareID, err := NewSoftwareID()
	if err != nil {
		return nil, err
	}
	n := strconv.Itoa(index)
	dir := filepath.Join(s.Dir, tppsDir, n)
	clientURI := "https://tpp" + n + ".example.com"
	t := &TPP{
		Index:         index,
		OrgID:         orgID,
		OrgName:       "Sandbox TPP " + n + " Ltd",
		SoftwareID:    softwareID,
		ClientName:    "Sandbox TPP " + n + " App",
		Description:   "Test software of sandbox TPP " + n,
		ClientURI:     clientURI,
		Dir:           dir,
		TransportCert: filepath.Join(dir, "transport.pem"),
		TransportKey:  filepath.Join(dir, "transport.key"),
		SigningKey:    filepath.Join(dir, "signing.key"),
		SigningKeyEC:  filepath.Join(dir, "signing-ec.key"),
		SSAFile:       filepath.Join(dir, "ssa.jwt"),
		JWKSFile:      filepath.Join(s.Files.JWKSDir, softwareID+".json"),
		OrgJWKSFile:   filepath.Join(s.Files.JWKSDir, orgID+".org.json"),

		JWKSURL:           s.BaseURL + "/sandbox/jwks/" + softwareID + ".json",
		JWKSRevokedURL:    s.BaseURL + "/sandbox/jwks/" + softwareID + ".revoked.json",
		OrgJWKSURL:        s.BaseURL + "/sandbox/jwks/" + orgID + ".org.json",
		OrgJWKSRevokedURL: s.BaseURL + "/sandbox/jwks/" + orgID + ".org.revoked.json",
		RedirectURIs:      []string{clientURI + "/callback", clientURI + "/cb2"},
		Roles:             []string{"AISP", "PISP", "CBPII"},
	}

	// A sandbox made before CRLs existed gets its (empty) CRL now, so the distribution point
	// of the new certificate answers.
	if err := s.ensureCRL(); err != nil {
		return nil, err
	}
	transportCert, transportKey, err := newTransportCert(s.issuingCA, orgID, softwareID, s.CRLURL(), s.OCSPURL)
	if err != nil {
		return nil, err
	}
	t.TransportSubjectDN = transportCert.Subject.String()
	t.TransportSerial = SerialHex(transportCert)
	rsaKey, err := newRSAKey()
	if err != nil {
		return nil, err
	}
	ecKey, err := newECKey()
	if err != nil {
		return nil, err
	}

	sigRSA, err := publicJWK(rsaKey.Public(), "sig", jwa.PS256)
	if err != nil {
		return nil, err
	}
	sigEC, err := publicJWK(ecKey.Public(), "sig", jwa.ES256)
	if err != nil {
		return nil, err
	}
	tlsKey, err := publicJWK(transportKey.Public(), "tls", "")
	if err != nil {
		return nil, err
	}
	// The OB directory publishes the transport certificate in the software JWKS; gateways
	// that check the presented certificate against the JWKS find it by x5t#S256.
	if err := addX5C(tlsKey, transportCert, s.issuingCA.cert); err != nil {
		return nil, err
	}
	t.SigningKID, t.SigningKIDEC, t.TransportKID = sigRSA.KeyID(), sigEC.KeyID(), tlsKey.KeyID()

	if err := writeFile(t.TransportCert, certPEM(transportCert, s.issuingCA.cert), false); err != nil {
		return nil, err
	}
	for path, key := range map[string]crypto.Signer{t.TransportKey: transportKey, t.SigningKey: rsaKey, t.SigningKeyEC: ecKey} {
		if err := writeKey(path, key); err != nil {
			return nil, err
		}
	}
	for _, path := range []string{t.JWKSFile, t.OrgJWKSFile} {
		if err := writeJWKS(path, sigRSA, sigEC, tlsKey); err != nil {
			return nil, err
		}
	}
	for _, path := range []string{
		filepath.Join(s.Files.JWKSDir, softwareID+".revoked.json"),
		filepath.Join(s.Files.JWKSDir, orgID+".org.revoked.json"),
	} {
		if err := writeJWKS(path); err != nil {
			return nil, err
		}
	}

	ssa, err := s.SignSSA(s.SSAClaims(t))
	if err != nil {
		return nil, err
	}
	if err := writeFile(t.SSAFile, []byte(ssa+"\n"), false); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, "tpp.json"), t.relativeTo(s.Dir), false); err != nil {
		return nil, err
	}
	s.TPPs = append(s.TPPs, t)
	return t, nil
}

// AddTPPs creates n more TPPs (NewTPP n times) with the sandbox's CA, directory key and base
// URL as they are: the trust a gateway was configured with stays valid.
func (s *Sandbox) AddTPPs(n int) ([]*TPP, error) {
	if n < 1 {
		return nil, errors.New("sandbox: at least one TPP must be added")
	}
	added := make([]*TPP, 0, n)
	for i := 0; i < n; i++ {
		t, err := s.NewTPP()
		if err != nil {
			return added, err
		}
		added = append(added, t)
	}
	return added, nil
}

// SSA reads the TPP's stored software statement.
func (t *TPP) SSA() (string, error) {
	b, err := os.ReadFile(t.SSAFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (t *TPP) pathFields() []*string {
	return []*string{&t.Dir, &t.TransportCert, &t.TransportKey, &t.SigningKey, &t.SigningKeyEC, &t.SSAFile, &t.JWKSFile, &t.OrgJWKSFile}
}

// relativeTo returns a copy with paths relative to base, in slash form, for tpp.json.
func (t *TPP) relativeTo(base string) *TPP {
	c := *t
	for _, p := range c.pathFields() {
		if rel, err := filepath.Rel(base, *p); err == nil {
			*p = filepath.ToSlash(rel)
		}
	}
	return &c
}

func (t *TPP) resolvePaths(base string) {
	for _, p := range t.pathFields() {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, filepath.FromSlash(*p))
		}
	}
}

// SSAClaims returns the default OB software statement claims for t, with a fresh iat and jti.
// Callers may change the map before SignSSA to make bad statements.
func (s *Sandbox) SSAClaims(t *TPP) map[string]any {
	n := strconv.Itoa(t.Index)
	return map[string]any{
		"iss":                         s.DirectoryIssuer,
		"iat":                         time.Now().Unix(),
		"jti":                         uuid.NewString(),
		"software_environment":        "sandbox",
		"software_mode":               "Test",
		"software_id":                 t.SoftwareID,
		"software_client_id":          t.SoftwareID,
		"software_client_name":        t.ClientName,
		"software_client_description": t.Description,
		"software_version":            "1.0",
		"software_client_uri":         t.ClientURI,
		"software_redirect_uris":      append([]string(nil), t.RedirectURIs...),
		"software_roles":              append([]string(nil), t.Roles...),
		"software_logo_uri":           t.ClientURI + "/logo.png",
		"org_status":                  "Active",
		"org_id":                      t.OrgID,
		"org_name":                    t.OrgName,
		"org_contacts": []any{
			map[string]any{"name": "Technical", "email": "tech@tpp" + n + ".example.com", "phone": "+447700900000", "type": "Technical"},
			map[string]any{"name": "Business", "email": "business@tpp" + n + ".example.com", "phone": "+447700900001", "type": "Business"},
		},
		"org_jwks_endpoint":              t.OrgJWKSURL,
		"org_jwks_revoked_endpoint":      t.OrgJWKSRevokedURL,
		"software_jwks_endpoint":         t.JWKSURL,
		"software_jwks_revoked_endpoint": t.JWKSRevokedURL,
		"software_policy_uri":            t.ClientURI + "/policy",
		"software_tos_uri":               t.ClientURI + "/tos",
		"software_on_behalf_of_org":      "",
	}
}

// SignSSA signs any claim set with the directory key (PS256, header kid and typ JWT).
func (s *Sandbox) SignSSA(claims map[string]any) (string, error) {
	if s.directoryKey == nil {
		return "", errors.New("sandbox: no directory key loaded")
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, s.DirectoryKID); err != nil {
		return "", err
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.PS256, s.directoryKey, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sandbox: signing SSA: %w", err)
	}
	return string(out), nil
}

// DirectoryJWKS returns the directory's public key set.
func (s *Sandbox) DirectoryJWKS() (jwk.Set, error) {
	b, err := os.ReadFile(s.Files.DirectoryJWKS)
	if err != nil {
		return nil, err
	}
	return jwk.Parse(b)
}

// IssuingCA returns the issuing CA certificate (e.g. to issue extra certificates in tests).
func (s *Sandbox) IssuingCA() *x509.Certificate { return s.issuingCA.cert }

// CertPool returns the sandbox trust pool (root + issuing), as in ca/bundle.pem.
func (s *Sandbox) CertPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(s.Files.CABundle)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("sandbox: %s: no certificates", s.Files.CABundle)
	}
	return pool, nil
}

// publicJWK builds a public JWK with kid = RFC 7638 SHA-256 thumbprint (base64url).
func publicJWK(pub crypto.PublicKey, use string, alg jwa.SignatureAlgorithm) (jwk.Key, error) {
	k, err := jwk.FromRaw(pub)
	if err != nil {
		return nil, err
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if err := k.Set(jwk.KeyIDKey, base64.RawURLEncoding.EncodeToString(tp)); err != nil {
		return nil, err
	}
	if err := k.Set(jwk.KeyUsageKey, use); err != nil {
		return nil, err
	}
	if alg != "" {
		if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func addX5C(k jwk.Key, chain ...*x509.Certificate) error {
	var c cert.Chain
	for _, crt := range chain {
		if err := c.Add([]byte(base64.StdEncoding.EncodeToString(crt.Raw))); err != nil {
			return err
		}
	}
	if err := k.Set(jwk.X509CertChainKey, &c); err != nil {
		return err
	}
	sum := sha256Sum(chain[0].Raw)
	return k.Set(jwk.X509CertThumbprintS256Key, base64.RawURLEncoding.EncodeToString(sum))
}

func writeJWKS(path string, keys ...jwk.Key) error {
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			return err
		}
	}
	return writeJSON(path, set, false)
}

func writeJSON(path string, v any, private bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'), private)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
