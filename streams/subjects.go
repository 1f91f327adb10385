package streams

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// Partitions is the number of partitions of EVENTS and ACTIVITY. It is fixed
// when the streams are created: changing it needs new streams.
const Partitions = 16

// Stream names.
const (
	StreamEvents   = "EVENTS"
	StreamActivity = "ACTIVITY"
	StreamEmails   = "EMAILS"
	StreamWebhooks = "WEBHOOKS"
	StreamTimers   = "TIMERS"
)

// Subject roots.
const (
	EventsRoot   = "hogsend.events"
	ActivityRoot = "hogsend.activity"
	EmailsRoot   = "hogsend.emails"
	WebhooksRoot = "hogsend.webhooks"
	TimersRoot   = "hogsend.timers"

	// IngestSubject takes events published over NATS (request-reply answers
	// the same JSON as POST /v1/events).
	IngestSubject = "hogsend.ingest.events"
	// AppliedRoot carries projection notifications (core NATS, not stored).
	AppliedRoot = "hogsend.applied"
)

func lowerSlow(s string) string { return strings.ToLower(s) }

// KeyToken hashes a routing key into one subject token. Publishers put it in
// the subject; the stream's subject transform maps it to a partition.
func KeyToken(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	var b [8]byte
	sum := h.Sum64()
	for i := range b {
		b[i] = byte(sum >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

// EventSubject is the publish subject of an event.
func EventSubject(e *Event) string { return EventsRoot + "." + KeyToken(e.PartitionKey()) }

// ActivitySubject is the publish subject of an activity for a contact.
func ActivitySubject(contactID string) string {
	return ActivityRoot + "." + KeyToken("c:"+contactID)
}

// PartitionFilter is the filter subject of partition p of a partitioned
// stream root (EventsRoot or ActivityRoot) after the subject transform.
func PartitionFilter(root string, p int) string { return fmt.Sprintf("%s.%d.*", root, p) }

// AppliedSubject is where the contacts projection announces it applied an event.
func AppliedSubject(eventID string) string { return AppliedRoot + "." + eventID }

// Retention holds the stream limits that are configurable.
type Retention struct {
	EventsMaxAge   time.Duration
	ActivityMaxAge time.Duration
	// Duplicates is the JetStream dedupe window of every stream.
	Duplicates time.Duration
	Replicas   int
}

// DefaultRetention is used when nothing is configured.
var DefaultRetention = Retention{
	EventsMaxAge:   400 * 24 * time.Hour,
	ActivityMaxAge: 30 * 24 * time.Hour,
	Duplicates:     2 * time.Minute,
	Replicas:       1,
}

// PartitionOf is the partition the EVENTS and ACTIVITY subject transform
// ({{partition(16,1)}}) assigns to a key token: the server hashes the token
// with 32-bit FNV-1a modulo Partitions. streams/bus tests check it against a
// real server, so publishers can tell which partition a key lands on.
func PartitionOf(token string) int {
	h := fnv.New32a()
	h.Write([]byte(token))
	return int(h.Sum32() % Partitions)
}
