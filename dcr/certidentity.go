package dcr

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"strings"
)

// OIDOrganizationIdentifier is the X.520 organizationIdentifier attribute type (2.5.4.97),
// where eIDAS (ETSI EN 319 412-1) certificates name the organisation: PSDGB-OB-<org_id>.
var OIDOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// OrganizationIdentifier is the first organizationIdentifier of the certificate's subject,
// as it is written there (PSDGB-OB-<org_id>), or "" when it has none.
func OrganizationIdentifier(cert *x509.Certificate) string {
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(OIDOrganizationIdentifier) {
			if s, ok := atv.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

// CertificateIdentity returns the organisation and software a TPP transport certificate was
// issued to. OB directory certificates carry the org_id in OU and the software_id in CN
// (`C=GB, O=OpenBanking, OU=<org_id>, CN=<software_id>`); eIDAS-style certificates carry the
// organisation in organizationIdentifier (`PSDGB-OB-<org_id>` and similar), which is used when
// there is no OU.
func CertificateIdentity(cert *x509.Certificate) (orgID, softwareID string) {
	if cert == nil {
		return "", ""
	}
	softwareID = cert.Subject.CommonName
	if len(cert.Subject.OrganizationalUnit) > 0 {
		return cert.Subject.OrganizationalUnit[0], softwareID
	}
	if s := OrganizationIdentifier(cert); s != "" {
		// PSD2 form: 2-letter type, 2-letter country, authority, id: PSDGB-OB-<id>.
		if i := strings.LastIndex(s, "-"); i >= 0 && strings.Count(s, "-") >= 2 {
			return s[i+1:], softwareID
		}
		return s, softwareID
	}
	return "", softwareID
}

// CertificateThumbprint is the RFC 8705 x5t#S256 of a certificate: the base64url SHA-256 of
// its DER encoding.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
