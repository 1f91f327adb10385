package bus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams"
)

// StoredEvent reads the event stored at seq in EVENTS. A duplicate publish
// acknowledges the sequence of the copy the stream kept; this lets the
// caller answer with that event's id.
func (p *Publisher) StoredEvent(ctx context.Context, seq uint64) (*streams.Event, error) {
	s, err := p.js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("open EVENTS: %w", err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("read event %d: %w", seq, err)
	}
	var e streams.Event
	if err := json.Unmarshal(raw.Data, &e); err != nil {
		return nil, fmt.Errorf("decode event %d: %w", seq, err)
	}
	return &e, nil
}

// LastSequence is the last sequence stored in stream: a position that
// every message published later comes after.
func LastSequence(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", stream, err)
	}
	return info.State.LastSeq, nil
}
