// Package bus is Hogsend's JetStream layer: stream provisioning, publishing
// with msg-id dedupe, the ordered partitioned runner and the work-queue
// runner, outcome classification and dead letters.
package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a consumed message as handlers see it. Handlers never ack: they
// return an outcome and the runner acks, retries or terminates.
type Msg struct {
	// Subject is the stored subject (hogsend.events.<p>.<token> on the
	// partitioned streams).
	Subject string
	// Seq is the stream sequence, the position a checkpoint records.
	Seq uint64
	// NumDelivered counts deliveries of this message, 1 on the first.
	NumDelivered uint64
	Data         []byte
	Header       nats.Header
	// Timestamp is when the stream stored the message.
	Timestamp time.Time
}

func toMsg(m jetstream.Msg) (Msg, error) {
	md, err := m.Metadata()
	if err != nil {
		return Msg{}, fmt.Errorf("read message metadata: %w", err)
	}
	return Msg{
		Subject:      m.Subject(),
		Seq:          md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		Data:         m.Data(),
		Header:       m.Headers(),
		Timestamp:    md.Timestamp,
	}, nil
}
