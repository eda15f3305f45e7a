package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	presencev1 "github.com/vsmedia/presence/clients/go/presencev1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeVS is a real HTTP server that answers like VS and counts what it is told.
type fakeVS struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

func newFakeVS(t *testing.T) *fakeVS {
	vs := &fakeVS{calls: map[string]int{}}
	vs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("key") != "secret" || r.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		vs.mu.Lock()
		vs.calls[r.PostForm.Get("function")+" "+r.PostForm.Get("performerId")]++
		vs.mu.Unlock()
		fmt.Fprint(w, `{ success: true, message: "", nickname: "viewer" }`)
	}))
	t.Cleanup(vs.Close)
	return vs
}

func (vs *fakeVS) count(call string) int {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.calls[call]
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func startGateway(t *testing.T, vs *fakeVS, interval time.Duration) (*gateway, *grpc.Server, presencev1.PresenceClient) {
	g := newGateway(vs.URL, "secret", interval)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	presencev1.RegisterPresenceServer(server, g)
	go server.Serve(lis)
	t.Cleanup(server.Stop)
	conn, err := grpc.Dial(lis.Addr().String(), grpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return g, server, presencev1.NewPresenceClient(conn)
}

func join(t *testing.T, ctx context.Context, client presencev1.PresenceClient, performer int64) presencev1.Presence_SessionClient {
	t.Helper()
	stream, err := client.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Join{
		Join: &presencev1.Join{PerformerId: performer, Nickname: "guest", IpAddress: "198.51.100.7"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetJoined() == nil {
		t.Fatalf("no Joined: %v %v", resp, err)
	}
	return stream
}

func TestASessionJoinsPingsAndLeavesOnce(t *testing.T) {
	vs := newFakeVS(t)
	_, _, client := startGateway(t, vs, 20*time.Millisecond)
	stream := join(t, context.Background(), client, 7)
	waitFor(t, "two pings", func() bool { return vs.count("pingRoom 7") >= 2 })
	if err := stream.Send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Leave{Leave: &presencev1.Leave{}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetLeft() == nil {
		t.Fatalf("no Left: %v %v", resp, err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("the stream did not end OK: %v", err)
	}
	waitFor(t, "the leave", func() bool { return vs.count("leaveRoom 7") == 1 })
	if got := vs.count("joinRoom 7"); got != 1 {
		t.Errorf("joinRoom sent %d times, want 1", got)
	}
}

func TestACancelledStreamIsLeft(t *testing.T) {
	vs := newFakeVS(t)
	_, _, client := startGateway(t, vs, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	join(t, ctx, client, 8)
	cancel()
	waitFor(t, "the leave", func() bool { return vs.count("leaveRoom 8") == 1 })
}

func TestTheDrainLeavesEverySessionAndEndsItsStream(t *testing.T) {
	vs := newFakeVS(t)
	g, server, client := startGateway(t, vs, time.Hour)
	var streams []presencev1.Presence_SessionClient
	for performer := int64(1); performer <= 3; performer++ {
		streams = append(streams, join(t, context.Background(), client, performer))
	}
	g.drain(server, 10*time.Second)
	for i, stream := range streams {
		if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
			t.Errorf("stream %d ended with %v, want UNAVAILABLE", i, err)
		}
		if got := vs.count(fmt.Sprintf("leaveRoom %d", i+1)); got != 1 {
			t.Errorf("performer %d: leaveRoom sent %d times before the drain returned, want 1", i+1, got)
		}
	}
	if sent, accepted := g.leavesSent.Load(), g.leaves.Load(); sent != 3 || accepted != 3 {
		t.Errorf("leaves sent %d, accepted %d; want 3 and 3", sent, accepted)
	}
	if g.begin() {
		t.Error("a session began after the drain")
	}
}
