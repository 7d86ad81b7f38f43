// Package proto holds sfsync's event contract: the .proto sources and the Go
// generated from them (committed; `make generate` regenerates it).
package proto
