package ingest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/streams"
)

// SegmentMessage is a track or identify call of the Segment HTTP Tracking
// API. messageId becomes the idempotency key, traits the contact
// properties, properties the event properties.
type SegmentMessage struct {
	Type        string          `json:"type"`
	UserID      *string         `json:"userId"`
	AnonymousID *string         `json:"anonymousId"`
	Event       *string         `json:"event"`
	Name        *string         `json:"name"` // page and screen calls
	Properties  json.RawMessage `json:"properties"`
	Traits      json.RawMessage `json:"traits"`
	Context     *struct {
		Traits json.RawMessage `json:"traits"`
	} `json:"context"`
	MessageID *string `json:"messageId"`
	Timestamp *string `json:"timestamp"`
}

// segmentBasicAuth lets Segment clients, which send the write key as the
// HTTP Basic user name, authenticate like a bearer key.
func segmentBasicAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Basic ") {
			if raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic ")); err == nil {
				user, _, _ := strings.Cut(string(raw), ":")
				r = r.Clone(r.Context())
				r.Header.Set("Authorization", "Bearer "+user)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// toEvent maps a Segment message onto the envelope. kind is the route's
// type when the message has none (track, identify).
func (m *SegmentMessage) toEvent(kind string, now time.Time) (*streams.Event, error) {
	t := m.Type
	if t == "" {
		t = kind
	}
	e := &streams.Event{V: streams.EnvelopeVersion, ReceivedAt: now.UTC(), Source: "segment"}
	switch t {
	case "track":
		if m.Event == nil || *m.Event == "" {
			return nil, errcode.InvalidField("event", "required")
		}
		if err := CheckName(*m.Event); err != nil {
			return nil, err
		}
		e.Type, e.Name = streams.TypeTrack, *m.Event
		props, err := objectField("properties", m.Properties)
		if err != nil {
			return nil, err
		}
		e.EventProperties = props
	case "page", "screen":
		// Stored as a track event named after the call ("page"/"screen"),
		// with the page or screen name among its properties.
		e.Type, e.Name = streams.TypeTrack, t
		props, err := objectField("properties", m.Properties)
		if err != nil {
			return nil, err
		}
		if m.Name != nil && *m.Name != "" {
			props = withName(props, *m.Name)
		}
		e.EventProperties = props
	case "identify":
		e.Type = streams.TypeIdentify
	default:
		return nil, errcode.InvalidField("type", fmt.Sprintf("%q is not supported (track, identify)", t))
	}
	traits, err := objectField("traits", m.Traits)
	if err != nil {
		return nil, err
	}
	if traits == nil && m.Context != nil && m.Context.Traits != nil {
		if traits, err = objectField("context.traits", m.Context.Traits); err != nil {
			return nil, err
		}
	}
	if traits != nil {
		var email struct {
			Email *string `json:"email"`
		}
		if json.Unmarshal(traits, &email) == nil && email.Email != nil && *email.Email != "" {
			if !httpapi.ValidEmail(*email.Email) {
				return nil, errcode.InvalidField("traits.email", "must be a valid email address")
			}
			e.Email = *email.Email
		}
		e.ContactProperties = traits
	}
	if m.UserID != nil {
		e.UserID = strings.TrimSpace(*m.UserID)
	}
	if m.AnonymousID != nil {
		e.AnonymousID = strings.TrimSpace(*m.AnonymousID)
	}
	if e.UserID == "" && e.AnonymousID == "" && e.Email == "" {
		return nil, errcode.Invalid("userId or anonymousId is required")
	}
	if m.MessageID != nil {
		e.IdempotencyKey = "segment:" + *m.MessageID
	}
	if m.Timestamp != nil && *m.Timestamp != "" {
		// Segment libraries send RFC 3339 with offsets; store it in UTC.
		ts, err := time.Parse(time.RFC3339Nano, *m.Timestamp)
		if err != nil {
			return nil, errcode.InvalidField("timestamp", "must be an RFC 3339 date-time")
		}
		ts = ts.UTC()
		e.Timestamp = &ts
	}
	e.ID = NewID()
	return e, nil
}

func (s *Service) segmentTrack(w http.ResponseWriter, r *http.Request) { s.segmentOne(w, r, "track") }
func (s *Service) segmentIdentify(w http.ResponseWriter, r *http.Request) {
	s.segmentOne(w, r, "identify")
}

func (s *Service) segmentOne(w http.ResponseWriter, r *http.Request, kind string) {
	var m SegmentMessage
	if err := httpapi.DecodeJSON(w, r, &m, maxBodyBytes); err != nil {
		s.count("segment", "rejected", 1)
		httpapi.WriteError(w, r, err)
		return
	}
	if m.Type == "" {
		m.Type = kind
	} else if m.Type != kind {
		httpapi.WriteError(w, r, errcode.InvalidField("type", fmt.Sprintf("must be %q on this route", kind)))
		return
	}
	e, err := m.toEvent(kind, s.now())
	if err != nil {
		s.count("segment", "rejected", 1)
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := s.publish(r.Context(), e, "segment")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	// Segment clients only check for a 200; the body adds our result.
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "id": res.ID, "stored": res.Stored})
}

func (s *Service) segmentBatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Batch []json.RawMessage `json:"batch"`
	}
	if err := httpapi.DecodeJSON(w, r, &req, maxBatchBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if req.Batch == nil {
		httpapi.WriteError(w, r, errcode.InvalidField("batch", "required"))
		return
	}
	if len(req.Batch) > MaxBatchEvents {
		httpapi.WriteError(w, r, errcode.InvalidField("batch", fmt.Sprintf("at most %d messages per batch", MaxBatchEvents)))
		return
	}
	now := s.now()
	items := make([]BatchItem, len(req.Batch))
	var events []*streams.Event
	var at []int
	for i, raw := range req.Batch {
		items[i].Index = i
		var m SegmentMessage
		if !isObject(raw) || json.Unmarshal(raw, &m) != nil {
			err := errcode.Invalid("message must be a Segment track or identify object")
			items[i].Error, items[i].Code = errcode.Message(err), errcode.Code(err)
			continue
		}
		e, err := m.toEvent("", now)
		if err != nil {
			items[i].Error, items[i].Code = errcode.Message(err), errcode.Code(err)
			continue
		}
		events = append(events, e)
		at = append(at, i)
	}
	s.publishItems(r.Context(), "segment", events, at, items)
	res := summarize(items)
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"success": res.Rejected == 0, "accepted": res.Accepted, "rejected": res.Rejected, "results": res.Results})
}

// withName adds "name" to an event's properties unless they carry one.
func withName(props json.RawMessage, name string) json.RawMessage {
	m := map[string]json.RawMessage{}
	if len(props) > 0 {
		_ = json.Unmarshal(props, &m)
	}
	if _, ok := m["name"]; !ok {
		m["name"], _ = json.Marshal(name)
	}
	out, _ := json.Marshal(m)
	return out
}
