package bus

import (
	"context"
	"encoding/json"
	"fmt"

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
