package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
	"github.com/seed-eeb360f6/hogsend/streams/embedded"
	"github.com/seed-eeb360f6/hogsend/streams/natstest"
)

// Every test cleans up its servers, connections, pools and runners, so
// nothing may be left running when the package's tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is one embedded server with the Hogsend streams provisioned.
type env struct {
	srv *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *bus.Publisher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, js, streams.DefaultRetention); err != nil {
		t.Fatalf("provision: %v", err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{JetStream: js})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, nc: nc, js: js, pub: pub}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// seqEvent is a track event of user key carrying its per-key number n.
func seqEvent(key string, n int) *streams.Event {
	return &streams.Event{
		V:               streams.EnvelopeVersion,
		ID:              fmt.Sprintf("%s-%d", key, n),
		Type:            streams.TypeTrack,
		Name:            "tick",
		UserID:          key,
		EventProperties: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		ReceivedAt:      time.Unix(0, 0).UTC(),
		Source:          "test",
	}
}

// decodeSeq returns the user id and per-key number of a seqEvent message.
func decodeSeq(t testing.TB, data []byte) (string, int) {
	var e streams.Event
	if err := json.Unmarshal(data, &e); err != nil {
		t.Errorf("decode event: %v", err)
		return "", 0
	}
	var p struct {
		N int `json:"n"`
	}
	if err := json.Unmarshal(e.EventProperties, &p); err != nil {
		t.Errorf("decode properties: %v", err)
	}
	return e.UserID, p.N
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func keyName(k int) string { return fmt.Sprintf("u%d", k) }
