// Command viewer holds one viewer's presence until Ctrl-C, which leaves
// cleanly. Build it with `go build ./cmd/viewer` in clients/go.
//
//	viewer -server 127.0.0.1:50051 -performer 42 -nickname bob -ip 203.0.113.5 [-customer 7 -credits 100]
//	       [-ca ca.pem [-cert client.pem -key client.key] [-token-file token]]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vsmedia/presence/clients/go/presenceclient"
	presencev1 "github.com/vsmedia/presence/clients/go/presencev1"
)

func main() {
	server := flag.String("server", "127.0.0.1:50051", "gateway address")
	performer := flag.Int64("performer", 0, "performer id")
	nickname := flag.String("nickname", "", "viewer nickname")
	customer := flag.Int64("customer", 0, "customer id (0: guest)")
	ip := flag.String("ip", "", "viewer IP address")
	credits := flag.Int64("credits", 0, "credits the customer can spend")
	ca := flag.String("ca", "", "CA certificate (PEM) that signed the gateway's: enables TLS")
	cert := flag.String("cert", "", "client certificate (PEM), with -key, for a gateway that asks for one")
	key := flag.String("key", "", "client private key (PEM)")
	tokenFile := flag.String("token-file", "", "file holding the bearer token (needs -ca)")
	flag.Parse()

	var dial presenceclient.DialOptions
	if *ca != "" {
		config, err := presenceclient.TLSConfig(*ca, *cert, *key)
		if err != nil {
			fail("tls:", err)
		}
		dial.TLS = config
	}
	if *tokenFile != "" {
		token, err := os.ReadFile(*tokenFile)
		if err != nil {
			fail("token:", err)
		}
		dial.Token = strings.TrimSpace(string(token))
	}
	conn, err := presenceclient.Dial(*server, dial)
	if err != nil {
		fail("dial:", err)
	}
	defer conn.Close()
	join := presenceclient.Join{PerformerID: *performer, Nickname: *nickname, IPAddress: *ip, Credits: *credits}
	if *customer > 0 {
		join.CustomerID, join.Registered = customer, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := presenceclient.Open(ctx, conn, join, presenceclient.Options{
		OnNotice: func(n *presencev1.Notice) { fmt.Printf("notice: %s %s\n", n.Kind, n.Message) },
	})
	if err != nil {
		fail("join failed:", err)
	}
	resumed := "no"
	if v.Resumed() {
		resumed = "yes"
	}
	fmt.Printf("joined as %s (session %s, resumed: %s)\n", v.DisplayNickname(), v.SessionID(), resumed)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	select {
	case <-signals:
		v.Close()
		fmt.Println("left")
	case <-v.Done():
		fail("session ended:", v.Err())
	}
}

func fail(what string, err error) {
	fmt.Fprintln(os.Stderr, what, err)
	os.Exit(1)
}
