package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ferry "ferry.dev/ferry/sdk/go"
)

// Nodes with listen.tls and auth.enabled on the embedded store, certificates
// from a throwaway CA made with the openssl CLI, tokens from
// `ferry token create`, as sdk/cpp's tls and auth integration tests.
const securityACL = `auth:
  enabled: true
  acl:
    - { principal: tenant-a, resource: "topic:a.*", operations: [publish, subscribe, describe] }
    - { principal: tenant-a, resource: "group:a-*", operations: [subscribe, describe] }
    - { principal: tenant-b, resource: "topic:b.*", operations: [publish, subscribe, describe] }
    - { principal: tenant-b, resource: "group:b-*", operations: [subscribe, describe] }
    - { principal: "*", resource: cluster, operations: [describe] }
routes:
  - { topic: "*", write: [main], auto_create_topics: true }
`

type testPKI struct {
	dir, ca, caKey string
}

func (p *testPKI) openssl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newTestPKI(t *testing.T) *testPKI {
	dir := t.TempDir()
	p := &testPKI{dir: dir, ca: filepath.Join(dir, "ca.pem"), caKey: filepath.Join(dir, "ca.key")}
	p.openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-days", "2", "-subj", "/CN=ferry go test CA", "-keyout", p.caKey, "-out", p.ca)
	return p
}

// issue makes a certificate and key for commonName signed by the CA.
func (p *testPKI) issue(t *testing.T, commonName, subjectAltName string) (cert, key string) {
	stem := filepath.Join(p.dir, commonName)
	cert, key = stem+".pem", stem+".key"
	ext := stem + ".ext"
	if subjectAltName != "" {
		subjectAltName = "subjectAltName=" + subjectAltName + "\n"
	}
	if err := os.WriteFile(ext, []byte(subjectAltName), 0o600); err != nil {
		t.Fatal(err)
	}
	p.openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-subj", "/CN="+commonName, "-keyout", key, "-out", stem+".csr")
	p.openssl(t, "x509", "-req", "-in", stem+".csr", "-CA", p.ca, "-CAkey", p.caKey, "-CAcreateserial",
		"-days", "2", "-out", cert, "-extfile", ext)
	return cert, key
}

// newToken runs `ferry token create`: the token and its tokens-file line.
func newToken(t *testing.T, principal string) (token, line string) {
	cli := os.Getenv("FERRY_CLI_BIN")
	if cli == "" {
		cli = filepath.Join(filepath.Dir(ferrydBinary()), "..", "cli", "ferry")
	}
	out, err := exec.Command(cli, "token", "create", "--principal", principal).Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(lines) != 2 {
		t.Fatalf("ferry token create: %v: %q", err, out)
	}
	return lines[0], lines[1]
}

type secureNode struct {
	*ferryd
	pki              *testPKI
	certA, keyA      string // client certificate of tenant-a
	tokenB, tokenOld string // tokens of tenant-b; tokenOld is not in the file
}

// startSecureNode starts a node with TLS and auth: mutual, it verifies
// client certificates of the test CA (with auth on, a client without one
// gets through the handshake and is refused with UNAUTHENTICATED); else the
// principal comes from tokens.
func startSecureNode(t *testing.T, mutual bool) *secureNode {
	pki := newTestPKI(t)
	serverCert, serverKey := pki.issue(t, "ferryd", "DNS:localhost,IP:127.0.0.1")
	n := &secureNode{pki: pki}
	n.certA, n.keyA = pki.issue(t, "tenant-a", "")
	var line string
	n.tokenB, line = newToken(t, "tenant-b")
	n.tokenOld, _ = newToken(t, "tenant-b")
	tokens := filepath.Join(pki.dir, "tokens")
	if err := os.WriteFile(tokens, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(pki.dir, "ferry.yaml")
	if err := os.WriteFile(config, []byte(securityACL), 0o600); err != nil {
		t.Fatal(err)
	}
	name := unique("go-secure")
	args := []string{"--config", config,
		"--set", "clusters.main.type=embedded", "--set", "clusters.main.path=" + filepath.Join(pki.dir, "store"),
		"--set", "listen.tls.cert=" + serverCert, "--set", "listen.tls.key=" + serverKey}
	health := &tls.Config{RootCAs: x509.NewCertPool()}
	caPEM, _ := os.ReadFile(pki.ca)
	health.RootCAs.AppendCertsFromPEM(caPEM)
	if !mutual {
		args = append(args, "--set", "auth.tokens_file="+tokens)
	} else {
		args = append(args, "--set", "listen.tls.client_ca="+pki.ca)
		pair, err := tls.LoadX509KeyPair(n.certA, n.keyA)
		if err != nil {
			t.Fatal(err)
		}
		health.Certificates = []tls.Certificate{pair}
	}
	node, err := launchFerryd(name, args, health)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.stop)
	n.ferryd = node
	return n
}

func publishOne(t *testing.T, endpoint string, security ferry.Security, topic, value string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := ferry.NewPublisher(ctx, []string{endpoint}, ferry.WithPublisherSecurity(security),
		ferry.WithDeliveryTimeout(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Publish(ctx, &ferry.Message{Topic: topic, Value: []byte(value)}).Get(ctx)
	return err
}

// receiveOne returns the first message's value, or Receive's error.
func receiveOne(t *testing.T, endpoint string, security ferry.Security, group, topic string) (string, error) {
	t.Helper()
	sub, err := ferry.NewSubscriber(context.Background(), []string{endpoint}, group, []string{topic},
		ferry.WithSubscriberSecurity(security), ferry.WithStart(ferry.StartEarliest))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var once sync.Once
	var value string
	err = sub.Receive(ctx, func(_ context.Context, m *ferry.Message) {
		m.Ack()
		once.Do(func() {
			value = string(m.Value)
			cancel()
		})
	})
	if err == nil && value == "" {
		err = errors.New("no message within 20 s")
	}
	return value, err
}

func TestMutualTLSPublishesAndConsumes(t *testing.T) {
	node := startSecureNode(t, true)
	tenantA := ferry.Security{CAFile: node.pki.ca, CertFile: node.certA, KeyFile: node.keyA}
	if err := publishOne(t, node.endpoint, tenantA, "a.orders", "over mutual TLS"); err != nil {
		t.Fatal(err)
	}
	value, err := receiveOne(t, node.endpoint, tenantA, "a-g", "a.orders")
	if err != nil || value != "over mutual TLS" {
		t.Fatalf("received %q, %v", value, err)
	}
	// The certificate is the principal: tenant-a may not use tenant-b's topics.
	err = publishOne(t, node.endpoint, tenantA, "b.orders", "x")
	if !errors.Is(err, ferry.ErrPermissionDenied) ||
		!strings.Contains(err.Error(), "permission denied: publish on topic:b.orders") {
		t.Errorf("tenant-a publishing to b.orders: %v", err)
	}
}

func TestMutualTLSRefusesAClientWithoutCertificate(t *testing.T) {
	node := startSecureNode(t, true)
	err := publishOne(t, node.endpoint, ferry.Security{CAFile: node.pki.ca}, "a.orders", "x")
	if !errors.Is(err, ferry.ErrUnauthenticated) || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("publishing without a client certificate: %v; want UNAUTHENTICATED", err)
	}
	// A certificate of another CA fails the handshake.
	stranger := newTestPKI(t)
	certX, keyX := stranger.issue(t, "tenant-a", "")
	err = publishOne(t, node.endpoint, ferry.Security{CAFile: node.pki.ca, CertFile: certX, KeyFile: keyX},
		"a.orders", "x")
	if !errors.Is(err, ferry.ErrUnavailable) && !errors.Is(err, ferry.ErrDeadlineExceeded) {
		t.Fatalf("publishing with a certificate of another CA: %v; want a refused connection", err)
	}
	// Nor does the client trust a node whose certificate is not of its CA.
	err = publishOne(t, node.endpoint, ferry.Security{CAFile: stranger.ca, CertFile: node.certA, KeyFile: node.keyA},
		"a.orders", "x")
	if err == nil {
		t.Fatal("a node whose certificate does not chain to the given CA was trusted")
	}
}

func TestTokenPrincipalIsAllowedAndDeniedByTheACL(t *testing.T) {
	node := startSecureNode(t, false)
	tenantB := ferry.Security{CAFile: node.pki.ca, Token: node.tokenB}
	if err := publishOne(t, node.endpoint, tenantB, "b.orders", "with a token"); err != nil {
		t.Fatal(err)
	}
	value, err := receiveOne(t, node.endpoint, tenantB, "b-g", "b.orders")
	if err != nil || value != "with a token" {
		t.Fatalf("received %q, %v", value, err)
	}
	err = publishOne(t, node.endpoint, tenantB, "a.orders", "x")
	if !errors.Is(err, ferry.ErrPermissionDenied) ||
		!strings.Contains(err.Error(), "permission denied: publish on topic:a.orders") {
		t.Errorf("tenant-b publishing to a.orders: %v", err)
	}
	// A subscriber stops on PERMISSION_DENIED instead of retrying forever.
	if _, err := receiveOne(t, node.endpoint, tenantB, "a-g", "b.orders"); !errors.Is(err, ferry.ErrPermissionDenied) ||
		!strings.Contains(err.Error(), "permission denied: subscribe on group:a-g") {
		t.Errorf("tenant-b subscribing with group a-g: %v", err)
	}
	for name, security := range map[string]ferry.Security{
		"unknown token": {CAFile: node.pki.ca, Token: node.tokenOld},
		"no token":      {CAFile: node.pki.ca},
	} {
		err := publishOne(t, node.endpoint, security, "b.orders", "x")
		if !errors.Is(err, ferry.ErrUnauthenticated) {
			t.Errorf("%s: %v; want UNAUTHENTICATED", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
