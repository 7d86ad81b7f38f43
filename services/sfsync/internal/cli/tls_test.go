package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
)

// TestOperatorCommandsUseNATSTLS: against a broker that requires TLS, the
// operator commands connect with NATS_TLS_CA like the workers; without it
// they cannot (so the variable is what made the difference).
func TestOperatorCommandsUseNATSTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(dir, "js"), NoSigs: true, NoLog: true,
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the TLS broker did not start")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	nc, err := nats.Connect(ns.ClientURL(), nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := broker.Declare(t.Context(), js, broker.Settings{LeaseTTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}

	w := newWorld(t)
	w.env["NATS_URL"] = ns.ClientURL()
	out, err := w.run("status", "--json")
	if err != nil || strings.Contains(out, broker.OrdersStream) {
		t.Fatalf("status without NATS_TLS_CA reached the TLS broker's streams (%v):\n%s", err, out)
	}
	t.Logf("without NATS_TLS_CA:\n%s", out)
	w.env["NATS_TLS_CA"] = caFile
	for _, args := range [][]string{{"status", "--json"}, {"replay", "--from", "id:1"}} {
		out, err = w.run(args...)
		if err != nil {
			t.Fatalf("%v with NATS_TLS_CA: %v\n%s", args, err, out)
		}
	}
	out, _ = w.run("status", "--json")
	if !strings.Contains(out, broker.OrdersStream) {
		t.Fatalf("status with NATS_TLS_CA did not reach the TLS broker's streams:\n%s", out)
	}
}
