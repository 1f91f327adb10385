package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Limits of the batch routes.
const (
	MaxBatchEvents = 500
	maxBodyBytes   = 1 << 20
	// maxBatchBodyBytes allows 500 events of about 2 KiB each.
	maxBatchBodyBytes = 1 << 20
)

// Publisher stores events in EVENTS.
type Publisher interface {
	PublishEvent(ctx context.Context, e *streams.Event) (bus.Published, error)
	PublishEvents(ctx context.Context, events []*streams.Event) ([]bus.PublishResult, error)
	StoredEvent(ctx context.Context, seq uint64) (*streams.Event, error)
}

// Service is the ingestion front door.
type Service struct {
	exits   ExitChecker
	pub     Publisher
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
}

// Options configure the service.
type Options struct {
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Exits reports, in the answer of POST /v1/events, the live journey
	// states the event ends (nil: none are reported).
	Exits ExitChecker
}

// ExitChecker tells which live journey states of the event's contact have
// an exitOn matching the event (spec 10 §1.4), for the answer; the
// journeys consumer performs the exits, in order with the contact's other
// events.
type ExitChecker interface {
	Exits(ctx context.Context, e *streams.Event) ([]Exit, error)
}

// Exit is one state an event was checked against.
type Exit struct {
	JourneyID string `json:"journeyId"`
	StateID   string `json:"stateId"`
	Exited    bool   `json:"exited"`
}

type metrics struct {
	events *prometheus.CounterVec
}

// New returns the ingestion service.
func New(pub Publisher, opts Options) (*Service, error) {
	s := &Service{pub: pub, now: opts.Now, log: opts.Logger, exits: opts.Exits}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	m := &metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hogsend_ingest_events_total",
		Help: "Events received by ingestion, by path and outcome (stored, duplicate, rejected, failed).",
	}, []string{"path", "outcome"})}
	if opts.Registry != nil {
		if err := opts.Registry.Register(m.events); err != nil {
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}
	s.metrics = m
	return s, nil
}

func (s *Service) count(path, outcome string, n int) {
	s.metrics.events.WithLabelValues(path, outcome).Add(float64(n))
}

// Routes registers the ingestion routes; all need a key with the ingest
// scope (the Segment routes also take the key as HTTP Basic user name).
func (s *Service) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	ingest := httpapi.RequireScope(auth, "ingest")
	segment := func(h http.Handler) http.Handler { return segmentBasicAuth(ingest(h)) }
	eventSchema := httpapi.ObjectSchema(map[string]httpapi.Schema{
		"name":              httpapi.StringSchema(),
		"email":             {"type": "string", "format": "email"},
		"userId":            httpapi.StringSchema(),
		"eventProperties":   httpapi.AnyObjectSchema(),
		"contactProperties": httpapi.AnyObjectSchema(),
		"lists":             {"type": "object", "additionalProperties": httpapi.BooleanSchema()},
		"idempotencyKey":    httpapi.StringSchema(),
		"timestamp":         httpapi.DateTimeSchema(),
	}, "name")
	accepted := httpapi.ObjectSchema(map[string]httpapi.Schema{"id": httpapi.UUIDSchema(), "stored": httpapi.BooleanSchema(),
		"exits": httpapi.ArraySchema(httpapi.ObjectSchema(map[string]httpapi.Schema{
			"journeyId": httpapi.StringSchema(), "stateId": httpapi.UUIDSchema(), "exited": httpapi.BooleanSchema()}, "journeyId", "stateId", "exited"))}, "id", "stored", "exits")
	r.Handle(http.MethodPost, "/v1/events", ingest(http.HandlerFunc(s.postEvent)), httpapi.Doc{
		Summary: "Ingest one event", Tags: []string{"events"}, Scope: "ingest", Request: eventSchema,
		Description: "Answers once the event is stored in the EVENTS stream; stored is false when the idempotency key (or Idempotency-Key header) was already seen within the dedupe window. Contacts, history, segments and journeys are updated asynchronously, in order per contact.",
		Responses:   map[int]httpapi.Response{202: {Description: "Accepted", Schema: accepted}},
	})
	r.Handle(http.MethodPost, "/v1/events/batch", ingest(http.HandlerFunc(s.postBatch)), httpapi.Doc{
		Summary: "Ingest up to 500 events", Tags: []string{"events"}, Scope: "ingest",
		Request:   httpapi.ObjectSchema(map[string]httpapi.Schema{"events": httpapi.ArraySchema(eventSchema)}, "events"),
		Responses: map[int]httpapi.Response{202: {Description: "Per-event results; a bad item does not reject the others"}},
	})
	r.Handle(http.MethodPost, "/v1/track", segment(http.HandlerFunc(s.segmentTrack)), httpapi.Doc{
		Summary: "Segment-compatible track", Tags: []string{"segment"}, Scope: "ingest",
		Responses: map[int]httpapi.Response{200: {Description: "Accepted"}},
	})
	r.Handle(http.MethodPost, "/v1/identify", segment(http.HandlerFunc(s.segmentIdentify)), httpapi.Doc{
		Summary: "Segment-compatible identify", Tags: []string{"segment"}, Scope: "ingest",
		Responses: map[int]httpapi.Response{200: {Description: "Accepted"}},
	})
	r.Handle(http.MethodPost, "/v1/batch", segment(http.HandlerFunc(s.segmentBatch)), httpapi.Doc{
		Summary: "Segment-compatible batch", Tags: []string{"segment"}, Scope: "ingest",
		Responses: map[int]httpapi.Response{200: {Description: "Accepted"}},
	})
}

func headerKey(r *http.Request) *string {
	if v, ok := r.Header["Idempotency-Key"]; ok {
		k := ""
		if len(v) > 0 {
			k = v[0]
		}
		return &k
	}
	return nil
}

func (s *Service) postEvent(w http.ResponseWriter, r *http.Request) {
	var req EventRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		s.count("api", "rejected", 1)
		httpapi.WriteError(w, r, err)
		return
	}
	e, err := req.ToEvent(headerKey(r), s.now(), "api")
	if err != nil {
		s.count("api", "rejected", 1)
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := s.publish(r.Context(), e, "api")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := eventResponse{EventResult: res, Exits: []Exit{}}
	if res.Stored && s.exits != nil {
		exits, err := s.exits.Exits(r.Context(), e)
		if err != nil {
			// The event is stored and the exits will happen; only the
			// report is missing.
			httpapi.Logger(r.Context()).Warn("report exits", "event", e.ID, "err", err)
		} else if exits != nil {
			out.Exits = exits
		}
	}
	httpapi.WriteJSON(w, http.StatusAccepted, out)
}

// eventResponse is the answer of POST /v1/events (spec 10 §1.1).
type eventResponse struct {
	EventResult
	Exits []Exit `json:"exits"`
}

// Ingest validates one request and publishes it.
func (s *Service) Ingest(ctx context.Context, req *EventRequest, headerKey *string, source string) (EventResult, error) {
	e, err := req.ToEvent(headerKey, s.now(), source)
	if err != nil {
		s.count(source, "rejected", 1)
		return EventResult{}, err
	}
	return s.publish(ctx, e, source)
}

func (s *Service) publish(ctx context.Context, e *streams.Event, path string) (EventResult, error) {
	p, err := s.pub.PublishEvent(ctx, e)
	if err != nil {
		s.count(path, "failed", 1)
		return EventResult{}, unavailable(err)
	}
	if !p.Duplicate {
		s.count(path, "stored", 1)
		return EventResult{ID: e.ID, Stored: true}, nil
	}
	s.count(path, "duplicate", 1)
	if err := s.reapply(ctx, e); err != nil {
		return EventResult{}, unavailable(err)
	}
	return EventResult{ID: s.originalID(ctx, e, p.Seq), Stored: false}, nil
}

// reapply keeps the reference's rule for a duplicate (spec 10 §1.3): the
// event is not stored again, but its contact properties and lists still
// apply and the contact is seen. The stream dropped the duplicate, so the
// contact part travels as an identify event of its own.
func (s *Service) reapply(ctx context.Context, e *streams.Event) error {
	id := &streams.Event{
		V: streams.EnvelopeVersion, ID: NewID(), Type: streams.TypeIdentify,
		UserID: e.UserID, AnonymousID: e.AnonymousID, Email: e.Email,
		ContactProperties: e.ContactProperties, Lists: e.Lists,
		ReceivedAt: e.ReceivedAt, Source: e.Source,
	}
	if _, err := s.pub.PublishEvent(ctx, id); err != nil {
		return fmt.Errorf("re-apply duplicate's contact properties: %w", err)
	}
	return nil
}

// originalID is the id of the event a duplicate repeated, so a retrying
// client learns the id that was stored. When the stream cannot tell (the
// copy aged out), the new id is returned: nothing was stored under it.
func (s *Service) originalID(ctx context.Context, e *streams.Event, seq uint64) string {
	orig, err := s.pub.StoredEvent(ctx, seq)
	if err != nil || orig.MsgID() != e.MsgID() {
		return e.ID
	}
	return orig.ID
}

func unavailable(err error) error {
	return errcode.Unavailable("Event store unavailable, retry with the same idempotency key", err)
}

// BatchRequest is the body of POST /v1/events/batch.
type BatchRequest struct {
	Events []json.RawMessage `json:"events"`
}

// BatchItem is the outcome of one event of a batch.
type BatchItem struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Stored bool   `json:"stored"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`
}

// BatchResult answers a batch.
type BatchResult struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Results  []BatchItem `json:"results"`
}

func (s *Service) postBatch(w http.ResponseWriter, r *http.Request) {
	var req BatchRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBatchBodyBytes); err != nil {
		s.count("batch", "rejected", 1)
		httpapi.WriteError(w, r, err)
		return
	}
	if req.Events == nil {
		httpapi.WriteError(w, r, errcode.InvalidField("events", "required"))
		return
	}
	if len(req.Events) > MaxBatchEvents {
		httpapi.WriteError(w, r, errcode.InvalidField("events", fmt.Sprintf("at most %d events per batch", MaxBatchEvents)))
		return
	}
	now := s.now()
	items := make([]BatchItem, len(req.Events))
	var events []*streams.Event
	var at []int
	for i, raw := range req.Events {
		items[i].Index = i
		e, err := decodeItem(raw, now)
		if err != nil {
			s.count("batch", "rejected", 1)
			items[i].Error, items[i].Code = errcode.Message(err), errcode.Code(err)
			continue
		}
		events = append(events, e)
		at = append(at, i)
	}
	s.publishItems(r.Context(), "batch", events, at, items)
	httpapi.WriteJSON(w, http.StatusAccepted, summarize(items))
}

func decodeItem(raw json.RawMessage, now time.Time) (*streams.Event, error) {
	if !isObject(raw) {
		return nil, errcode.Invalid("event must be an object")
	}
	var req EventRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, errcode.InvalidField(te.Field, "has the wrong type")
		}
		return nil, errcode.Invalid("malformed event")
	}
	return req.ToEvent(nil, now, "batch")
}

func (s *Service) publishItems(ctx context.Context, path string, events []*streams.Event, at []int, items []BatchItem) {
	if len(events) == 0 {
		return
	}
	results, err := s.pub.PublishEvents(ctx, events)
	for j, e := range events {
		it := &items[at[j]]
		it.ID = e.ID
		// Per-item results say which failed; err alone means none got out.
		perr := err
		if len(results) == len(events) {
			perr = results[j].Err
		}
		if perr != nil {
			s.count(path, "failed", 1)
			uerr := unavailable(perr)
			it.ID, it.Error, it.Code = "", errcode.Message(uerr), errcode.Code(uerr)
			continue
		}
		it.Stored = !results[j].Duplicate
		if it.Stored {
			s.count(path, "stored", 1)
		} else {
			s.count(path, "duplicate", 1)
			if err := s.reapply(ctx, e); err != nil {
				uerr := unavailable(err)
				it.ID, it.Error, it.Code = "", errcode.Message(uerr), errcode.Code(uerr)
				continue
			}
			it.ID = s.originalID(ctx, e, results[j].Seq)
		}
	}
}

func summarize(items []BatchItem) BatchResult {
	res := BatchResult{Results: items}
	for _, it := range items {
		if it.Error == "" {
			res.Accepted++
		} else {
			res.Rejected++
		}
	}
	return res
}

// SubscribeNATS starts answering events published on streams.IngestSubject:
// the body is the POST /v1/events body (optionally with the
// Idempotency-Key header) and a request gets the same JSON the HTTP route
// answers. The subscription is live when it returns; drain it to stop.
func (s *Service) SubscribeNATS(ctx context.Context, nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(streams.IngestSubject, "hogsend-ingest", func(m *nats.Msg) {
		reply := s.handleNATS(ctx, m)
		if m.Reply != "" {
			if err := m.Respond(reply); err != nil {
				s.log.Warn("answer nats ingest request", "err", err)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", streams.IngestSubject, err)
	}
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", streams.IngestSubject, err)
	}
	return sub, nil
}

func (s *Service) handleNATS(ctx context.Context, m *nats.Msg) []byte {
	var req EventRequest
	var key *string
	if v := m.Header.Values("Idempotency-Key"); len(v) > 0 {
		key = &v[0]
	}
	var res any
	err := json.Unmarshal(m.Data, &req)
	if err != nil || !isObject(m.Data) {
		s.count("nats", "rejected", 1)
		err = errcode.Invalid("Malformed JSON in request body")
	} else {
		res, err = s.Ingest(ctx, &req, key, "nats")
	}
	if err != nil {
		s.log.Debug("nats ingest rejected", "err", err)
		res = map[string]any{"error": errcode.Message(err), "code": errcode.Code(err), "status": errcode.Status(errcode.Code(err))}
	}
	data, _ := json.Marshal(res)
	return data
}
