package shopbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// HTTPS sources: where the console's certificate comes from.
const (
	TLSSelfSigned = "self-signed" // made by the daemon on first start, kept in DATA/tls
	TLSShop       = "shop"        // the shop's own, --tls-cert and --tls-key
)

// HTTPSStatus is the HTTPS listener as admin/api/status shows it (under
// "https"), the console and `shopbridge status` print it and discovery
// publishes its port and fingerprint.
type HTTPSStatus struct {
	Addr string `json:"addr"` // the bound address, e.g. "[::]:8443"
	Port int    `json:"port"`
	// Fingerprint is TLSFingerprint of the certificate served.
	Fingerprint string    `json:"fingerprint"`
	Source      string    `json:"source"` // TLSSelfSigned or TLSShop
	CertFile    string    `json:"cert_file"`
	NotAfter    time.Time `json:"not_after"`
}

// TLSFingerprint is the SHA-256 of a certificate's DER bytes, as upper-case
// hex pairs joined by colons ("AB:CD:..."): the form browsers, openssl
// x509 -fingerprint -sha256 and Windows' certificate dialog show, so an
// installer can compare it by eye. The status, the console, the log and
// the DNS-SD TXT record (tls_sha256=) all use this one form.
func TLSFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
