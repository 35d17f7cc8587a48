package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
)

// pinnedClient trusts exactly the certificate whose fingerprint is fp, as
// a register or an installer that pinned it would; no CA is involved.
func pinnedClient(fp string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the check is VerifyConnection's
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			if got := shopbridge.TLSFingerprint(cs.PeerCertificates[0].Raw); got != fp {
				return fmt.Errorf("certificate %s, pinned %s", got, fp)
			}
			return nil
		}}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func getStatus(t *testing.T, c *http.Client, base string) api.Status {
	t.Helper()
	resp, err := c.Get(base + "/admin/api/status")
	if err != nil {
		t.Fatalf("status at %s: %v", base, err)
	}
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status at %s: %d %v", base, resp.StatusCode, err)
	}
	return st
}

func openIn(t *testing.T, data string, set ...func(*Config)) (*Daemon, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	d := New(testConfig(data, set...), slog.New(slog.NewTextHandler(&logs, nil)))
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, &logs
}

// TestHTTPSSelfSigned: with no setting the daemon makes a certificate on
// first start, serves it on the HTTPS port, shows its fingerprint in the
// status and the start-up log, and keeps it across a restart.
func TestHTTPSSelfSigned(t *testing.T) {
	data := t.TempDir()
	d, logs := openIn(t, data)
	st := getStatus(t, http.DefaultClient, "http://"+d.Addr())
	if st.HTTPS == nil || st.HTTPS.Source != shopbridge.TLSSelfSigned || st.HTTPS.Addr != d.HTTPSAddr() || st.HTTPS.Port == 0 {
		t.Fatalf("status https = %+v (listener %s)", st.HTTPS, d.HTTPSAddr())
	}
	fp := st.HTTPS.Fingerprint
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q is not 32 hex pairs", fp)
	}
	// The same status over HTTPS, the certificate pinned by that value.
	base := "https://" + d.HTTPSAddr()
	if again := getStatus(t, pinnedClient(fp), base); again.HTTPS.Fingerprint != fp {
		t.Errorf("status over HTTPS names %s", again.HTTPS.Fingerprint)
	}
	// A pin of another certificate fails: the check above can fail.
	if _, err := pinnedClient(strings.Repeat("00:", 31) + "00").Get(base + "/healthz"); err == nil {
		t.Fatal("a wrong pin was accepted")
	}
	if !strings.Contains(logs.String(), "msg=https") || !strings.Contains(logs.String(), "fingerprint_sha256="+fp) {
		t.Errorf("the start-up log lacks the fingerprint:\n%s", logs)
	}

	// The files beside the store: the key private to the service.
	certPath, keyPath := filepath.Join(data, TLSDir, "cert.pem"), filepath.Join(data, TLSDir, "key.pem")
	if st.HTTPS.CertFile != certPath {
		t.Errorf("cert_file %q, want %q", st.HTTPS.CertFile, certPath)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	// Standard verification with the file as the only root: the names a
	// browser on this PC uses are in it, and it is valid for years.
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("verify as %s: %v", name, err)
		}
	}
	if leaf.NotAfter.Before(time.Now().Add(5*365*24*time.Hour)) || leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("certificate until %s, key %s", leaf.NotAfter, leaf.PublicKeyAlgorithm)
	}
	// curl and the Go client accept the file as the CA of the server.
	strict := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if resp, err := strict.Get("https://127.0.0.1:" + fmt.Sprint(st.HTTPS.Port) + "/healthz"); err != nil {
		t.Errorf("verified with cert.pem as the root: %v", err)
	} else {
		resp.Body.Close()
	}

	// A restart (an upgrade is one) keeps the certificate.
	d.Close()
	d2, _ := openIn(t, data)
	st2 := getStatus(t, http.DefaultClient, "http://"+d2.Addr())
	if st2.HTTPS == nil || st2.HTTPS.Fingerprint != fp {
		t.Fatalf("after a restart the fingerprint is %+v, was %s", st2.HTTPS, fp)
	}
	if after, _ := os.ReadFile(certPath); !bytes.Equal(after, certPEM) {
		t.Error("the certificate file was rewritten")
	}
	getStatus(t, pinnedClient(fp), "https://"+d2.HTTPSAddr())
}

// TestHTTPSOff: https-listen none opens no second port and the status says
// nothing of HTTPS.
func TestHTTPSOff(t *testing.T) {
	data := t.TempDir()
	d, logs := openIn(t, data, func(c *Config) { c.HTTPSListen = "" })
	if d.HTTPSAddr() != "" {
		t.Errorf("HTTPS listens on %s", d.HTTPSAddr())
	}
	if st := getStatus(t, http.DefaultClient, "http://"+d.Addr()); st.HTTPS != nil {
		t.Errorf("status https = %+v", st.HTTPS)
	}
	if _, err := os.Stat(filepath.Join(data, TLSDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a tls folder was made: %v", err)
	}
	if !strings.Contains(logs.String(), "https-listen none") {
		t.Errorf("the log does not say HTTPS is off:\n%s", logs)
	}
}

// certOpts is what a test certificate differs in.
type certOpts struct {
	notAfter time.Time
	rsa      bool
}

// writeCert writes a self-signed certificate and its key as PEM files in
// dir, named name.crt and name.key, and returns their paths and the
// certificate's fingerprint.
func writeCert(t *testing.T, dir, name string, o certOpts) (certPath, keyPath, fp string) {
	t.Helper()
	var priv any
	var pub any
	if o.rsa {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub = k, &k.PublicKey
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "shop-pc.shop.example"},
		NotBefore: o.notAfter.Add(-2 * 365 * 24 * time.Hour), NotAfter: o.notAfter, DNSNames: []string{"shop-pc.shop.example"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, shopbridge.TLSFingerprint(der)
}

// TestHTTPSShopCertificate: the shop's own certificate and key are served
// as given, and no self-signed one is made.
func TestHTTPSShopCertificate(t *testing.T) {
	data, files := t.TempDir(), t.TempDir()
	certPath, keyPath, fp := writeCert(t, files, "shop", certOpts{rsa: true})
	d, _ := openIn(t, data, func(c *Config) { c.TLSCert, c.TLSKey = certPath, keyPath })
	st := getStatus(t, pinnedClient(fp), "https://"+d.HTTPSAddr())
	if st.HTTPS == nil || st.HTTPS.Fingerprint != fp || st.HTTPS.Source != shopbridge.TLSShop || st.HTTPS.CertFile != certPath {
		t.Fatalf("status https = %+v, want %s from %s", st.HTTPS, fp, certPath)
	}
	if _, err := os.Stat(filepath.Join(data, TLSDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a self-signed certificate was made beside the shop's: %v", err)
	}
}

// TestHTTPSBadFiles: a certificate or key that cannot serve stops the start
// with one line naming the file.
func TestHTTPSBadFiles(t *testing.T) {
	files := t.TempDir()
	goodCert, goodKey, _ := writeCert(t, files, "good", certOpts{})
	_, otherKey, _ := writeCert(t, files, "other", certOpts{})
	expiredCert, expiredKey, _ := writeCert(t, files, "expired", certOpts{notAfter: time.Now().Add(-24 * time.Hour)})
	garbage := filepath.Join(files, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(files, "unreadable.key")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(files, "missing.crt")
	for _, tt := range []struct {
		name, cert, key string
		want            []string
	}{
		{"missing certificate", missing, goodKey, []string{missing, "no such file"}},
		{"not PEM", garbage, goodKey, []string{garbage, "no PEM CERTIFICATE"}},
		{"the key as the certificate", goodKey, goodKey, []string{goodKey, "no PEM CERTIFICATE"}},
		{"the certificate as the key", goodCert, goodCert, []string{goodCert, "no PEM PRIVATE KEY"}},
		{"another certificate's key", goodCert, otherKey, []string{otherKey, goodCert, "does not belong"}},
		{"expired", expiredCert, expiredKey, []string{expiredCert, "expired on"}},
		{"unreadable key", goodCert, unreadable, []string{unreadable}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.key == unreadable && os.Geteuid() == 0 {
				// root reads a 0000 file; a directory in its place cannot be read as one.
				dir := filepath.Join(t.TempDir(), "unreadable.key")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				tt.key, tt.want = dir, []string{dir}
			}
			cfg := testConfig(t.TempDir(), func(c *Config) { c.TLSCert, c.TLSKey = tt.cert, tt.key })
			d := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			err := d.Open(context.Background())
			if err == nil {
				d.Close()
				t.Fatal("started")
			}
			var se *StartError
			if !errors.As(err, &se) || strings.Contains(err.Error(), "\n") {
				t.Errorf("not one start-error line: %T %q", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestHTTPSSelfSignedRenewed: a self-made certificate at its end is made
// anew, with a warning that the fingerprint changes; a damaged one stops
// the start naming the files to delete.
func TestHTTPSSelfSignedRenewed(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, TLSDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, k, old := writeCert(t, dir, "x", certOpts{notAfter: time.Now().Add(24 * time.Hour)})
	if err := os.Rename(c, filepath.Join(dir, "cert.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(k, filepath.Join(dir, "key.pem")); err != nil {
		t.Fatal(err)
	}
	d, logs := openIn(t, data)
	st := getStatus(t, http.DefaultClient, "http://"+d.Addr())
	if st.HTTPS.Fingerprint == old || st.HTTPS.NotAfter.Before(time.Now().Add(365*24*time.Hour)) {
		t.Errorf("the certificate about to expire was kept: %+v", st.HTTPS)
	}
	if !strings.Contains(logs.String(), "fingerprint changes") {
		t.Errorf("no warning of the new fingerprint:\n%s", logs)
	}
	d.Close()

	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := New(testConfig(data), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d2.Open(context.Background()); err == nil {
		d2.Close()
		t.Fatal("started with a damaged certificate")
	} else if !strings.Contains(err.Error(), filepath.Join(dir, "cert.pem")) || !strings.Contains(err.Error(), "delete") {
		t.Errorf("damaged certificate: %v", err)
	}
}

// TestHTTPSSessionCookie: a console login over HTTPS gets a Secure cookie;
// over plain HTTP on this PC it cannot be (the browser would drop it).
func TestHTTPSSessionCookie(t *testing.T) {
	const token = "adm1n-token-for-tls"
	d, _ := openIn(t, t.TempDir(), func(c *Config) { c.AdminToken = token })
	fp := getStatus(t, http.DefaultClient, "http://"+d.Addr()).HTTPS.Fingerprint
	csrfRe := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	for _, tt := range []struct {
		base   string
		client *http.Client
		secure bool
	}{
		{"https://" + d.HTTPSAddr(), pinnedClient(fp), true},
		{"http://" + d.Addr(), &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, false},
	} {
		resp, err := tt.client.Get(tt.base + "/admin/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfRe.FindSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no csrf in the login page (%d)", tt.base, resp.StatusCode)
		}
		resp, err = tt.client.PostForm(tt.base+"/admin/login", url.Values{"csrf": {string(m[1])}, "token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "shopbridge_session" {
				session = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || session == nil {
			t.Fatalf("%s: login %d, cookies %v", tt.base, resp.StatusCode, resp.Cookies())
		}
		if session.Secure != tt.secure || !session.HttpOnly {
			t.Errorf("%s: session cookie Secure=%v HttpOnly=%v, want Secure=%v", tt.base, session.Secure, session.HttpOnly, tt.secure)
		}
	}
}
