package bus_test

import (
	"log/slog"
	"strings"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func advisoryLog(t *testing.T, nc *nats.Conn) {
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.>", func(m *nats.Msg) {
		if len(m.Subject) > 0 && (contains(m.Subject, "PINNED") || contains(m.Subject, "UNPINNED")) {
			var a struct{ Consumer, Reason, Pinned_id string }
			json.Unmarshal(m.Data, &a)
			kind := "PIN  "
			if contains(m.Subject, "UNPINNED") {
				kind = "UNPIN"
			}
			t.Logf("%s %s %s %s %s", time.Now().Format("05.000"), kind, a.Consumer, a.Reason, a.Pinned_id)
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

func stallDetector(t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		last := time.Now()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tk.C:
				if d := now.Sub(last); d > 300*time.Millisecond {
					t.Logf("%s STALL %s", now.Format("05.000"), d)
				}
				last = now
			}
		}
	}()
}

type tlogWriter struct{ t *testing.T; name string }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s %s %s", time.Now().Format("05.000"), w.name, strings.TrimSpace(string(p)))
	return len(p), nil
}

func debugLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
			if a.Key == "time" || a.Key == "level" {
				return slog.Attr{}
			}
			return a
		}}))
}
