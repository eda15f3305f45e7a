package presenceclient

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gateway is a real VS simulator and presence_server on loopback.
type gateway struct {
	sim, server *exec.Cmd
	simURL      string
	address     string
	bootPort    string
}

func startGateway(t *testing.T, extraFlags ...string) *gateway {
	t.Helper()
	g := &gateway{}
	g.sim = exec.Command(os.Getenv("VS_SIMULATOR"), "--port=0", "--key=go-test-key")
	out, _ := g.sim.StdoutPipe()
	if err := g.sim.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("simulator did not start: %q", line)
	}
	g.simURL = m[1]
	args := append([]string{"--listen=127.0.0.1:0", "--vs_url=" + g.simURL,
		"--ping_interval=300ms", "--metrics_listen=127.0.0.1:0"}, extraFlags...)
	g.server = exec.Command(os.Getenv("PRESENCE_SERVER"), args...)
	g.server.Env = append(os.Environ(), "VS_KEY=go-test-key")
	errPipe, _ := g.server.StderrPipe()
	if err := g.server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range []*exec.Cmd{g.server, g.sim} {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	})
	scanner := bufio.NewScanner(errPipe)
	for scanner.Scan() {
		if m := regexp.MustCompile(`listening address=(\S+)`).FindStringSubmatch(scanner.Text()); m != nil {
			g.address = m[1]
			if b := regexp.MustCompile(`boot_port=(\d+)`).FindStringSubmatch(scanner.Text()); b != nil {
				g.bootPort = b[1]
			}
			break
		}
	}
	if g.address == "" {
		t.Fatal("presence_server did not start")
	}
	go func() {
		for scanner.Scan() {
		}
	}()
	return g
}

func (g *gateway) counts(t *testing.T) map[string]int {
	resp, err := http.Get(g.simURL + "/_sim/counts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	counts := map[string]int{}
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		t.Fatal(err)
	}
	return counts
}

// waitCount waits until VS saw n calls of fn, then returns the count a moment later.
func (g *gateway) waitCount(t *testing.T, fn string, n int) int {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && g.counts(t)[fn] < n {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return g.counts(t)[fn]
}

func (g *gateway) fault(t *testing.T, rule string) {
	resp, err := http.Post(g.simURL+"/_sim/faults", "application/json", strings.NewReader(rule))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// boot posts VS's customerBoot to the gateway's boot endpoint.
func (g *gateway) boot(t *testing.T, secret string, customer int64) {
	body := strings.NewReader("function=customerBoot&customerId=" + big.NewInt(customer).String())
	resp, err := http.Post("http://127.0.0.1:"+g.bootPort+"/boot?key="+secret,
		"application/x-www-form-urlencoded", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("boot answered %d", resp.StatusCode)
	}
}

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a temporary directory.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert := issue(t, nil, nil, "test-ca")
	write := func(name string, block *pem.Block) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := pki{ca: write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})}
	for _, who := range []string{"server", "client"} {
		key, cert := issue(t, caKey, caCert, who)
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certPath := write(who+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		keyPath := write(who+".key", &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if who == "server" {
			p.serverCert, p.serverKey = certPath, keyPath
		} else {
			p.clientCert, p.clientKey = certPath, keyPath
		}
	}
	return p
}

// issue makes a key and a certificate for 127.0.0.1 signed by parent (self-
// signed CA when parent is nil).
func issue(t *testing.T, parentKey *ecdsa.PrivateKey, parent *x509.Certificate, name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		template.IsCA, template.BasicConstraintsValid = true, true
		template.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// secretFile writes a secret (a token, a boot key) to a file of its own.
func secretFile(t *testing.T, secret string) string {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
