// The Go clients of bench/sdk_bench: the Ferry Go SDK from this repository
// and franz-go, whose dependency stays here, out of sdk/go's go.mod.
module ferry.dev/ferry/bench/sdk_bench/go

go 1.26.0

require ferry.dev/ferry/sdk/go v0.0.0

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/twmb/franz-go v1.22.3
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
	golang.org/x/net v0.26.0 // indirect
	golang.org/x/sys v0.21.0 // indirect
	golang.org/x/text v0.16.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20240318140521-94a12d6c2237 // indirect
	google.golang.org/grpc v1.64.1 // indirect
	google.golang.org/protobuf v1.34.1 // indirect
)

replace ferry.dev/ferry/sdk/go => ../../../sdk/go
