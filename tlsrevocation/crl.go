package tlsrevocation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// crl is a parsed CRL with its revoked serial numbers indexed.
type crl struct {
	list    *x509.RevocationList
	revoked map[string]x509.RevocationListEntry // by serial number, hex

	mu       sync.Mutex
	verified map[[32]byte]error // CheckSignatureFrom per issuer certificate
}

// parseCRL reads a DER or PEM ("X509 CRL") CRL. A CRL past its nextUpdate is refused: it no
// longer says anything about the present.
func parseCRL(data []byte, now time.Time) (*crl, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not an X509 CRL", block.Type)
		}
		data = block.Bytes
	}
	list, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, err
	}
	if !list.NextUpdate.IsZero() && !now.Before(list.NextUpdate) {
		return nil, fmt.Errorf("the CRL expired at %s (its nextUpdate)", list.NextUpdate.UTC().Format(time.RFC3339))
	}
	c := &crl{list: list, revoked: make(map[string]x509.RevocationListEntry, len(list.RevokedCertificateEntries)), verified: make(map[[32]byte]error)}
	for _, e := range list.RevokedCertificateEntries {
		c.revoked[e.SerialNumber.Text(16)] = e
	}
	return c, nil
}

// covers reports whether the CRL is from cert's issuer (by name; the signature is checked by
// verifiedBy).
func (c *crl) covers(cert *x509.Certificate) bool {
	return bytes.Equal(c.list.RawIssuer, cert.RawIssuer)
}

// verifiedBy checks the CRL's signature with issuer once per issuer certificate.
func (c *crl) verifiedBy(issuer *x509.Certificate) error {
	key := sha256.Sum256(issuer.Raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err, ok := c.verified[key]; ok {
		return err
	}
	err := c.list.CheckSignatureFrom(issuer)
	if err != nil {
		err = fmt.Errorf("the CRL is not signed by the certificate's issuer: %w", err)
	}
	c.verified[key] = err
	return err
}

// answer is what the CRL says about cert.
func (c *crl) answer(cert *x509.Certificate, src Source) *Answer {
	e, revoked := c.revoked[cert.SerialNumber.Text(16)]
	a := &Answer{Source: src}
	if revoked {
		a.Revoked, a.RevokedAt, a.Reason = true, e.RevocationTime, e.ReasonCode
	}
	return a
}

// crlFromURL returns the CRL at rawURL, from the cache or fetched.
func (ch *Checker) crlFromURL(ctx context.Context, rawURL string) (*crl, error) {
	return ch.cachedCRL(ctx, "crl "+rawURL, func(ctx context.Context) ([]byte, error) {
		return ch.fetch.get(ctx, rawURL)
	})
}

// crlFromFile returns the CRL in path. The file's size and modification time are part of the
// cache key, so a CRL written after the gateway started (a new CRL from the CA, `caddy dcr
// sandbox revoke`) is read at the next handshake.
func (ch *Checker) crlFromFile(ctx context.Context, path string) (*crl, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("file %s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
	return ch.cachedCRL(ctx, key, func(context.Context) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, ch.fetch.maxBytes+1))
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > ch.fetch.maxBytes {
			return nil, fmt.Errorf("larger than %d bytes", ch.fetch.maxBytes)
		}
		return data, nil
	})
}

// cachedCRL returns the CRL cached under key, or reads it with read, parses it and caches it
// until its nextUpdate.
func (ch *Checker) cachedCRL(ctx context.Context, key string, read func(context.Context) ([]byte, error)) (*crl, error) {
	v, err := ch.cache.get(ctx, key, func(ctx context.Context) (any, time.Time, error) {
		data, err := read(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		c, err := parseCRL(data, ch.cache.now())
		if err != nil {
			return nil, time.Time{}, err
		}
		return c, c.list.NextUpdate, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*crl), nil
}
