package preferences

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// ListsConsumer is the durable name of the consumer that applies the
// lists map of ingested events and contact upserts.
const ListsConsumer = "lists"

// ApplyLists is the lists consumer on ACTIVITY (a bus.BatchHandlerFunc):
// the `lists` map of POST /v1/events and PUT /v1/contacts flips the
// contact's categories through the one write primitive, once the contacts
// projection applied the event (spec 20 §3.4). Ids are not validated, as
// in the reference. A contact without an email cannot hold list
// membership: the entry is skipped with a warning. Set only writes the
// given value, so a redelivered batch changes nothing further.
func (s *Store) ApplyLists(ctx context.Context, _ int, msgs []bus.Msg) error {
	for _, m := range msgs {
		var a streams.Activity
		if err := json.Unmarshal(m.Data, &a); err != nil {
			s.log.Error("dropping undecodable activity", "seq", m.Seq, "err", err)
			continue
		}
		if len(a.Event.Lists) == 0 || !a.Stored || a.Contact.DeletedAt != nil {
			continue
		}
		if a.Contact.Email == nil || *a.Contact.Email == "" {
			s.log.Warn("Contact has no email; cannot manage list membership", "contact", a.ContactID, "event", a.Event.ID)
			continue
		}
		// The preference key is the external id, else the contact's uuid
		// (spec 20 §3.1), never the anonymous id.
		userID := a.ContactID
		if a.Contact.ExternalID != nil && *a.Contact.ExternalID != "" {
			userID = *a.Contact.ExternalID
		}
		ids := make([]string, 0, len(a.Event.Lists))
		for id := range a.Event.Lists {
			ids = append(ids, id)
		}
		slices.Sort(ids) // deterministic order of the flips (and their events)
		for _, id := range ids {
			v := a.Event.Lists[id]
			if _, err := s.Set(ctx, userID, *a.Contact.Email, Change{Category: id, CategoryValue: &v}); err != nil {
				if errcode.Code(err) == errcode.CodeInvalidRequest {
					s.log.Warn("skipping list membership", "list", id, "event", a.Event.ID, "err", err)
					continue
				}
				return fmt.Errorf("apply list %s of event %s: %w", id, a.Event.ID, err)
			}
		}
	}
	return nil
}
