// Package presencev1 holds the Go stubs generated from the gateway's contract,
// protos/presence/v1/presence.proto. They are committed so that the module
// builds with one `go build`; CI checks that they match a fresh generation.
// To regenerate after changing the proto (needs protoc, protoc-gen-go and
// protoc-gen-go-grpc on PATH; Debian: protobuf-compiler, protoc-gen-go,
// protoc-gen-go-grpc), run `go generate ./...` in clients/go.
package presencev1

//go:generate protoc -I../../../protos -I/usr/include --go_out=.. --go_opt=module=github.com/vsmedia/presence/clients/go --go-grpc_out=.. --go-grpc_opt=module=github.com/vsmedia/presence/clients/go presence/v1/presence.proto
