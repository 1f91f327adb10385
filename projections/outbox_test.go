package projections

import (
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

func TestOutboxEncodingRoundTrips(t *testing.T) {
	t.Parallel()
	msgs := []bus.OutMsg{
		{Subject: "hogsend.activity.ab", MsgID: "id-1", Data: []byte(`{"a":1}`)},
		{Subject: "hogsend.timers.sched.x.1", MsgID: "", Data: []byte{}, Header: nats.Header{"Nats-Schedule": {"@at 2026-01-01T00:00:00Z"}, "Nats-Schedule-Target": {"hogsend.timers.due.x"}}},
	}
	got, err := decodeOutbox(encodeOutbox(msgs))
	if err != nil {
		t.Fatal(err)
	}
	msgs[1].Data = nil // an empty body decodes as an empty slice
	got[1].Data = nil
	if !reflect.DeepEqual(got, msgs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, msgs)
	}
	if _, err := decodeOutbox([]byte{0x05, 'a'}); err == nil {
		t.Fatal("a truncated payload must fail")
	}
}
