package presenceclient

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
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

func bob() Join {
	id := int64(7)
	return Join{PerformerID: 42, Nickname: "bob", CustomerID: &id, IPAddress: "203.0.113.5", Registered: true, Credits: 100}
}

func TestJoinPingsAndExactlyOneLeave(t *testing.T) {
	g := startGateway(t)
	conn, err := Dial(g.address, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v, err := Open(context.Background(), conn, bob(), Options{InitialBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if v.DisplayNickname() != "bob_1000" {
		t.Fatalf("display nickname %q", v.DisplayNickname())
	}
	reply, err := v.UpdateCredits(context.Background(), 250)
	if err != nil || !reply.Success {
		t.Fatalf("credits: %v %v", reply, err)
	}
	time.Sleep(1050 * time.Millisecond)
	v.Close()
	c := g.counts(t)
	if c["joinRoom"] != 1 || c["updateCredits"] != 1 || c["pingRoom"] < 2 || c["pingRoom"] > 4 {
		t.Fatalf("counts %v", c)
	}
	if n := g.waitCount(t, "leaveRoom", 1); n != 1 {
		t.Fatalf("leaves: %d", n)
	}
}

func TestInvalidArgumentIsFinal(t *testing.T) {
	g := startGateway(t)
	conn, _ := Dial(g.address, DialOptions{})
	defer conn.Close()
	j := bob()
	j.IPAddress = "nope"
	_, err := Open(context.Background(), conn, j, Options{InitialBackoff: 50 * time.Millisecond})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "join.ip_address") {
		t.Fatalf("got %v", err)
	}
	if c := g.counts(t); c["joinRoom"] != 0 {
		t.Fatalf("counts %v", c)
	}
}

func TestUnavailableReconnects(t *testing.T) {
	g := startGateway(t)
	g.fault(t, `{"function":"joinRoom","http_status":503,"times":2}`)
	conn, _ := Dial(g.address, DialOptions{})
	defer conn.Close()
	v, err := Open(context.Background(), conn, bob(), Options{InitialBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if v.Reconnects() != 2 {
		t.Fatalf("reconnects %d", v.Reconnects())
	}
	v.Close()
	if n := g.waitCount(t, "leaveRoom", 1); n != 1 {
		t.Fatalf("leaves: %d", n)
	}
	if c := g.counts(t); c["joinRoom"] != 3 {
		t.Fatalf("counts %v", c)
	}
}

// proxy forwards TCP to a target; cut resets every connection through it,
// as a network blip would (new connections still work).
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c.(*net.TCPConn), u.(*net.TCPConn))
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.SetLinger(0)
		c.Close()
	}
	p.conns = nil
}

// With --resume_grace, a viewer whose connection dies reconnects with its
// token and takes its session back: VS sees no leave and no second join.
func TestACutConnectionIsResumed(t *testing.T) {
	g := startGateway(t, "--resume_grace=10s")
	p := startProxy(t, g.address)
	conn, _ := Dial(p.ln.Addr().String(), DialOptions{})
	defer conn.Close()
	v, err := Open(context.Background(), conn, bob(), Options{InitialBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	nickname, session := v.DisplayNickname(), v.SessionID()
	if v.Resumed() {
		t.Fatal("a first join cannot be resumed")
	}
	p.cut()
	deadline := time.Now().Add(10 * time.Second)
	for !(v.Reconnects() >= 1 && v.Resumed()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !v.Resumed() || v.DisplayNickname() != nickname || v.SessionID() != session {
		t.Fatalf("resumed %v, nickname %q (was %q), session %q (was %q)", v.Resumed(),
			v.DisplayNickname(), nickname, v.SessionID(), session)
	}
	v.Close()
	if n := g.waitCount(t, "leaveRoom", 1); n != 1 {
		t.Fatalf("leaves: %d", n)
	}
	if c := g.counts(t); c["joinRoom"] != 1 {
		t.Fatalf("counts %v", c)
	}
}

func TestExampleLeavesOnSigint(t *testing.T) {
	g := startGateway(t)
	bin := filepath.Join(t.TempDir(), "viewer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/viewer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-server", g.address, "-performer", "9", "-nickname", "zoe",
		"-ip", "2001:db8::1", "-customer", "3")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(out)
	line, _ := reader.ReadString('\n')
	if !strings.HasPrefix(line, "joined as zoe_1000") {
		t.Fatalf("first line %q", line)
	}
	time.Sleep(700 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	rest, _ := reader.ReadString('\n')
	if err := cmd.Wait(); err != nil || strings.TrimSpace(rest) != "left" {
		t.Fatalf("exit %v, output %q", err, rest)
	}
	if n := g.waitCount(t, "leaveRoom", 1); n != 1 {
		t.Fatalf("leaves: %d", n)
	}
	fmt.Println("example left cleanly")
}
