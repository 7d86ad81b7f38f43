package shoppingfeed_test

import (
	"testing"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// BenchmarkClient measures client requests per second against an
// in-process sandbox without latency, faults or rate limits: the cost of
// the client and the sandbox themselves over loopback HTTP.
func BenchmarkClient(b *testing.B) {
	cfg := sfsandboxtest.Config()
	srv, err := sfsandbox.Start(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	c, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: srv.URL, RateLimit: "none"}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok := config.Secret(sfsandboxtest.Token)
	orders := []shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: 5001}, Carrier: "Colissimo", TrackingNumber: "6A123"}}
	batch, err := c.Operate(b.Context(), tok, storeID, shoppingfeed.OpShip, orders)
	if err != nil {
		b.Fatal(err)
	}

	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	}
	b.Run("ship", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Operate(b.Context(), tok, storeID, shoppingfeed.OpShip, orders); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
		srv.Reset() // keep the sandbox's memory flat across runs
	})
	b.Run("ship-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Operate(b.Context(), tok, storeID, shoppingfeed.OpShip, orders); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
		srv.Reset()
	})
	if batch, err = c.Operate(b.Context(), tok, storeID, shoppingfeed.OpShip, orders); err != nil {
		b.Fatal(err)
	}
	b.Run("batch-tickets", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.BatchTickets(b.Context(), tok, storeID, batch.ID); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}
