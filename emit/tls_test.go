package emit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// certs is a test CA with a server certificate (for 127.0.0.1) and a
// client certificate it signed, as PEM files in a directory.
type certs struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	server                                           tls.Certificate
}

func newCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pollhook test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	var c certs
	c.ca = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (certPath, keyPath string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kder)
	}
	c.serverCert, c.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	c.clientCert, c.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	if c.server, err = tls.LoadX509KeyPair(c.serverCert, c.serverKey); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHTTPTLSFiles verifies an http(s) receiver with tls.ca_file and
// presents the client certificate of cert_file and key_file.
func TestHTTPTLSFiles(t *testing.T) {
	c := newCerts(t)
	pool := x509.NewCertPool()
	b, err := os.ReadFile(c.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	requireClientTLS(t, c, func(tls config.TLS) config.Destination { return config.Destination{URL: srv.URL, TLS: tls} })
	for tlsCfg, want := range map[config.TLS]string{
		{CAFile: filepath.Join(t.TempDir(), "missing.pem")}: "tls.ca_file: open",
		{CAFile: c.clientKey}:                               "tls.ca_file: no PEM certificate",
		{CertFile: c.clientCert, KeyFile: c.serverKey}:      "tls.cert_file and tls.key_file:",
	} {
		if _, err := NewDestination(config.Destination{Name: "app", URL: srv.URL, TLS: tlsCfg}, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("tls %+v: %v, want an error with %q", tlsCfg, err, want)
		}
	}
}

// requireClientTLS sends an event through the destination that dest
// makes of each TLS setting, to a server that wants a client certificate
// c's CA signed: only the CA and the client certificate together get
// through.
func requireClientTLS(t *testing.T, c certs, dest func(config.TLS) config.Destination) {
	t.Helper()
	for _, tc := range []struct {
		name string
		tls  config.TLS
		ok   bool
	}{
		{"CA and client certificate", config.TLS{CAFile: c.ca, CertFile: c.clientCert, KeyFile: c.clientKey}, true},
		{"no client certificate", config.TLS{CAFile: c.ca}, false},
		{"system roots", config.TLS{CertFile: c.clientCert, KeyFile: c.clientKey}, false},
	} {
		d := newDest(t, dest(tc.tls), Options{})
		if a := d.Send(context.Background(), []cursor.Event{event("1", "created")}); a.OK() != tc.ok {
			t.Errorf("%s: attempt = %+v, want OK %v", tc.name, a, tc.ok)
		}
	}
}
