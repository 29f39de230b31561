package ferry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Security is how the publisher and the subscriber authenticate the nodes
// and themselves (nodes with listen.tls and auth.enabled), as the C++ SDK's
// ferry::client::Security and the Python SDK's ferry.credentials:
//
//	ferry.NewPublisher(ctx, []string{"ferry-1:7400"}, ferry.WithPublisherSecurity(ferry.Security{
//		CAFile: "/etc/ferry/ca.pem", Token: os.Getenv("FERRY_TOKEN")}))
//
// Files are PEM and read once, by NewPublisher / NewSubscriber, which fail
// with INVALID_ARGUMENT naming an unreadable one. The zero value is plain
// text (nodes on loopback only).
type Security struct {
	// TLS with the system's CAs; implied by any file below.
	TLS bool
	// CAs the nodes' certificates must chain to; empty: the system's.
	CAFile string
	// Client certificate and its key, for nodes with mutual TLS.
	CertFile string
	KeyFile  string
	// Sent as "authorization: Bearer <token>" on every call; needs TLS.
	Token string
}

// WithPublisherSecurity sets TLS and a token (see Security).
func WithPublisherSecurity(s Security) PublisherOption {
	return func(c *publisherConfig) { c.security = s }
}

// WithSubscriberSecurity sets TLS and a token (see Security).
func WithSubscriberSecurity(s Security) SubscriberOption {
	return func(c *subscriberConfig) { c.security = s }
}

// dialOptions are the transport and per-call credentials of s; nil for plain
// text.
func (s Security) dialOptions() ([]grpc.DialOption, error) {
	if !s.TLS && s.CAFile == "" && s.CertFile == "" && s.KeyFile == "" {
		if s.Token != "" {
			return nil, invalidOption("a token needs TLS (give the CA file of the node's " +
				"certificate): tokens never travel in clear text")
		}
		return nil, nil
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, invalidOption("a client certificate needs its key file and a key its certificate file")
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := readPEM("CA file", s.CAFile)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, invalidOption("CA file %q: no PEM certificate in it", s.CAFile)
		}
	}
	if s.CertFile != "" {
		cert, err := readPEM("certificate file", s.CertFile)
		if err != nil {
			return nil, err
		}
		key, err := readPEM("key file", s.KeyFile)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, invalidOption("certificate file %q and key file %q: %v", s.CertFile, s.KeyFile, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(config))}
	if s.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(s.Token)))
	}
	return opts, nil
}

func readPEM(what, path string) ([]byte, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, invalidOption("%s %q: cannot read (missing or not readable)", what, path)
	}
	return content, nil
}

// bearerToken is sent as "authorization: Bearer <token>", over TLS only.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }
