package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
)

// HTTPS for the console on the LAN (docs/security.md): with no setting, a
// certificate the daemon makes on first start and keeps beside the store,
// so its fingerprint stays the same across restarts and upgrades and an
// installer or a register can pin it; or the shop's own certificate and key.

// DefaultHTTPSPort is the HTTPS port unless https-listen says.
const DefaultHTTPSPort = 8443

// TLSDir is the folder of DATA that holds the self-made certificate.
const TLSDir = "tls"

// The self-made certificate's files in DATA/tls.
const (
	certFileName = "cert.pem"
	keyFileName  = "key.pem"
)

// selfSignedValidity is how long a self-made certificate lasts: a register
// that pinned its fingerprint should not have to learn a new one.
const selfSignedValidity = 10 * 365 * 24 * time.Hour

// renewBefore: a self-made certificate this close to its end is made anew
// at start (its fingerprint changes; the log says so).
const renewBefore = 30 * 24 * time.Hour

// serverCert is the certificate HTTPS serves, with what status shows of it.
type serverCert struct {
	cert tls.Certificate
	info shopbridge.HTTPSStatus // Addr and Port are the listener's, set later
}

// loadServerCert reads the shop's certificate and key, or the self-made
// pair in DATA/tls, making one first when there is none (or it is about to
// expire). hosts are extra names for a new certificate. Every error is one
// line naming the file.
func (d *Daemon) loadServerCert(hosts []string) (*serverCert, error) {
	cfg := d.Config
	now := d.Now()
	if cfg.TLSCert != "" {
		sc, err := readCertPair(cfg.TLSCert, cfg.TLSKey, now)
		if err != nil {
			return nil, err
		}
		sc.info.Source = shopbridge.TLSShop
		return sc, nil
	}
	dir := filepath.Join(cfg.DataDir, TLSDir)
	certPath, keyPath := filepath.Join(dir, certFileName), filepath.Join(dir, keyFileName)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if certErr == nil && keyErr == nil {
		sc, err := readCertPair(certPath, keyPath, now)
		var exp *expiredError
		switch {
		case errors.As(err, &exp) || (err == nil && sc.info.NotAfter.Sub(now) < renewBefore):
			d.Logger.Warn("the self-signed HTTPS certificate expires: making a new one; its fingerprint changes, registers and browsers that pinned the old one must learn the new one",
				"cert", certPath)
		case err != nil:
			return nil, fmt.Errorf("%w (delete %s and %s to make a new self-signed certificate)", err, certPath, keyPath)
		default:
			sc.info.Source = shopbridge.TLSSelfSigned
			return sc, nil
		}
	} else if !errors.Is(certErr, os.ErrNotExist) && certErr != nil {
		return nil, fmt.Errorf("tls certificate %s: %w", certPath, certErr)
	} else if !errors.Is(keyErr, os.ErrNotExist) && keyErr != nil {
		return nil, fmt.Errorf("tls key %s: %w", keyPath, keyErr)
	}
	// Neither file, or one without the other (a start cut short while
	// writing them): make a new pair.
	if err := makeSelfSigned(dir, certPath, keyPath, cfg.Name, hosts, now); err != nil {
		return nil, PermissionHint(err, dir)
	}
	sc, err := readCertPair(certPath, keyPath, now)
	if err != nil {
		return nil, err
	}
	sc.info.Source = shopbridge.TLSSelfSigned
	d.Logger.Info("made a self-signed HTTPS certificate", "cert", certPath, "fingerprint", sc.info.Fingerprint)
	return sc, nil
}

type expiredError struct {
	file     string
	notAfter time.Time
}

func (e *expiredError) Error() string {
	return fmt.Sprintf("tls certificate %s expired on %s: renew it", e.file, e.notAfter.UTC().Format("2006-01-02"))
}

// readCertPair loads and checks a certificate file and its key file.
func readCertPair(certPath, keyPath string, now time.Time) (*serverCert, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s: %w", certPath, unwrapPath(err))
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls key %s: %w", keyPath, unwrapPath(err))
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("tls certificate %s: no PEM CERTIFICATE block in the file", certPath)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("tls key %s: no PEM PRIVATE KEY block in the file", keyPath)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		if strings.Contains(msg, "does not match") {
			return nil, fmt.Errorf("tls key %s does not belong to the certificate %s", keyPath, certPath)
		}
		return nil, fmt.Errorf("tls certificate %s or key %s: %s", certPath, keyPath, msg)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls certificate %s: %w", certPath, err)
		}
	}
	if now.After(leaf.NotAfter) {
		return nil, &expiredError{file: certPath, notAfter: leaf.NotAfter}
	}
	return &serverCert{cert: cert, info: shopbridge.HTTPSStatus{Fingerprint: shopbridge.TLSFingerprint(leaf.Raw),
		CertFile: certPath, NotAfter: leaf.NotAfter}}, nil
}

// unwrapPath drops the path from an *os.PathError, which the message names
// already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// makeSelfSigned writes a new ECDSA P-256 key and a self-signed
// certificate for this PC's names and addresses (as they are now: the
// certificate is kept when they change, since its fingerprint is what a
// client checks). The key is written first, each file atomically, so a cut
// leaves either the old state or a key without a certificate, which the
// next start replaces.
func makeSelfSigned(dir, certPath, keyPath, name string, hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("make a tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("make a tls certificate serial: %w", err)
	}
	dns, ips := certNames(hosts)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"shopbridge"}},
		NotBefore:             now.Add(-time.Hour), // a register's clock a little behind
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("make a tls certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the tls key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls folder %s: %w", dir, unwrapPath(err))
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// certNames are the names and addresses a new certificate covers: this
// PC's host name (short, with .local), localhost, the extra hosts (the
// daemon's mDNS names, --admin-hosts), loopback and every address the PC
// has now.
func certNames(hosts []string) ([]string, []net.IP) {
	var dns []string
	seen := map[string]bool{}
	addName := func(n string) {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" || seen[n] {
			return
		}
		seen[n] = true
		if ip := net.ParseIP(n); ip != nil {
			return // addresses go below
		}
		dns = append(dns, n)
	}
	if hn, err := os.Hostname(); err == nil {
		addName(hn)
		short, _, _ := strings.Cut(hn, ".")
		addName(short)
		if short != "" {
			addName(short + ".local")
		}
	}
	addName("localhost")
	for _, h := range hosts {
		addName(h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	has := func(ip net.IP) bool {
		for _, x := range ips {
			if x.Equal(ip) {
				return true
			}
		}
		return false
	}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || has(ipn.IP) {
				continue // link-local ones need a zone, which no certificate names
			}
			ip := ipn.IP
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			ips = append(ips, ip)
		}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil && !has(ip) {
			ips = append(ips, ip)
		}
	}
	return dns, ips
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, synced and renamed over it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename there is nothing left to remove
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the rename itself, on a power cut
		d.Close()
	}
	return nil
}
