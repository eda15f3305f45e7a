// Command viewer holds one viewer's presence until Ctrl-C, which leaves
// cleanly.
//
//	viewer -server 127.0.0.1:50051 -performer 42 -nickname bob -ip 203.0.113.5 [-customer 7 -credits 100]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"presence/clients/go/presenceclient"
	presencev1 "presence/gen/go/presence/v1"
)

func main() {
	server := flag.String("server", "127.0.0.1:50051", "gateway address")
	performer := flag.Int64("performer", 0, "performer id")
	nickname := flag.String("nickname", "", "viewer nickname")
	customer := flag.Int64("customer", 0, "customer id (0: guest)")
	ip := flag.String("ip", "", "viewer IP address")
	credits := flag.Int64("credits", 0, "credits the customer can spend")
	flag.Parse()

	conn, err := presenceclient.Dial(*server)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
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
		fmt.Fprintln(os.Stderr, "join failed:", err)
		os.Exit(1)
	}
	resumed := "no"
	if v.Resumed() {
		resumed = "yes"
	}
	fmt.Printf("joined as %s (session %s, resumed: %s)\n", v.DisplayNickname(), v.SessionID(), resumed)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	<-signals
	v.Close()
	fmt.Println("left")
}
