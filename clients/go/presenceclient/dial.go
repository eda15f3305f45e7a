package presenceclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// DialOptions choose how Dial reaches the gateway. The zero value is plaintext
// without a token: right for loopback or inside a service mesh that encrypts.
type DialOptions struct {
	// TLS, when set, encrypts the connection (see TLSConfig).
	TLS *tls.Config
	// Token, when set, is sent as "authorization: Bearer <Token>" on every
	// call (the server's --auth_token_file). It is a secret: it needs TLS and
	// is never logged by this package.
	Token string
}

// TLSConfig builds a TLS configuration: caFile verifies the server (empty:
// the system roots); certFile and keyFile, when both set, are the client
// certificate for a server that requires one (--tls_client_ca).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("presenceclient: reading the CA: %w", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("presenceclient: no PEM certificate in %s", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("presenceclient: a client certificate needs both certFile and keyFile")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("presenceclient: loading the client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// Dial connects with keepalive settings the server accepts (it allows client
// pings every 5 s or slower; a dead server is noticed in about 30 s). The
// connection is made in the background; calls wait for it.
//
// grpc.Dial is used because grpc.NewClient does not exist in grpc-go 1.33,
// the oldest version this module supports (Debian 12's).
func Dial(target string, o DialOptions, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	if o.Token != "" && o.TLS == nil {
		return nil, errors.New("presenceclient: a bearer token is only sent over TLS")
	}
	var transport credentials.TransportCredentials = plaintext{}
	if o.TLS != nil {
		transport = credentials.NewTLS(o.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(o.Token)))
	}
	return grpc.Dial(target, append(opts, extra...)...)
}

// bearer sends a token on every call, over TLS only.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// plaintext is a connection without transport security. It is what
// credentials/insecure provides in grpc-go 1.34 and later; 1.33 has only the
// deprecated grpc.WithInsecure.
type plaintext struct{}

func (plaintext) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, plaintextInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (plaintext) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, plaintextInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (plaintext) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
}

func (p plaintext) Clone() credentials.TransportCredentials { return p }

func (plaintext) OverrideServerName(string) error { return nil }

type plaintextInfo struct{ credentials.CommonAuthInfo }

func (plaintextInfo) AuthType() string { return "insecure" }
