package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Pieces shared by the partitioned and the work-queue runner.

const defaultDrainTimeout = 30 * time.Second

// drainContext returns the context handlers run with: it outlives ctx by
// timeout, so a handler in progress when the runner is told to stop can
// finish (commit, ack) instead of being torn down halfway.
func drainContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(timeout, cancel)
		context.AfterFunc(hctx, func() { t.Stop() })
	})
	return hctx, func() {
		stop()
		cancel()
	}
}

// sleepCtx waits d or until ctx is done; it reports whether it waited d.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// safeCall runs f and turns a panic into an error, so one bad message
// cannot take the process (and every partition it serves) down.
func safeCall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// fatalConnErr reports errors after which fetching again is pointless.
func fatalConnErr(err error) bool {
	return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed)
}

// deadLetterer records messages a runner gives up on.
type deadLetterer struct {
	rec     DeadLetterRecorder
	source  string
	log     *slog.Logger
	metrics *Metrics
}

// record stores m as a dead letter. Without a recorder the message is
// logged in full at error level: never dropped silently.
func (d deadLetterer) record(ctx context.Context, m Msg, cause error) error {
	if d.rec == nil {
		d.log.Error("dead letter (no store configured)", "consumer", d.source, "subject", m.Subject,
			"seq", m.Seq, "error", cause, "data", string(m.Data))
		d.metrics.deadLetter(d.source)
		return nil
	}
	dl := DeadLetter{
		Source:    d.source,
		SourceID:  m.Header.Get(jetstream.MsgIDHeader),
		Subject:   m.Subject,
		StreamSeq: m.Seq,
		Data:      m.Data,
		Error:     cause.Error(),
	}
	if err := d.rec.Record(ctx, dl); err != nil {
		return err
	}
	d.log.Warn("dead letter", "consumer", d.source, "subject", m.Subject, "seq", m.Seq, "error", cause)
	d.metrics.deadLetter(d.source)
	return nil
}
