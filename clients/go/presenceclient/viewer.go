// Package presenceclient holds one viewer's presence through the presence
// gateway: open the stream, join, report activity and credits, leave on Close.
//
//	conn, _ := presenceclient.Dial("127.0.0.1:50051")
//	v, err := presenceclient.Open(ctx, conn, presenceclient.Join{PerformerID: 42,
//		Nickname: "bob", IPAddress: "203.0.113.5"}, presenceclient.Options{})
//	fmt.Println(v.DisplayNickname())
//	defer v.Close()
//
// On UNAVAILABLE the viewer reconnects with capped, jittered exponential
// backoff and joins again; INVALID_ARGUMENT and FAILED_PRECONDITION are final.
// Errors carry the gRPC code (status.Code(err)). A Viewer is safe for use
// from several goroutines.
package presenceclient

import (
	"context"
	"errors"
	"math/rand"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	presencev1 "presence/gen/go/presence/v1"
)

// Dial connects with keepalive settings the server accepts (it allows client
// pings every 5 s or slower; a dead server is noticed in about 30 s).
func Dial(target string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}, extra...)
	return grpc.Dial(target, opts...)
}

// Join is what the viewer joins with.
type Join struct {
	PerformerID int64
	Nickname    string
	CustomerID  *int64 // nil for guests
	IPAddress   string
	Registered  bool
	Credits     int64
}

// Options tune a Viewer. Zero values take the defaults.
type Options struct {
	OnNotice       func(*presencev1.Notice)
	InitialBackoff time.Duration // default 500ms
	MaxBackoff     time.Duration // default 15s
}

// Viewer is one open presence.
type Viewer struct {
	client presencev1.PresenceClient
	join   *presencev1.SessionRequest
	opts   Options

	mu        sync.Mutex
	stream    presencev1.Presence_SessionClient
	cancel    context.CancelFunc
	nickname  string
	sessionID string
	// The last Joined's resume token (a secret: never log it) and whether
	// that join took a held session over.
	resumeToken string
	resumed     bool
	closing     bool
	reconnects  int
	credits     chan *presencev1.CreditsUpdated
	joined      chan error // first join outcome
	done        chan struct{}
}

// Open joins and returns once VS accepted the join, or with the error.
func Open(ctx context.Context, conn *grpc.ClientConn, j Join, opts Options) (*Viewer, error) {
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 15 * time.Second
	}
	v := &Viewer{
		client: presencev1.NewPresenceClient(conn),
		join: &presencev1.SessionRequest{Event: &presencev1.SessionRequest_Join{Join: &presencev1.Join{
			PerformerId: j.PerformerID, Nickname: j.Nickname, CustomerId: j.CustomerID,
			IpAddress: j.IPAddress, Registered: j.Registered, Credits: j.Credits}}},
		opts:    opts,
		credits: make(chan *presencev1.CreditsUpdated, 16),
		joined:  make(chan error, 1),
		done:    make(chan struct{}),
	}
	go v.run()
	select {
	case err := <-v.joined:
		if err != nil {
			return nil, err
		}
		return v, nil
	case <-ctx.Done():
		v.Close()
		return nil, ctx.Err()
	}
}

// DisplayNickname is the nickname as VS shows it.
func (v *Viewer) DisplayNickname() string { v.mu.Lock(); defer v.mu.Unlock(); return v.nickname }

// SessionID is the gateway's id for the current session.
func (v *Viewer) SessionID() string { v.mu.Lock(); defer v.mu.Unlock(); return v.sessionID }

// Resumed reports whether the latest join took over the session the server
// held after a lost stream (VS saw no leave and no join).
func (v *Viewer) Resumed() bool { v.mu.Lock(); defer v.mu.Unlock(); return v.resumed }

// Reconnects counts the joins made again after UNAVAILABLE.
func (v *Viewer) Reconnects() int { v.mu.Lock(); defer v.mu.Unlock(); return v.reconnects }

// Activity reports that the viewer was active; it postpones the next ping.
func (v *Viewer) Activity(kind presencev1.ActivityKind) error {
	return v.send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Activity{
		Activity: &presencev1.Activity{Kind: kind}}})
}

// UpdateCredits sends the customer's balance and waits for the answer.
func (v *Viewer) UpdateCredits(ctx context.Context, credits int64) (*presencev1.CreditsUpdated, error) {
	if err := v.send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Credits{
		Credits: &presencev1.CreditsUpdate{Credits: credits}}}); err != nil {
		return nil, err
	}
	select {
	case reply := <-v.credits:
		return reply, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-v.done:
		return nil, status.Error(codes.Unavailable, "the session ended")
	}
}

// Close leaves (the gateway sends leaveRoom) and waits for the stream to end.
func (v *Viewer) Close() error {
	v.mu.Lock()
	v.closing = true
	stream := v.stream
	v.mu.Unlock()
	if stream != nil {
		_ = stream.Send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Leave{Leave: &presencev1.Leave{}}})
		_ = stream.CloseSend()
	}
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		v.mu.Lock()
		if v.cancel != nil {
			v.cancel() // Cancelling also makes the gateway leave.
		}
		v.mu.Unlock()
		<-v.done
	}
	return nil
}

func (v *Viewer) send(req *presencev1.SessionRequest) error {
	v.mu.Lock()
	stream, closing := v.stream, v.closing
	v.mu.Unlock()
	if stream == nil || closing {
		return status.Error(codes.FailedPrecondition, "the session is not open")
	}
	return stream.Send(req)
}

func final(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted,
		codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

func (v *Viewer) run() {
	defer close(v.done)
	backoff := v.opts.InitialBackoff
	first := true
	report := func(err error) {
		if first {
			first = false
			v.joined <- err
		}
	}
	for {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := v.client.Session(ctx)
		if err == nil {
			// Every reconnect carries the last Joined's resume token: a server
			// holding the session takes it back without a leave or a join at VS.
			v.mu.Lock()
			v.join.GetJoin().ResumeToken = v.resumeToken
			v.mu.Unlock()
			err = stream.Send(v.join)
		}
		if err == nil {
			v.mu.Lock()
			if v.closing {
				v.mu.Unlock()
				cancel()
				report(status.Error(codes.Canceled, "closed"))
				return
			}
			v.stream, v.cancel = stream, cancel
			v.mu.Unlock()
			err = v.receive(stream, &backoff, report)
		}
		cancel()
		v.mu.Lock()
		v.stream = nil
		closing := v.closing
		v.mu.Unlock()
		if err == nil || closing {
			report(err)
			return
		}
		if final(status.Code(err)) {
			report(err)
			return
		}
		delay := time.Duration(float64(backoff) * (0.5 + rand.Float64()/2))
		if backoff *= 2; backoff > v.opts.MaxBackoff {
			backoff = v.opts.MaxBackoff
		}
		time.Sleep(delay)
		v.mu.Lock()
		v.reconnects++
		v.mu.Unlock()
	}
}

// receive reads until the stream ends; nil means it ended with OK.
func (v *Viewer) receive(stream presencev1.Presence_SessionClient, backoff *time.Duration,
	report func(error)) error {
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return status.Error(codes.Canceled, "cancelled")
			}
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
		switch ev := resp.Event.(type) {
		case *presencev1.SessionResponse_Joined:
			v.mu.Lock()
			v.nickname, v.sessionID = ev.Joined.Nickname, ev.Joined.SessionId
			v.resumeToken, v.resumed = ev.Joined.ResumeToken, ev.Joined.Resumed
			v.mu.Unlock()
			*backoff = v.opts.InitialBackoff
			report(nil)
		case *presencev1.SessionResponse_CreditsUpdated:
			v.credits <- ev.CreditsUpdated
		case *presencev1.SessionResponse_Notice:
			if v.opts.OnNotice != nil {
				v.opts.OnNotice(ev.Notice)
			}
		}
	}
}
