package embedded_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams/embedded"
)

func TestInProcessAndRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()

	srv, err := embedded.Start(embedded.Options{DataDir: dir, ServerName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if u := srv.ClientURL(); u != "" {
		t.Errorf("ClientURL without listener = %q, want empty", u)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()

	srv, err = embedded.Start(embedded.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err = srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "s.1")
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("message after restart = %v, %v", m, err)
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Start(embedded.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	u := srv.ClientURL()
	if !strings.HasPrefix(u, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", u)
	}
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatalf("tcp connect: %v", err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]embedded.Options{
		"no data dir": {},
		"bad listen":  {DataDir: t.TempDir(), Listen: "nohostport"},
		"bad port":    {DataDir: t.TempDir(), Listen: "127.0.0.1:x"},
	} {
		if srv, err := embedded.Start(o); err == nil {
			srv.Shutdown()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}
