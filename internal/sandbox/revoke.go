package sandbox

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// crlValidity is the nextUpdate of the sandbox CRL after its thisUpdate. Long, so that an
// idle sandbox does not make a hard-failing gateway refuse every TPP; gateways that must see
// a revocation sooner refetch earlier (the verifier's cache_max_age).
const crlValidity = 30 * 24 * time.Hour

// Revocation reasons (RFC 5280 CRLReason) that `sandbox revoke --reason` takes, by name.
var RevocationReasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3,
	"superseded": 4, "cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9,
}

// CRLURL is the CRL distribution point of the transport certificates: where the gateway of
// the example Caddyfile serves Files.IssuingCRL.
func (s *Sandbox) CRLURL() string { return s.BaseURL + "/sandbox/crl/issuing.crl" }

// SerialHex is a certificate's serial number in hex, as the revocation verifier logs it.
func SerialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// IssuingKey returns the issuing CA's private key (e.g. to sign OCSP responses in tests).
func (s *Sandbox) IssuingKey() crypto.Signer { return s.issuingCA.key }

// ReadCRL reads the issuing CA's CRL.
func (s *Sandbox) ReadCRL() (*x509.RevocationList, error) {
	der, err := os.ReadFile(s.Files.IssuingCRL)
	if err != nil {
		return nil, err
	}
	return x509.ParseRevocationList(der)
}

// writeCRL signs and writes the issuing CA's CRL (DER) with the given entries and number.
func (s *Sandbox) writeCRL(entries []x509.RevocationListEntry, number int64) error {
	now := time.Now().Add(-backdate)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                now,
		NextUpdate:                now.Add(crlValidity),
		RevokedCertificateEntries: entries,
	}, s.issuingCA.cert, s.issuingCA.key)
	if err != nil {
		return fmt.Errorf("sandbox: signing the CRL: %w", err)
	}
	return writeFile(s.Files.IssuingCRL, der, false)
}

// ensureCRL writes an empty CRL when there is none (a sandbox made before CRLs existed).
func (s *Sandbox) ensureCRL() error {
	if _, err := os.Stat(s.Files.IssuingCRL); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return s.writeCRL(nil, 1)
}

// RevokeTransportCert lists t's transport certificate on the issuing CA's CRL with reason
// (an RFC 5280 CRLReason code) and signs a new CRL with a higher number. It returns the
// certificate's serial (hex) and whether it was already listed (then nothing changes).
func (s *Sandbox) RevokeTransportCert(t *TPP, reason int) (serial string, already bool, err error) {
	certs, err := ReadCertificates(t.TransportCert)
	if err != nil {
		return "", false, err
	}
	cert := certs[0]
	if err := s.ensureCRL(); err != nil {
		return "", false, err
	}
	list, err := s.ReadCRL()
	if err != nil {
		return "", false, fmt.Errorf("sandbox: %s: %w", s.Files.IssuingCRL, err)
	}
	serial = SerialHex(cert)
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return serial, true, nil
		}
	}
	entries := append(slices.Clone(list.RevokedCertificateEntries), x509.RevocationListEntry{
		SerialNumber:   cert.SerialNumber,
		RevocationTime: time.Now().UTC().Truncate(time.Second),
		ReasonCode:     reason,
	})
	number := int64(1)
	if list.Number != nil {
		number = list.Number.Int64() + 1
	}
	return serial, false, s.writeCRL(entries, number)
}

// RevokedJWKSFiles are t's revoked key sets: the files served at its
// software_jwks_revoked_endpoint and org_jwks_revoked_endpoint.
func (t *TPP) RevokedJWKSFiles() (software, org string) {
	return strings.TrimSuffix(t.JWKSFile, ".json") + ".revoked.json", strings.TrimSuffix(t.OrgJWKSFile, ".json") + ".revoked.json"
}

// RevokeSigningKey adds the public key kid of t's software JWKS (default: the PS256 signing
// key) to both of t's revoked key sets. Like the OB directory's revoked endpoints, they are
// JWK Sets of the revoked keys, each as it was published (kid, use, alg and key material).
// The key stays in the active set, so a gateway refuses it for being revoked, not for being
// unknown. It reports whether the key was already revoked in both sets.
func (s *Sandbox) RevokeSigningKey(t *TPP, kid string) (already bool, err error) {
	if kid == "" {
		kid = t.SigningKID
	}
	data, err := os.ReadFile(t.JWKSFile)
	if err != nil {
		return false, err
	}
	active, err := jwk.Parse(data)
	if err != nil {
		return false, fmt.Errorf("sandbox: %s: %w", t.JWKSFile, err)
	}
	key, ok := active.LookupKeyID(kid)
	if !ok {
		return false, fmt.Errorf("sandbox: kid %q is not in the software JWKS of TPP %d (%s)", kid, t.Index, t.JWKSFile)
	}
	if usage := key.KeyUsage(); usage != "sig" {
		return false, fmt.Errorf("sandbox: kid %q is not a signing key (use %q); --transport-cert revokes the transport certificate", kid, usage)
	}
	swFile, orgFile := t.RevokedJWKSFiles()
	already = true
	for _, path := range []string{swFile, orgFile} {
		set := jwk.NewSet()
		if data, err := os.ReadFile(path); err == nil {
			if set, err = jwk.Parse(data); err != nil {
				return false, fmt.Errorf("sandbox: %s: %w", path, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		if _, ok := set.LookupKeyID(kid); ok {
			continue
		}
		already = false
		if err := set.AddKey(key); err != nil {
			return false, err
		}
		if err := writeJSON(path, set, false); err != nil {
			return false, err
		}
	}
	return already, nil
}
