// Package presenceclient holds one viewer's presence through the presence
// gateway: open the stream, join, report activity and credits, leave on Close.
//
//	conn, err := presenceclient.Dial("gateway:50051", presenceclient.DialOptions{})
//	v, err := presenceclient.Open(ctx, conn, presenceclient.Join{PerformerID: 42,
//		Nickname: "bob", IPAddress: "203.0.113.5"}, presenceclient.Options{})
//	fmt.Println(v.DisplayNickname())
//	defer v.Close()
//	<-v.Done() // only if the session ending by itself matters; then v.Err() says why
//
// A lost connection, UNAVAILABLE or any other passing error makes the viewer
// reconnect with capped, jittered exponential backoff and join again, sending
// the last session's resume token: a gateway with --resume_grace takes the
// session back and VS sees nothing. The final codes end the session for good
// (see Final); Err then returns the error, which carries the gRPC code
// (status.Code(err)). A Viewer is safe for use from several goroutines.
package presenceclient

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	presencev1 "github.com/vsmedia/presence/clients/go/presencev1"
)

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
	// OnNotice is called, on the viewer's receiving goroutine and with no
	// lock held, for every notice (a failed ping). It may call the Viewer.
	OnNotice       func(*presencev1.Notice)
	InitialBackoff time.Duration // default 500ms
	MaxBackoff     time.Duration // default 15s
}

// Final reports whether a status code ends the session for good rather than
// being retried: INVALID_ARGUMENT (a bad join), FAILED_PRECONDITION (VS
// refused it), RESOURCE_EXHAUSTED (the gateway is full), UNAUTHENTICATED (no
// or a wrong token) and PERMISSION_DENIED (VS booted the customer). Every
// other code (UNAVAILABLE, DEADLINE_EXCEEDED, a lost connection...) reconnects.
func Final(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted,
		codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}

// errClosed is Err's answer after Close: the session ended as asked.
var errClosed = status.Error(codes.Canceled, "presenceclient: closed")

// Viewer is one open presence.
type Viewer struct {
	client presencev1.PresenceClient
	opts   Options
	jitter *rand.Rand // used by the run goroutine only

	closed chan struct{} // closed by the first Close
	done   chan struct{} // closed when the session is over for good
	joined chan error    // the first join's outcome
	// creditsMu serialises UpdateCredits so that each caller sends and is
	// answered in turn: the gateway answers credits in order.
	creditsMu sync.Mutex
	closeOnce sync.Once

	mu          sync.Mutex
	join        *presencev1.SessionRequest // carries the last resume token
	stream      *attempt
	nickname    string
	sessionID   string
	resumeToken string // a secret: never log it
	resumed     bool
	reconnects  int
	err         error
}

// attempt is one stream; sends are serialised (a gRPC stream allows one
// sender at a time) and credits answers go to the waiting caller.
type attempt struct {
	stream presencev1.Presence_SessionClient
	cancel context.CancelFunc

	sendMu  sync.Mutex
	mu      sync.Mutex
	waiters []chan *presencev1.CreditsUpdated // FIFO, one per credits sent
	over    bool
}

// Open joins and returns once VS accepted the join, or with the error.
func Open(ctx context.Context, conn grpc.ClientConnInterface, j Join, opts Options) (*Viewer, error) {
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 15 * time.Second
	}
	var seed [8]byte
	_, _ = crand.Read(seed[:])
	v := &Viewer{
		client: presencev1.NewPresenceClient(conn),
		join: &presencev1.SessionRequest{Event: &presencev1.SessionRequest_Join{Join: &presencev1.Join{
			PerformerId: j.PerformerID, Nickname: j.Nickname, CustomerId: j.CustomerID,
			IpAddress: j.IPAddress, Registered: j.Registered, Credits: j.Credits}}},
		opts:   opts,
		jitter: rand.New(rand.NewSource(int64(binary.LittleEndian.Uint64(seed[:])))),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		joined: make(chan error, 1),
	}
	go v.run()
	select {
	case err := <-v.joined:
		if err != nil {
			<-v.done
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

// Resumed reports whether the latest join took over the session the gateway
// held after a lost stream (VS saw no leave and no join).
func (v *Viewer) Resumed() bool { v.mu.Lock(); defer v.mu.Unlock(); return v.resumed }

// Reconnects counts the joins made again after a passing error.
func (v *Viewer) Reconnects() int { v.mu.Lock(); defer v.mu.Unlock(); return v.reconnects }

// Done is closed when the session is over for good: after Close, or a final
// error (a boot by VS, a refused join...). Err then says why.
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Err is nil while the session runs or after it ended with OK; after Close
// it is a CANCELED error; otherwise the final error (status.Code(err)).
func (v *Viewer) Err() error { v.mu.Lock(); defer v.mu.Unlock(); return v.err }

// Activity reports that the viewer was active; it postpones the next ping.
func (v *Viewer) Activity(kind presencev1.ActivityKind) error {
	a, err := v.current()
	if err != nil {
		return err
	}
	return a.send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Activity{
		Activity: &presencev1.Activity{Kind: kind}}})
}

// UpdateCredits sends the customer's balance and waits for the gateway's
// answer to this very update (concurrent callers take turns).
func (v *Viewer) UpdateCredits(ctx context.Context, credits int64) (*presencev1.CreditsUpdated, error) {
	v.creditsMu.Lock()
	defer v.creditsMu.Unlock()
	a, err := v.current()
	if err != nil {
		return nil, err
	}
	reply, err := a.sendCredits(credits)
	if err != nil {
		return nil, err
	}
	select {
	case answer, ok := <-reply:
		if !ok {
			return nil, status.Error(codes.Unavailable, "presenceclient: the stream ended before the answer")
		}
		return answer, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close leaves (the gateway sends leaveRoom) and waits for the stream to end.
// It returns at once if the session is already over, and never waits for a
// reconnect's backoff.
func (v *Viewer) Close() error {
	v.closeOnce.Do(func() { close(v.closed) })
	v.mu.Lock()
	a := v.stream
	v.mu.Unlock()
	if a != nil {
		_ = a.send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Leave{Leave: &presencev1.Leave{}}})
		a.closeSend()
	}
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		if a != nil {
			a.cancel() // Cancelling also makes the gateway leave.
		}
		<-v.done
	}
	return nil
}

func (v *Viewer) current() (*attempt, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-v.closed:
		return nil, status.Error(codes.FailedPrecondition, "presenceclient: the viewer is closed")
	case <-v.done:
		return nil, status.Errorf(codes.FailedPrecondition, "presenceclient: the session is over: %v", v.err)
	default:
	}
	if v.stream == nil {
		return nil, status.Error(codes.Unavailable, "presenceclient: reconnecting")
	}
	return v.stream, nil
}

func (v *Viewer) run() {
	backoff := v.opts.InitialBackoff
	first := true
	finish := func(err error) {
		v.mu.Lock()
		v.err = err
		v.mu.Unlock()
		if first {
			v.joined <- err
		}
		close(v.done)
	}
	for {
		err := v.attempt(func() {
			backoff = v.opts.InitialBackoff
			if first {
				first = false
				v.joined <- nil
			}
		})
		select {
		case <-v.closed:
			finish(errClosed)
			return
		default:
		}
		if err == nil || Final(status.Code(err)) {
			finish(err)
			return
		}
		delay := time.Duration(float64(backoff) * (0.5 + v.jitter.Float64()/2))
		if backoff *= 2; backoff > v.opts.MaxBackoff {
			backoff = v.opts.MaxBackoff
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-v.closed:
			timer.Stop()
			finish(errClosed)
			return
		}
		v.mu.Lock()
		v.reconnects++
		v.mu.Unlock()
	}
}

// attempt opens one stream, joins and reads until it ends; nil means it ended
// with OK. onJoined runs after each Joined.
func (v *Viewer) attempt(onJoined func()) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := v.client.Session(ctx)
	if err != nil {
		return err
	}
	a := &attempt{stream: stream, cancel: cancel}
	v.mu.Lock()
	// Every reconnect carries the last Joined's resume token: a gateway
	// holding the session takes it back without a leave or a join at VS.
	v.join.GetJoin().ResumeToken = v.resumeToken
	join := v.join
	select {
	case <-v.closed:
		v.mu.Unlock()
		return errClosed
	default:
	}
	v.stream = a
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.stream = nil
		v.mu.Unlock()
		a.end()
	}()
	if err := a.send(join); err != nil {
		return v.recvError(stream)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch ev := resp.Event.(type) {
		case *presencev1.SessionResponse_Joined:
			v.mu.Lock()
			v.nickname, v.sessionID = ev.Joined.Nickname, ev.Joined.SessionId
			v.resumeToken, v.resumed = ev.Joined.ResumeToken, ev.Joined.Resumed
			v.mu.Unlock()
			onJoined()
		case *presencev1.SessionResponse_CreditsUpdated:
			a.answer(ev.CreditsUpdated)
		case *presencev1.SessionResponse_Notice:
			if v.opts.OnNotice != nil {
				v.opts.OnNotice(ev.Notice)
			}
		}
	}
}

// recvError returns the status that ended a stream whose send failed (gRPC
// reports the reason on Recv, not on Send).
func (v *Viewer) recvError(stream presencev1.Presence_SessionClient) error {
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (a *attempt) send(req *presencev1.SessionRequest) error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.stream.Send(req)
}

func (a *attempt) closeSend() {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	_ = a.stream.CloseSend()
}

// sendCredits queues a waiter and sends, in one step, so waiters stay in the
// order the gateway answers in.
func (a *attempt) sendCredits(credits int64) (<-chan *presencev1.CreditsUpdated, error) {
	reply := make(chan *presencev1.CreditsUpdated, 1)
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	a.mu.Lock()
	if a.over {
		a.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "presenceclient: reconnecting")
	}
	a.waiters = append(a.waiters, reply)
	a.mu.Unlock()
	err := a.stream.Send(&presencev1.SessionRequest{Event: &presencev1.SessionRequest_Credits{
		Credits: &presencev1.CreditsUpdate{Credits: credits}}})
	if err != nil {
		a.mu.Lock()
		a.waiters = a.waiters[:len(a.waiters)-1]
		a.mu.Unlock()
		return nil, err
	}
	return reply, nil
}

func (a *attempt) answer(u *presencev1.CreditsUpdated) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiters) == 0 {
		return
	}
	a.waiters[0] <- u // buffered: a caller that gave up is not waited for
	a.waiters = a.waiters[1:]
}

// end fails the credits still waiting: their answers cannot come any more.
func (a *attempt) end() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.over = true
	for _, w := range a.waiters {
		close(w)
	}
	a.waiters = nil
}
