package ferry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Real TLS and tokens against ferryd are in integration/security_test.go;
// these are the refusals NewPublisher and NewSubscriber make by themselves.
func TestSecurityRefusesWhatCannotWork(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		security Security
		want     string
	}{
		{Security{Token: "id.secret"}, "a token needs TLS (give the CA file of the node's certificate)"},
		{Security{TLS: true, CertFile: "client.pem"}, "a client certificate needs its key file"},
		{Security{KeyFile: "client.key"}, "a client certificate needs its key file"},
		{Security{CAFile: "/nonexistent/ca.pem"}, `CA file "/nonexistent/ca.pem": cannot read`},
		{Security{CAFile: garbage}, "no PEM certificate in it"},
		{Security{CertFile: garbage, KeyFile: garbage}, "certificate file"},
	} {
		_, perr := NewPublisher(context.Background(), []string{"127.0.0.1:1"}, WithPublisherSecurity(c.security))
		_, serr := NewSubscriber(context.Background(), []string{"127.0.0.1:1"}, "g", []string{"t"},
			WithSubscriberSecurity(c.security))
		for _, err := range []error{perr, serr} {
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: got %v, want INVALID_ARGUMENT with %q", c.security, err, c.want)
			}
		}
	}
}

func TestSecurityBuildsTLSWithTheTokenOnEveryCall(t *testing.T) {
	opts, err := Security{TLS: true, Token: "id.secret"}.dialOptions()
	if err != nil || len(opts) != 2 {
		t.Fatalf("got %d options, %v; want TLS and the token", len(opts), err)
	}
	md, _ := bearerToken("id.secret").GetRequestMetadata(context.Background())
	if md["authorization"] != "Bearer id.secret" || !bearerToken("x").RequireTransportSecurity() {
		t.Errorf("token metadata %v", md)
	}
	if opts, err := (Security{}).dialOptions(); err != nil || opts != nil {
		t.Errorf("zero Security: %v, %v; want plain text", opts, err)
	}
}
