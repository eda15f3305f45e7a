package presenceclient

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mutual TLS and a bearer token, as a production gateway runs: the right
// token joins, a wrong one is final UNAUTHENTICATED, and a token is never
// offered over plaintext.
func TestTLSClientCertificateAndToken(t *testing.T) {
	p := newPKI(t)
	g := startGateway(t, "--tls_cert="+p.serverCert, "--tls_key="+p.serverKey,
		"--tls_client_ca="+p.ca, "--auth_token_file="+secretFile(t, "s3cret-token"))
	config, err := TLSConfig(p.ca, p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(g.address, DialOptions{TLS: config, Token: "s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, err := Open(context.Background(), conn, bob(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.DisplayNickname() != "bob_1000" {
		t.Fatalf("display nickname %q", v.DisplayNickname())
	}
	v.Close()

	wrong, _ := Dial(g.address, DialOptions{TLS: config, Token: "guess"})
	defer wrong.Close()
	_, err = Open(context.Background(), wrong, bob(), Options{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, err := Dial(g.address, DialOptions{Token: "s3cret-token"}); err == nil {
		t.Fatal("Dial offered a token over plaintext")
	}
	if _, err := TLSConfig(p.ca, p.clientCert, ""); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	if n := g.waitCount(t, "leaveRoom", 1); n != 1 || g.counts(t)["joinRoom"] != 1 {
		t.Fatalf("counts %v", g.counts(t))
	}
}

// A boot by VS ends the session for good: Done closes, Err says
// PERMISSION_DENIED, and the viewer does not reconnect.
func TestBootIsObservable(t *testing.T) {
	g := startGateway(t, "--boot_listen=127.0.0.1:0", "--boot_secret_file="+secretFile(t, "boot-key"))
	conn, _ := Dial(g.address, DialOptions{})
	defer conn.Close()
	v, err := Open(context.Background(), conn, bob(), Options{InitialBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.boot(t, "boot-key", *bob().CustomerID)
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the boot did not end the session")
	}
	if status.Code(v.Err()) != codes.PermissionDenied || v.Reconnects() != 0 {
		t.Fatalf("err %v, reconnects %d", v.Err(), v.Reconnects())
	}
	if err := v.Activity(0); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("activity after the end: %v", err)
	}
	if c := g.counts(t); c["joinRoom"] != 1 || g.waitCount(t, "leaveRoom", 1) != 1 {
		t.Fatalf("counts %v", c)
	}
}

// A caller that gave up on a slow credits answer does not leave that answer
// to the next caller: each gets the answer to its own update.
func TestCreditsAnswersGoToTheirCallers(t *testing.T) {
	g := startGateway(t)
	conn, _ := Dial(g.address, DialOptions{})
	defer conn.Close()
	v, err := Open(context.Background(), conn, bob(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	g.fault(t, `{"function":"updateCredits","latency_ms":700,"reject":true,"message":"slow no","times":1}`)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if _, err := v.UpdateCredits(ctx, 1); err != context.DeadlineExceeded {
		t.Fatalf("the impatient caller: %v", err)
	}
	cancel()
	reply, err := v.UpdateCredits(context.Background(), 2)
	if err != nil || !reply.Success {
		t.Fatalf("the next caller got %v, %v (the previous caller's answer was a rejection)", reply, err)
	}
	var wg sync.WaitGroup
	failures := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(credits int64) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := v.UpdateCredits(ctx, credits); err != nil {
				failures <- err
			}
		}(int64(10 + i))
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Errorf("a concurrent caller: %v", err)
	}
}

// Close during a reconnect's backoff returns at once, not after the backoff.
func TestCloseDuringBackoffIsPrompt(t *testing.T) {
	g := startGateway(t)
	g.fault(t, `{"function":"joinRoom","http_status":503,"times":1}`)
	conn, _ := Dial(g.address, DialOptions{})
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := Open(ctx, conn, bob(), Options{InitialBackoff: time.Minute, MaxBackoff: time.Minute})
	if err != context.DeadlineExceeded {
		t.Fatalf("open: %v", err)
	}
	if waited := time.Since(started); waited > 20*time.Second {
		t.Fatalf("Open's cancellation waited %v for the backoff", waited)
	}
	if c := g.counts(t); c["joinRoom"] != 1 || c["leaveRoom"] != 0 {
		t.Fatalf("counts %v", c)
	}
}

// A program outside this repository builds against the module with one
// require line, offline, through the module proxy the test runner set up
// (GOPROXY), and holds a viewer over TLS with a token.
func TestAProgramOutsideTheRepositoryUsesTheModule(t *testing.T) {
	if os.Getenv("GOPROXY") == "" || os.Getenv("PRESENCE_MODULE_VERSION") == "" {
		t.Fatal("run through bazel/go_module_test.sh, which serves this module on GOPROXY")
	}
	dir := t.TempDir()
	goMod := "module example.com/outside\n\ngo 1.19\n\nrequire github.com/vsmedia/presence/clients/go " +
		os.Getenv("PRESENCE_MODULE_VERSION") + "\n"
	program := `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vsmedia/presence/clients/go/presenceclient"
)

func main() {
	config, err := presenceclient.TLSConfig(os.Args[2], "", "")
	if err != nil {
		panic(err)
	}
	conn, err := presenceclient.Dial(os.Args[1], presenceclient.DialOptions{TLS: config, Token: os.Args[3]})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := presenceclient.Open(ctx, conn, presenceclient.Join{PerformerID: 5, Nickname: "outsider",
		IPAddress: "192.0.2.1"}, presenceclient.Options{})
	if err != nil {
		fmt.Println("join failed:", err)
		os.Exit(1)
	}
	fmt.Println("joined as", v.DisplayNickname())
	v.Close()
}
`
	for name, text := range map[string]string{"go.mod": goMod, "main.go": program} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", "outside", ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := newPKI(t)
	g := startGateway(t, "--tls_cert="+p.serverCert, "--tls_key="+p.serverKey,
		"--auth_token_file="+secretFile(t, "outside-token"))
	out, err := exec.Command(filepath.Join(dir, "outside"), g.address, p.ca, "outside-token").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "joined as outsider_") {
		t.Fatalf("the outside program: %v\n%s", err, out)
	}
	if n := g.waitCount(t, "leaveRoom", 1); n != 1 {
		t.Fatalf("leaves: %d", n)
	}
}
