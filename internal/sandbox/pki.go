package sandbox

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity periods. Leaves start an hour in the past so that small clock skew between the
// machine that built the sandbox and the gateway does not make fresh certificates "not yet valid".
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	backdate     = time.Hour
)

// issuer is a CA certificate with its key, able to sign leaves.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newECKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func newRSAKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// createCert signs template with parent (or self-signs it when parent is nil).
func createCert(template *x509.Certificate, pub crypto.PublicKey, parent *issuer, selfKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	template.SerialNumber = serial
	if template.NotBefore.IsZero() {
		template.NotBefore = time.Now().Add(-backdate)
	}
	parentCert, signer := template, selfKey
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parentCert, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newRootCA() (*issuer, error) {
	key, err := newECKey()
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-backdate)
	cert, err := createCert(&x509.Certificate{
		Subject:               pkix.Name{Country: []string{"GB"}, Organization: []string{"OpenBanking"}, CommonName: "OpenBanking Sandbox Root CA"},
		NotBefore:             now,
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, key.Public(), nil, key)
	if err != nil {
		return nil, fmt.Errorf("root CA: %w", err)
	}
	return &issuer{cert: cert, key: key}, nil
}

func newIssuingCA(root *issuer) (*issuer, error) {
	key, err := newECKey()
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-backdate)
	cert, err := createCert(&x509.Certificate{
		Subject:               pkix.Name{Country: []string{"GB"}, Organization: []string{"OpenBanking"}, CommonName: "OpenBanking Sandbox Issuing CA"},
		NotBefore:             now,
		NotAfter:              now.Add(caValidity - time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, key.Public(), root, nil)
	if err != nil {
		return nil, fmt.Errorf("issuing CA: %w", err)
	}
	return &issuer{cert: cert, key: key}, nil
}

// newServerCert issues the gateway's TLS certificate. host is added to the SANs as an IP
// address if it parses as one, else as a DNS name.
func newServerCert(ca *issuer, host string) (*x509.Certificate, crypto.Signer, error) {
	key, err := newECKey()
	if err != nil {
		return nil, nil, err
	}
	dns := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip != nil {
			if !ip.Equal(ips[0]) && !ip.Equal(ips[1]) {
				ips = append(ips, ip)
			}
		} else {
			dns = append(dns, host)
		}
	}
	now := time.Now().Add(-backdate)
	cert, err := createCert(&x509.Certificate{
		Subject:     pkix.Name{Country: []string{"GB"}, Organization: []string{"dcrgate sandbox"}, CommonName: dns[len(dns)-1]},
		NotBefore:   now,
		NotAfter:    now.Add(leafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}, key.Public(), ca, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	return cert, key, nil
}

// TransportSubject is the subject OB gives a TPP's transport certificate.
func TransportSubject(orgID, softwareID string) pkix.Name {
	return pkix.Name{
		Country:            []string{"GB"},
		Organization:       []string{"OpenBanking"},
		OrganizationalUnit: []string{orgID},
		CommonName:         softwareID,
	}
}

// newTransportCert issues a TPP's mTLS certificate. crlURL and ocspURL, when not empty, go
// into its CRL Distribution Points and Authority Information Access extensions, where a
// revocation checker finds them.
func newTransportCert(ca *issuer, orgID, softwareID, crlURL, ocspURL string) (*x509.Certificate, crypto.Signer, error) {
	key, err := newECKey()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().Add(-backdate)
	template := &x509.Certificate{
		Subject:     TransportSubject(orgID, softwareID),
		NotBefore:   now,
		NotAfter:    now.Add(leafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if crlURL != "" {
		template.CRLDistributionPoints = []string{crlURL}
	}
	if ocspURL != "" {
		template.OCSPServer = []string{ocspURL}
	}
	cert, err := createCert(template, key.Public(), ca, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("transport certificate: %w", err)
	}
	return cert, key, nil
}

// --- PEM files ---

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile writes data to path, creating parent directories. Private material gets 0600.
func writeFile(path string, data []byte, private bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if private {
		mode = 0o600
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	// WriteFile keeps the mode of an existing file (Force re-init); make it exact.
	return os.Chmod(path, mode)
}

func writeKey(path string, key crypto.Signer) error {
	data, err := keyPEM(key)
	if err != nil {
		return err
	}
	return writeFile(path, data, true)
}

// ReadCertificates reads every CERTIFICATE block of a PEM file, leaf first.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return certs, nil
}

// ReadPrivateKey reads a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func ReadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no private key", path)
		}
		var key any
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: unsupported key type %T", path, key)
		}
		return signer, nil
	}
}

var errNotRSA = errors.New("not an RSA key")

func readRSAKey(path string) (*rsa.PrivateKey, error) {
	k, err := ReadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, errNotRSA)
	}
	return rk, nil
}
