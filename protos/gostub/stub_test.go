// Package gostub checks that the Go stubs generated from presence.proto
// compile in GOPATH mode against Debian's grpc-go and protobuf, and marshal.
package gostub

import (
	"testing"

	"google.golang.org/protobuf/proto"

	presencev1 "github.com/vsmedia/presence/clients/go/presencev1"
)

func TestJoinRoundTrips(t *testing.T) {
	cid := int64(7)
	in := &presencev1.SessionRequest{Event: &presencev1.SessionRequest_Join{Join: &presencev1.Join{
		PerformerId: 42, Nickname: "Zoë & Co=1+1", CustomerId: &cid, IpAddress: "203.0.113.5",
		Registered: true, Credits: 10,
	}}}
	wire, err := proto.Marshal(in)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out presencev1.SessionRequest
	if err := proto.Unmarshal(wire, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	j := out.GetJoin()
	if j.GetNickname() != "Zoë & Co=1+1" || j.GetCustomerId() != 7 || j.CustomerId == nil {
		t.Fatalf("round trip changed the join: %v", j)
	}
}

func TestClientAndServerInterfacesExist(t *testing.T) {
	var _ func(presencev1.PresenceServer) = nil
	var _ presencev1.PresenceClient = presencev1.NewPresenceClient(nil)
	if got := presencev1.File_presence_v1_presence_proto.Services().Get(0).FullName(); got != "presence.v1.Presence" {
		t.Fatalf("service name %q", got)
	}
}
