module github.com/vsmedia/presence/tests/load/go_gateway

go 1.19

require (
	github.com/vsmedia/presence/clients/go v0.1.0
	google.golang.org/grpc v1.33.3
)
