package jose

import (
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// ecdsaSignatureSize is the JWS signature length per ES* alg: R and S, each as wide as the
// curve's order, concatenated (RFC 7518 §3.4).
var ecdsaSignatureSize = map[jwa.SignatureAlgorithm]int{jwa.ES256: 64, jwa.ES384: 96, jwa.ES512: 132}

// derSignatureHint explains an ES* signature that failed and is shaped like an ASN.1 DER
// ECDSA-Sig-Value (what `openssl dgst -sign`, Go's ecdsa.SignASN1 and most HSM and KMS APIs
// produce), so that a TPP learns what to change instead of only "bad signature". It is
// only asked after verification failed, and it returns "" for anything else.
func derSignatureHint(alg jwa.SignatureAlgorithm, sig []byte) string {
	size, ok := ecdsaSignatureSize[alg]
	if !ok || len(sig) == size || len(sig) < 8 || sig[0] != 0x30 {
		return ""
	}
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 || v.R == nil || v.S == nil || v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return ""
	}
	return fmt.Sprintf("the signature is ASN.1 DER (%d bytes); JWS wants R‖S, %d bytes for %s "+
		"(RFC 7518 §3.4: R and S as %d-byte big-endian integers, concatenated)", len(sig), size, alg, size/2)
}
