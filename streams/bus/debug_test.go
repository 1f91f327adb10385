package bus_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func advisoryLog(t *testing.T, nc *nats.Conn) {
	start := time.Now()
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.>", func(m *nats.Msg) {
		if len(m.Subject) > 0 && (contains(m.Subject, "PINNED") || contains(m.Subject, "UNPINNED")) {
			t.Logf("%8s %s %s", time.Since(start).Truncate(time.Millisecond), m.Subject, string(m.Data))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
