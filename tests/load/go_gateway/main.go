// Command go_gateway is the baseline of BENCHMARKS.md: the straightforward Go
// gateway the performance issue measured us against, rebuilt so that both run
// under one harness (tests/load/presence_bench.sh with
// PRESENCE_BENCH_GATEWAY). grpc-go and net/http, a goroutine per stream and a
// ticker per session; no retries, no priorities, no resume.
//
// It takes the flags of presence_server that the benchmark passes and serves
// the benchmark's metrics under the same names. It is a yardstick, not a
// product: it speaks enough of presence.v1 for the load generator.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	presencev1 "github.com/vsmedia/presence/clients/go/presencev1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	listen        = flag.String("listen", "127.0.0.1:50051", "gRPC address")
	vsURL         = flag.String("vs_url", "", "VS base URL")
	metricsListen = flag.String("metrics_listen", "", "address of /metrics")
	pingInterval  = flag.Duration("ping_interval", 10*time.Second, "pingRoom interval")
	drainTimeout  = flag.Duration("drain_timeout", 20*time.Second, "bound on the drain")
	_             = flag.Int("max_sessions", 0, "accepted for presence_server's command line; unused")
)

func main() {
	flag.Parse()
	key := os.Getenv("VS_KEY")
	if *vsURL == "" || key == "" {
		log.Fatal("--vs_url and VS_KEY are required")
	}
	g := newGateway(*vsURL, key, *pingInterval)
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	server := grpc.NewServer()
	presencev1.RegisterPresenceServer(server, g)
	if *metricsListen != "" {
		go func() { log.Print(http.ListenAndServe(*metricsListen, http.HandlerFunc(g.serveMetrics))) }()
	}
	log.Printf("listening address=%s", lis.Addr())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		g.drain(server, *drainTimeout)
		os.Exit(0)
	}()
	if err := server.Serve(lis); err != nil {
		log.Fatal(err)
	}
}

type gateway struct {
	presencev1.UnimplementedPresenceServer
	endpoint string
	client   *http.Client
	interval time.Duration
	stopping chan struct{}
	sessions sync.WaitGroup // From before the join's POST until the leave's answer.
	mu       sync.Mutex
	draining bool // Under mu: no session begins once set.

	joined, joins, leavesSent, leaves, pings atomic.Int64
	lateness                                 histogram
}

func newGateway(vsBase, key string, interval time.Duration) *gateway {
	return &gateway{
		endpoint: strings.TrimSuffix(vsBase, "/") + "/customer?key=" + url.QueryEscape(key),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64,
		}},
		interval: interval,
		stopping: make(chan struct{}),
	}
}

// drain ends every session (each stream's goroutine sends its own leave) and
// stops the server when every leave is answered, or after timeout.
func (g *gateway) drain(server *grpc.Server, timeout time.Duration) {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
	close(g.stopping)
	done := make(chan struct{})
	go func() { g.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
	log.Printf("drained leaves_sent=%d leaves_accepted=%d", g.leavesSent.Load(), g.leaves.Load())
	server.Stop()
}

func (g *gateway) Session(stream presencev1.Presence_SessionServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	join := first.GetJoin()
	if join == nil {
		return status.Error(codes.InvalidArgument, "the first message must be a join")
	}
	presence := url.Values{"performerId": {strconv.FormatInt(join.PerformerId, 10)}, "nickname": {join.Nickname}}
	if join.CustomerId != nil {
		presence.Set("customerId", strconv.FormatInt(*join.CustomerId, 10))
	}
	joinForm := url.Values{"ipAddress": {join.IpAddress}, "credits": {strconv.FormatInt(join.Credits, 10)}}
	joinForm.Set("registered", "0")
	if join.Registered {
		joinForm.Set("registered", "1")
	}
	for k, v := range presence {
		joinForm[k] = v
	}
	if !g.begin() {
		return status.Error(codes.Unavailable, "the gateway is shutting down")
	}
	defer g.sessions.Done()
	if !g.call("joinRoom", joinForm) {
		return status.Error(codes.Unavailable, "VS did not accept the join")
	}
	g.joins.Add(1)
	g.joined.Add(1)
	defer g.joined.Add(-1)
	defer func() {
		g.leavesSent.Add(1)
		if g.call("leaveRoom", presence) {
			g.leaves.Add(1)
		}
	}()
	if err := stream.Send(&presencev1.SessionResponse{Event: &presencev1.SessionResponse_Joined{
		Joined: &presencev1.Joined{Nickname: join.Nickname}}}); err != nil {
		return err
	}
	return g.hold(stream, presence)
}

// begin counts a session the drain waits for; false once draining.
func (g *gateway) begin() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		return false
	}
	g.sessions.Add(1)
	return true
}

// hold pings until the client leaves, half-closes or goes, or the gateway drains.
func (g *gateway) hold(stream presencev1.Presence_SessionServer, presence url.Values) error {
	ended := make(chan error, 1)
	var lastActivity atomic.Int64
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			if msg.GetLeave() != nil {
				ended <- nil
				return
			}
			if msg.GetActivity() != nil {
				lastActivity.Store(time.Now().UnixNano())
			}
		}
	}()
	next := time.Now().Add(g.interval) // Not after the ticker's first tick.
	ticker := time.NewTicker(g.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			now := time.Now()
			var due time.Time // The latest due time passed (ticks that came late are dropped).
			for !next.After(now) {
				due, next = next, next.Add(g.interval)
			}
			if now.Sub(time.Unix(0, lastActivity.Load())) < g.interval {
				continue
			}
			g.lateness.record(now.Sub(due))
			if g.call("pingRoom", presence) {
				g.pings.Add(1)
			}
		case err := <-ended:
			if err == nil {
				return stream.Send(&presencev1.SessionResponse{Event: &presencev1.SessionResponse_Left{Left: &presencev1.Left{}}})
			}
			if err == io.EOF {
				return nil
			}
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-g.stopping:
			return status.Error(codes.Unavailable, "the gateway is shutting down")
		}
	}
}

// call POSTs one VS function; true when VS answered success.
func (g *gateway) call(function string, form url.Values) bool {
	body := url.Values{"function": {function}}
	for k, v := range form {
		body[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint, strings.NewReader(body.Encode()))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return err == nil && resp.StatusCode == http.StatusOK && strings.Contains(string(answer), "success: true")
}

func (g *gateway) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintf(w, "presence_sessions_joined %d\n", g.joined.Load())
	fmt.Fprintf(w, "presence_joins_total{outcome=\"accepted\"} %d\n", g.joins.Load())
	fmt.Fprintf(w, "presence_leaves_total{outcome=\"accepted\"} %d\n", g.leaves.Load())
	fmt.Fprintf(w, "presence_pings_total{outcome=\"accepted\"} %d\n", g.pings.Load())
	g.lateness.write(w, "presence_ping_lateness")
}

// histogram counts durations twice: in fine buckets (four per doubling from
// 1 µs) for the quantiles, and in presence_server's exposition buckets.
type histogram struct {
	fine   [112]atomic.Int64
	coarse [len(coarseBounds) + 1]atomic.Int64 // The last is +Inf.
}

var coarseBounds = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func fineBound(i int) float64 { return 1e-6 * math.Pow(2, float64(i)/4) }

func (h *histogram) record(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(h.fine)-1 && s > fineBound(i) {
		i++
	}
	h.fine[i].Add(1)
	j := 0
	for j < len(coarseBounds) && s > coarseBounds[j] {
		j++
	}
	h.coarse[j].Add(1)
}

// write prints the buckets the way presence_server does (cumulative, bounds
// in seconds), and the quantiles as the upper bounds of their fine buckets.
func (h *histogram) write(w io.Writer, name string) {
	var cumulative int64
	for j, b := range coarseBounds {
		cumulative += h.coarse[j].Load()
		fmt.Fprintf(w, "%s_seconds_bucket{le=\"%g\"} %d\n", name, b, cumulative)
	}
	cumulative += h.coarse[len(coarseBounds)].Load()
	fmt.Fprintf(w, "%s_seconds_bucket{le=\"+Inf\"} %d\n", name, cumulative)
	var counts [len(h.fine)]int64
	var total int64
	for i := range h.fine {
		counts[i] = h.fine[i].Load()
		total += counts[i]
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		cumulative = 0
		for i, c := range counts {
			cumulative += c
			if total > 0 && float64(cumulative) >= q*float64(total) {
				fmt.Fprintf(w, "%s_quantile_seconds{quantile=\"%g\"} %g\n", name, q, fineBound(i))
				break
			}
		}
	}
}
