package events

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

func TestEncodeEventIsProtoJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ev   *sfsyncv1.OrderStatusChanged
	}{
		{"empty", &sfsyncv1.OrderStatusChanged{}},
		{"detector", &sfsyncv1.OrderStatusChanged{ShopId: 1, OrderId: 42, OrderHistoryId: 1 << 40, OrderStateId: 4,
			ChangedAt: timestamppb.New(at), NotBefore: timestamppb.New(at.Add(5 * time.Minute)), Position: 1<<40 + 7, TaskId: 9,
			Source: "detector", ShopDb: "prestashop", Target: "webhook"}},
		{"partial refund", &sfsyncv1.OrderStatusChanged{ShopId: 1, OrderId: 42, OrderHistoryId: 7, Source: "detector", Action: "PARTIAL_REFUND"}},
		{"millis", &sfsyncv1.OrderStatusChanged{ChangedAt: timestamppb.New(at.Add(120 * time.Millisecond))}},
		{"micros", &sfsyncv1.OrderStatusChanged{ChangedAt: timestamppb.New(at.Add(7 * time.Microsecond))}},
		{"nanos", &sfsyncv1.OrderStatusChanged{ChangedAt: timestamppb.New(at.Add(3))}},
		{"quote in db name", &sfsyncv1.OrderStatusChanged{ShopDb: `shop"db\é`}},
		{"max", &sfsyncv1.OrderStatusChanged{ShopId: ^uint32(0), OrderHistoryId: ^uint64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeChange(tt.ev)
			var got sfsyncv1.OrderStatusChanged
			if err := protojson.Unmarshal(b, &got); err != nil {
				t.Fatalf("protojson rejects %s: %v", b, err)
			}
			if !proto.Equal(&got, tt.ev) {
				t.Fatalf("round trip of %s:\n got %v\nwant %v", b, &got, tt.ev)
			}
			// Same fields as protojson writes.
			ref, _ := protojson.Marshal(tt.ev)
			var a, r map[string]any
			if err := jsonUnmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			if err := jsonUnmarshal(ref, &r); err != nil {
				t.Fatal(err)
			}
			if len(a) != len(r) {
				t.Fatalf("fields %v, protojson writes %v", a, r)
			}
			for k, v := range r {
				if a[k] != v {
					t.Fatalf("field %s = %v, protojson writes %v", k, a[k], v)
				}
			}
		})
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := &sfsyncv1.OrderStatusChanged{ShopId: 1, OrderId: 42, OrderHistoryId: 123456, OrderStateId: 4,
		ChangedAt: timestamppb.Now(), NotBefore: timestamppb.Now(), Position: 123456, TaskId: 9, Source: "detector", ShopDb: "prestashop"}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			encodeChange(ev)
		}
	})
	b.Run("protojson", func(b *testing.B) {
		for b.Loop() {
			_, _ = protojson.Marshal(ev)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
