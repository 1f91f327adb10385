package streams

import (
	"encoding/json"
	"strconv"
	"time"
)

// MarshalActivity encodes a like json.Marshal, but writes rawEvent (the
// event as it was stored in EVENTS) verbatim as the "event" field and the
// contact's properties verbatim: both are valid JSON already, and
// re-encoding them (encoding/json validates and compacts every
// json.RawMessage) was a measurable share of the projection's CPU.
func MarshalActivity(a *Activity, rawEvent []byte) []byte {
	b := make([]byte, 0, len(rawEvent)+len(a.Contact.Properties)+384)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(a.V), 10)
	b = append(b, `,"event":`...)
	b = append(b, rawEvent...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, a.Seq, 10)
	b = append(b, `,"contactId":`...)
	b = appendString(b, a.ContactID)
	b = append(b, `,"key":`...)
	b = appendString(b, a.Key)
	b = append(b, `,"contact":{"id":`...)
	c := &a.Contact
	b = appendString(b, c.ID)
	b = append(b, `,"externalId":`...)
	b = appendStringPtr(b, c.ExternalID)
	b = append(b, `,"email":`...)
	b = appendStringPtr(b, c.Email)
	if c.AnonymousID != nil {
		b = append(b, `,"anonymousId":`...)
		b = appendString(b, *c.AnonymousID)
	}
	b = append(b, `,"properties":`...)
	if len(c.Properties) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, c.Properties...)
	}
	b = appendTimeField(b, "firstSeenAt", c.FirstSeenAt)
	b = appendTimeField(b, "lastSeenAt", c.LastSeenAt)
	b = appendTimeField(b, "createdAt", c.CreatedAt)
	b = appendTimeField(b, "updatedAt", c.UpdatedAt)
	if c.DeletedAt != nil {
		b = appendTimeField(b, "deletedAt", *c.DeletedAt)
	}
	b = append(b, `},"stored":`...)
	b = strconv.AppendBool(b, a.Stored)
	b = append(b, `,"created":`...)
	b = strconv.AppendBool(b, a.Created)
	b = append(b, `,"linked":`...)
	b = strconv.AppendBool(b, a.Linked)
	b = append(b, `,"merged":`...)
	b = strconv.AppendBool(b, a.Merged)
	if len(a.Folds) > 0 {
		folds, _ := json.Marshal(a.Folds)
		b = append(b, `,"folds":`...)
		b = append(b, folds...)
	}
	if len(a.MergedIDs) > 0 {
		ids, _ := json.Marshal(a.MergedIDs)
		b = append(b, `,"mergedIds":`...)
		b = append(b, ids...)
	}
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // exact JSON escaping; strings here are short
	return append(b, q...)
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

func appendTimeField(b []byte, name string, t time.Time) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
