package bus

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/streams"
)

// StreamConfigs returns the configuration of the five Hogsend streams.
//
// EVENTS and ACTIVITY take publishes on <root>.<key token> and store them
// as <root>.<partition>.<key token>: the subject transform hashes the token
// into one of streams.Partitions partitions, so an ordered consumer filters
// one partition with a single filter subject (streams.PartitionFilter).
func StreamConfigs(r streams.Retention) []jetstream.StreamConfig {
	replicas := r.Replicas
	if replicas < 1 {
		replicas = 1
	}
	partitioned := func(name, root string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:     name,
			Subjects: []string{root + ".*"},
			SubjectTransform: &jetstream.SubjectTransformConfig{
				Source:      root + ".*",
				Destination: fmt.Sprintf("%s.{{partition(%d,1)}}.{{wildcard(1)}}", root, streams.Partitions),
			},
			Retention:  jetstream.LimitsPolicy,
			Storage:    jetstream.FileStorage,
			Duplicates: r.Duplicates,
			Replicas:   replicas,
		}
	}
	events := partitioned(streams.StreamEvents, streams.EventsRoot)
	events.Description = "Every accepted event, immutable; the source of truth."
	events.MaxAge = r.EventsMaxAge
	activity := partitioned(streams.StreamActivity, streams.ActivityRoot)
	activity.Description = "Events after the contacts projection applied them, with a contact snapshot."
	activity.MaxAge = r.ActivityMaxAge
	workQueue := func(name, root, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{root + ".>"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  r.Duplicates,
			Replicas:    replicas,
		}
	}
	return []jetstream.StreamConfig{
		events,
		activity,
		workQueue(streams.StreamEmails, streams.EmailsRoot, "One send command per intended email."),
		workQueue(streams.StreamWebhooks, streams.WebhooksRoot, "One delivery per endpoint and outbound event."),
		{
			Name:        streams.StreamTimers,
			Description: "Scheduled wake-ups (message schedules) and the wake-ups they fired.",
			Subjects:    []string{streams.TimersRoot + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  r.Duplicates,
			Replicas:    replicas,
			// Schedules are roll-ups per subject; the server requires
			// AllowRollup with them and never lets them be turned off.
			AllowMsgSchedules: true,
			AllowRollup:       true,
		},
	}
}

// Provision creates the streams, or updates them to the current
// configuration; running it again changes nothing.
func Provision(ctx context.Context, js jetstream.JetStream, r streams.Retention) error {
	for _, cfg := range StreamConfigs(r) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// publishSubject maps a stored subject back to the subject it was published
// on: the partitioned streams store <root>.<p>.<token> but only accept
// <root>.<token>. Other subjects are returned unchanged.
func publishSubject(stored string) string {
	for _, root := range []string{streams.EventsRoot, streams.ActivityRoot} {
		rest, ok := strings.CutPrefix(stored, root+".")
		if !ok {
			continue
		}
		p, token, ok := strings.Cut(rest, ".")
		if !ok || strings.Contains(token, ".") {
			return stored
		}
		if _, err := strconv.Atoi(p); err != nil {
			return stored
		}
		return root + "." + token
	}
	return stored
}
