// Package sfsandboxtest starts an in-process Shopping Feed sandbox for a
// test, so that other modules' tests need one line (and the sandbox binary
// does not link the testing package).
package sfsandboxtest

import (
	"testing"

	"github.com/sfsync/sfsync/pkg/sfsandbox"
)

// Token and StoreID are what Config gives: one token owning one store.
const (
	Token   = "sandbox-test-token"
	StoreID = 1001
)

// Config returns a fast sandbox configuration for tests: Token owns
// StoreID, tickets are final at once, no fault, no rate limit, a fixed
// seed. Change what the test needs.
func Config() sfsandbox.Config {
	return sfsandbox.Config{
		Stores: sfsandbox.Tokens{{Token: Token, StoreIDs: []int64{StoreID}}},
		Seed:   1,
	}
}

// New starts a sandbox for cfg on a loopback port and closes it when the
// test ends. It fails the test when cfg is invalid.
func New(tb testing.TB, cfg sfsandbox.Config) *sfsandbox.Server {
	tb.Helper()
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("sfsandbox config: %v", err)
	}
	srv, err := sfsandbox.Start(cfg, nil)
	if err != nil {
		tb.Fatalf("start sfsandbox: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}
