// Package natstest starts a real in-process JetStream server for tests.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams/embedded"
)

// Start runs a server on a fresh temporary store and returns it with one
// connection and its JetStream handle. Everything is closed when the test
// ends.
func Start(tb testing.TB) (*embedded.Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	return StartAt(tb, tb.TempDir())
}

// StartAt runs a server on dir. Shut the returned server down and call
// StartAt again with the same dir to test a restart: streams, consumers and
// pending schedules are recovered from the store.
func StartAt(tb testing.TB, dir string) (*embedded.Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	srv, err := embedded.Start(embedded.Options{DataDir: dir})
	if err != nil {
		tb.Fatalf("start embedded nats: %v", err)
	}
	// Shutdown is idempotent, so a test may stop the server early.
	tb.Cleanup(srv.Shutdown)
	nc, js := Connect(tb, srv)
	return srv, nc, js
}

// Connect opens another connection to srv, closed when the test ends. Use
// one per simulated process.
func Connect(tb testing.TB, srv *embedded.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := srv.Connect(opts...)
	if err != nil {
		tb.Fatalf("connect embedded nats: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
