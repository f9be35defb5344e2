package tlsrevocation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspLeeway is how far in the future an OCSP response's thisUpdate may be (clock skew
// between the responder and the gateway).
const ocspLeeway = 5 * time.Minute

// errOCSPUnknown is a responder's "unknown" status: it does not know the certificate, which
// is no answer.
var errOCSPUnknown = errors.New("the responder answered unknown")

// ocspAnswer asks the responder at rawURL about cert, or takes its answer from the cache.
func (ch *Checker) ocspAnswer(ctx context.Context, rawURL string, cert, issuer *x509.Certificate) (*Answer, error) {
	issuerKey := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	key := "ocsp " + rawURL + " " + hex.EncodeToString(issuerKey[:]) + " " + cert.SerialNumber.Text(16)
	v, err := ch.cache.get(ctx, key, func(ctx context.Context) (any, time.Time, error) {
		req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
		if err != nil {
			return nil, time.Time{}, err
		}
		body, err := ch.fetch.post(ctx, rawURL, req)
		if err != nil {
			return nil, time.Time{}, err
		}
		resp, err := parseOCSP(body, cert, issuer, ch.cache.now())
		if err != nil {
			return nil, time.Time{}, err
		}
		return resp, resp.NextUpdate, nil
	})
	if err != nil {
		return nil, err
	}
	resp := v.(*ocsp.Response)
	src := Source{Kind: SourceOCSP, Location: rawURL}
	switch resp.Status {
	case ocsp.Good:
		return &Answer{Source: src}, nil
	case ocsp.Revoked:
		return &Answer{Source: src, Revoked: true, RevokedAt: resp.RevokedAt, Reason: resp.RevocationReason}, nil
	default:
		return nil, errOCSPUnknown
	}
}

// parseOCSP checks an OCSP response for cert: signed by the issuer, or by a responder
// certificate the issuer signed for OCSP signing (RFC 6960 §4.2.2.2), current, and about
// this serial number.
func parseOCSP(body []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		return nil, err
	}
	if rc := resp.Certificate; rc != nil && !rc.Equal(issuer) {
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, errors.New("the responder certificate is not authorised for OCSP signing")
		}
		if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
			return nil, errors.New("the responder certificate is not valid now")
		}
	}
	if resp.ThisUpdate.After(now.Add(ocspLeeway)) {
		return nil, fmt.Errorf("the response's thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate) {
		return nil, fmt.Errorf("the response expired at %s (its nextUpdate)", resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	return resp, nil
}
