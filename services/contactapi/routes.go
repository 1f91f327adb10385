package contactapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/projections/contacts"
	"github.com/seed-eeb360f6/hogsend/services/errcode"
	"github.com/seed-eeb360f6/hogsend/services/httpapi"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
)

const (
	maxBodyBytes    = 1 << 20
	msgContactGone  = "Contact not found"
	msgNeedIdentity = "email or userId is required"
	maxExportRows   = 100000
)

// Routes registers the public and admin routes.
func (s *Service) Routes(r *httpapi.Router, auth httpapi.Authenticator) {
	ingest := httpapi.RequireScope(auth, "ingest")
	read := httpapi.RequireScope(auth, "read")
	write := httpapi.RequireScope(auth, "journey-admin")
	tags := []string{"contacts"}

	r.Handle(http.MethodPut, "/v1/contacts", ingest(http.HandlerFunc(s.upsert)), httpapi.Doc{
		Summary: "Create or update a contact", Tags: tags, Scope: "ingest",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{"email": {"type": "string", "format": "email"}, "userId": httpapi.StringSchema(),
			"properties": httpapi.AnyObjectSchema(), "lists": {"type": "object", "additionalProperties": httpapi.BooleanSchema()}}),
		Responses: map[int]httpapi.Response{200: {Description: "{id, created, linked}"}, 202: {Description: "Stored, not yet applied"}},
	})
	r.Handle(http.MethodGet, "/v1/contacts/find", ingest(http.HandlerFunc(s.find)), httpapi.Doc{
		Summary: "Find contacts by email or userId", Tags: tags, Scope: "ingest",
		Query: []httpapi.QueryParam{{Name: "email", Schema: httpapi.StringSchema()}, {Name: "userId", Schema: httpapi.StringSchema()}},
	})
	r.Handle(http.MethodDelete, "/v1/contacts", ingest(http.HandlerFunc(s.deletePublic)), httpapi.Doc{
		Summary: "Soft-delete the contacts matching email or userId", Tags: tags, Scope: "ingest",
		Request: httpapi.ObjectSchema(map[string]httpapi.Schema{"email": httpapi.StringSchema(), "userId": httpapi.StringSchema()}),
	})

	admin := []string{"admin", "contacts"}
	r.Handle(http.MethodGet, "/v1/admin/contacts", read(http.HandlerFunc(s.list)), httpapi.Doc{
		Summary: "List and search contacts", Tags: admin, Scope: "read",
		Query: append(httpapi.PaginationQuery(), httpapi.QueryParam{Name: "search", Schema: httpapi.StringSchema()}),
	})
	r.Handle(http.MethodPost, "/v1/admin/contacts", write(http.HandlerFunc(s.create)), httpapi.Doc{
		Summary: "Create (or resolve) a contact", Tags: admin, Scope: "journey-admin",
		Request:   httpapi.ObjectSchema(map[string]httpapi.Schema{"externalId": httpapi.StringSchema(), "email": {"type": "string", "format": "email"}, "properties": httpapi.AnyObjectSchema()}),
		Responses: map[int]httpapi.Response{201: {Description: "{contact}"}},
	})
	r.Handle(http.MethodGet, "/v1/admin/contacts/export", read(http.HandlerFunc(s.export)), httpapi.Doc{
		Summary: "Export contacts as JSON or CSV", Tags: admin, Scope: "read",
		Query: []httpapi.QueryParam{{Name: "format", Schema: httpapi.EnumSchema("json", "csv")}, {Name: "search", Schema: httpapi.StringSchema()}, {Name: "limit", Schema: httpapi.IntegerSchema()}},
	})
	r.Handle(http.MethodGet, "/v1/admin/contacts/:id", read(http.HandlerFunc(s.get)), httpapi.Doc{
		Summary: "Get a contact by id or external id", Tags: admin, Scope: "read",
	})
	r.Handle(http.MethodPatch, "/v1/admin/contacts/:id", write(http.HandlerFunc(s.patch)), httpapi.Doc{
		Summary: "Update a contact's email or properties", Tags: admin, Scope: "journey-admin",
		Description: "Properties merge (null deletes a key). An email replaces the stored one; an email another live contact owns is 409 and changes nothing.",
		Request:     httpapi.ObjectSchema(map[string]httpapi.Schema{"email": {"type": "string", "format": "email"}, "properties": httpapi.AnyObjectSchema()}),
	})
	r.Handle(http.MethodDelete, "/v1/admin/contacts/:id", write(http.HandlerFunc(s.deleteAdmin)), httpapi.Doc{
		Summary: "Soft-delete a contact", Tags: admin, Scope: "journey-admin",
	})
	r.Handle(http.MethodGet, "/v1/admin/contacts/:id/timeline", read(http.HandlerFunc(s.timeline)), httpapi.Doc{
		Summary: "A contact's timeline, newest first", Tags: admin, Scope: "read",
		Query: append(httpapi.PaginationQuery(), httpapi.QueryParam{Name: "type", Schema: httpapi.EnumSchema("event", "journey", "email")}),
	})
	events := []string{"admin", "events"}
	r.Handle(http.MethodGet, "/v1/admin/events", read(http.HandlerFunc(s.listEvents)), httpapi.Doc{
		Summary: "List stored events, newest first", Tags: events, Scope: "read",
		Query: append(httpapi.PaginationQuery(), httpapi.QueryParam{Name: "event", Schema: httpapi.StringSchema()}, httpapi.QueryParam{Name: "userId", Schema: httpapi.StringSchema()}),
	})
	r.Handle(http.MethodPost, "/v1/admin/events", write(http.HandlerFunc(s.testEvent)), httpapi.Doc{
		Summary: "Ingest a test event", Tags: events, Scope: "journey-admin",
		Request:   httpapi.ObjectSchema(map[string]httpapi.Schema{"event": httpapi.StringSchema(), "userId": httpapi.StringSchema(), "userEmail": httpapi.StringSchema(), "properties": httpapi.AnyObjectSchema()}, "event"),
		Responses: map[int]httpapi.Response{202: {Description: "{id, stored}"}},
	})
	r.Handle(http.MethodGet, "/v1/admin/events/:id", read(http.HandlerFunc(s.getEvent)), httpapi.Doc{
		Summary: "Get a stored event", Tags: events, Scope: "read",
	})
}

type upsertRequest struct {
	Email      *string         `json:"email"`
	UserID     *string         `json:"userId"`
	Properties json.RawMessage `json:"properties"`
	Lists      map[string]bool `json:"lists"`
}

func objectField(name string, raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil {
		return nil, nil
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return nil, errcode.InvalidField(name, "must be an object")
	}
	return raw, nil
}

func (s *Service) upsert(w http.ResponseWriter, r *http.Request) {
	var req upsertRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e := s.newEvent(streams.TypeIdentify, "api")
	if req.Email != nil {
		if !httpapi.ValidEmail(*req.Email) {
			httpapi.WriteError(w, r, errcode.InvalidField("email", "must be a valid email address"))
			return
		}
		e.Email = *req.Email
	}
	if req.UserID != nil {
		if *req.UserID == "" {
			httpapi.WriteError(w, r, errcode.InvalidField("userId", "must not be empty"))
			return
		}
		e.UserID = strings.TrimSpace(*req.UserID)
	}
	if e.UserID == "" && e.Email == "" {
		httpapi.WriteError(w, r, errcode.Invalid(msgNeedIdentity))
		return
	}
	props, err := objectField("properties", req.Properties)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e.ContactProperties, e.Lists = props, req.Lists
	a, err := s.apply(r.Context(), e)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": a.ContactID, "created": a.Created, "linked": a.Linked})
}

// normalizeKeys matches the resolver: email trimmed and lower-cased,
// userId trimmed.
func normalizeKeys(email, userID string) (string, string) {
	return contacts.NormalizeEmail(email), strings.TrimSpace(userID)
}

func (s *Service) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("email") == "" && q.Get("userId") == "" {
		httpapi.WriteError(w, r, errcode.Invalid(msgNeedIdentity))
		return
	}
	email, userID := normalizeKeys(q.Get("email"), q.Get("userId"))
	rows, err := s.q().ContactFindByKeys(r.Context(), dbsqlc.ContactFindByKeysParams{Email: email, ExternalID: userID})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]Contact, len(rows))
	for i, c := range rows {
		out[i] = publicContact(c)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"contacts": out})
}

type deleteRequest struct {
	Email  *string `json:"email"`
	UserID *string `json:"userId"`
}

func (s *Service) deletePublic(w http.ResponseWriter, r *http.Request) {
	var req deleteRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var rawEmail, rawUser string
	if req.Email != nil {
		rawEmail = *req.Email
	}
	if req.UserID != nil {
		rawUser = *req.UserID
	}
	if rawEmail == "" && rawUser == "" {
		httpapi.WriteError(w, r, errcode.Invalid(msgNeedIdentity))
		return
	}
	email, userID := normalizeKeys(rawEmail, rawUser)
	// Answer 404 without writing an event when nothing matches now.
	rows, err := s.q().ContactFindByKeys(r.Context(), dbsqlc.ContactFindByKeysParams{Email: email, ExternalID: userID})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if len(rows) == 0 {
		httpapi.WriteError(w, r, errcode.NotFound(msgContactGone))
		return
	}
	e := s.newEvent(streams.TypeDelete, "api")
	e.Email, e.UserID = email, userID
	_, err = s.apply(r.Context(), e)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deleted": true})
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	search := r.URL.Query().Get("search")
	q := s.q()
	rows, err := q.ContactList(r.Context(), dbsqlc.ContactListParams{Search: search, Lim: int32(limit), Off: int32(offset)})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	total, err := q.ContactCount(r.Context(), search)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]AdminContact, len(rows))
	for i, c := range rows {
		out[i] = adminContact(c)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"contacts": out, "total": total, "limit": limit, "offset": offset})
}

// lookup reads a live contact by uuid, else by external id.
func (s *Service) lookup(r *http.Request) (dbsqlc.Contact, error) {
	id := httpapi.Param(r, "id")
	q := s.q()
	var c dbsqlc.Contact
	var err error
	if u, perr := uuid.Parse(id); perr == nil {
		c, err = q.ContactGetByID(r.Context(), u)
	} else {
		c, err = q.ContactGetByExternalID(r.Context(), &id)
	}
	return c, notFoundOr(err, msgContactGone)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	// preferences join once the email preferences table exists.
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"contact": adminContact(c), "preferences": nil})
}

type createRequest struct {
	ExternalID *string         `json:"externalId"`
	Email      *string         `json:"email"`
	Properties json.RawMessage `json:"properties"`
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e := s.newEvent(streams.TypeIdentify, "admin")
	if req.ExternalID != nil {
		if strings.TrimSpace(*req.ExternalID) == "" {
			httpapi.WriteError(w, r, errcode.InvalidField("externalId", "must not be blank"))
			return
		}
		e.UserID = strings.TrimSpace(*req.ExternalID)
	}
	if req.Email != nil {
		if !httpapi.ValidEmail(*req.Email) {
			httpapi.WriteError(w, r, errcode.InvalidField("email", "must be a valid email address"))
			return
		}
		e.Email = *req.Email
	}
	if e.UserID == "" && e.Email == "" {
		httpapi.WriteError(w, r, errcode.Invalid("Provide at least one of externalId or email"))
		return
	}
	props, err := objectField("properties", req.Properties)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e.ContactProperties = props
	s.writeAndShow(w, r, e, http.StatusCreated)
}

// writeAndShow applies e and answers with the contact it touched.
func (s *Service) writeAndShow(w http.ResponseWriter, r *http.Request, e *streams.Event, status int) {
	a, err := s.apply(r.Context(), e)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id, err := uuid.Parse(a.ContactID)
	if err != nil {
		httpapi.WriteError(w, r, errcode.Internal(err))
		return
	}
	c, err := s.q().ContactGetByID(r.Context(), id)
	if err != nil {
		httpapi.WriteError(w, r, notFoundOr(err, msgContactGone))
		return
	}
	httpapi.WriteJSON(w, status, map[string]any{"contact": adminContact(c)})
}

type patchRequest struct {
	Email      *string         `json:"email"`
	Properties json.RawMessage `json:"properties"`
}

func (s *Service) patch(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var req patchRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e := s.newEvent(streams.TypeIdentify, "admin")
	e.ContactID = c.ID.String()
	if req.Email != nil {
		if !httpapi.ValidEmail(*req.Email) {
			httpapi.WriteError(w, r, errcode.InvalidField("email", "must be a valid email address"))
			return
		}
		e.Email = *req.Email
	}
	props, err := objectField("properties", req.Properties)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e.ContactProperties = props
	s.writeAndShow(w, r, e, http.StatusOK)
}

func (s *Service) deleteAdmin(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e := s.newEvent(streams.TypeDelete, "admin")
	e.ContactID = c.ID.String()
	_, err = s.apply(r.Context(), e)
	if err != nil {
		writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deleted": true})
}

func (s *Service) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		httpapi.WriteError(w, r, errcode.InvalidField("format", "must be json or csv"))
		return
	}
	limit, err := httpapi.QueryInt(r, "limit", 10000, 1, maxExportRows)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rows, err := s.q().ContactExport(r.Context(), dbsqlc.ContactExportParams{Search: q.Get("search"), Lim: int32(limit)})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if format == "json" {
		out := make([]map[string]any, len(rows))
		for i, c := range rows {
			out[i] = map[string]any{"id": c.ID, "externalId": c.ExternalID, "email": c.Email, "properties": json.RawMessage(c.Properties),
				"firstSeenAt": httpapi.NewTime(c.FirstSeenAt), "lastSeenAt": httpapi.NewTime(c.LastSeenAt), "createdAt": httpapi.NewTime(c.CreatedAt)}
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"contacts": out})
		return
	}
	// RFC 4180: fields with commas, quotes or newlines are quoted (the
	// reference replaced commas with semicolons instead).
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.UseCRLF = true
	_ = cw.Write([]string{"externalId", "email", "properties", "firstSeenAt", "lastSeenAt"})
	for _, c := range rows {
		_ = cw.Write([]string{deref(c.ExternalID), deref(c.Email), string(c.Properties), httpapi.FormatTime(c.FirstSeenAt), httpapi.FormatTime(c.LastSeenAt)})
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="contacts.csv"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// timelineEntry is one item of a contact's timeline.
type timelineEntry struct {
	Type      string       `json:"type"`
	Timestamp httpapi.Time `json:"timestamp"`
	Data      any          `json:"data"`
}

func (s *Service) timeline(w http.ResponseWriter, r *http.Request) {
	c, err := s.lookup(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	typ := r.URL.Query().Get("type")
	if typ != "" && typ != "event" && typ != "journey" && typ != "email" {
		httpapi.WriteError(w, r, errcode.InvalidField("type", "must be event, journey or email"))
		return
	}
	// Each source fetches limit+offset rows; the merge is sliced after
	// (spec 10 §2.8).
	want := int32(limit + offset)
	q := s.q()
	key := contactKey(c)
	var events, journeys []timelineEntry
	var total int64
	if typ == "" || typ == "event" {
		rows, err := q.UserEventListByKey(r.Context(), dbsqlc.UserEventListByKeyParams{UserID: key, Lim: want, Off: 0})
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		n, err := q.UserEventCountByKey(r.Context(), key)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		total += n
		for _, e := range rows {
			props := e.Properties
			if len(props) == 0 {
				props = json.RawMessage("{}")
			}
			events = append(events, timelineEntry{Type: "event", Timestamp: httpapi.NewTime(e.OccurredAt),
				Data: map[string]any{"id": e.ID, "event": e.Event, "properties": props}})
		}
	}
	if typ == "" || typ == "journey" {
		rows, err := q.TimelineJourneyStates(r.Context(), dbsqlc.TimelineJourneyStatesParams{UserID: key, Lim: want})
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		n, err := q.TimelineJourneyStateCount(r.Context(), key)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		total += n
		for _, st := range rows {
			journeys = append(journeys, timelineEntry{Type: "journey", Timestamp: httpapi.NewTime(st.CreatedAt),
				Data: map[string]any{"id": st.ID, "journeyId": st.JourneyID, "status": st.Status, "currentNodeId": st.CurrentNodeID,
					"completedAt": httpapi.TimePtr(st.CompletedAt), "exitedAt": httpapi.TimePtr(st.ExitedAt)}})
		}
	}
	var emails []timelineEntry
	if typ == "" || typ == "email" {
		rows, err := q.TimelineEmailSends(r.Context(), dbsqlc.TimelineEmailSendsParams{UserID: &key, Lim: want})
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		n, err := q.TimelineEmailSendCount(r.Context(), &key)
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		total += n
		for _, e := range rows {
			emails = append(emails, timelineEntry{Type: "email", Timestamp: httpapi.NewTime(e.CreatedAt),
				Data: map[string]any{"id": e.ID, "templateKey": e.TemplateKey, "subject": e.Subject, "status": e.Status, "toEmail": e.ToEmail,
					"sentAt": httpapi.TimePtr(e.SentAt), "deliveredAt": httpapi.TimePtr(e.DeliveredAt), "openedAt": httpapi.TimePtr(e.OpenedAt)}})
		}
	}
	entries := mergeNewestFirst(events, journeys, emails)
	entries = entries[min(offset, len(entries)):]
	entries = entries[:min(limit, len(entries))]
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"timeline": entries, "total": total, "limit": limit, "offset": offset})
}

// mergeNewestFirst merges sources that are each newest first; on equal
// timestamps an earlier source's entry comes first.
func mergeNewestFirst(sources ...[]timelineEntry) []timelineEntry {
	out := []timelineEntry{}
	for _, src := range sources {
		out = append(out, src...)
	}
	slices.SortStableFunc(out, func(a, b timelineEntry) int { return b.Timestamp.Time.Compare(a.Timestamp.Time) })
	return out
}

func (s *Service) listEvents(w http.ResponseWriter, r *http.Request) {
	limit, offset, err := httpapi.Pagination(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	qs := r.URL.Query()
	q := s.q()
	p := dbsqlc.UserEventListParams{Event: qs.Get("event"), UserID: qs.Get("userId"), Lim: int32(limit), Off: int32(offset)}
	rows, err := q.UserEventList(r.Context(), p)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	total, err := q.UserEventCount(r.Context(), dbsqlc.UserEventCountParams{Event: p.Event, UserID: p.UserID})
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out := make([]Event, len(rows))
	for i, e := range rows {
		out[i] = eventShape(e)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"events": out, "total": total, "limit": limit, "offset": offset})
}

func (s *Service) getEvent(w http.ResponseWriter, r *http.Request) {
	id, err := httpapi.ParamUUID(r, "id")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e, err := s.q().UserEventGet(r.Context(), id)
	if err != nil {
		httpapi.WriteError(w, r, notFoundOr(err, "Event not found"))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"event": eventShape(e)})
}

type testEventRequest struct {
	Event      *string         `json:"event"`
	UserID     *string         `json:"userId"`
	UserEmail  *string         `json:"userEmail"`
	Properties json.RawMessage `json:"properties"`
}

// testEvent is the admin test ingest (spec 10 §1.5): no contact
// properties, idempotency key, timestamp or lists.
func (s *Service) testEvent(w http.ResponseWriter, r *http.Request) {
	var req testEventRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBodyBytes); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if req.Event == nil || *req.Event == "" {
		httpapi.WriteError(w, r, errcode.InvalidField("event", "required"))
		return
	}
	if strings.HasPrefix(*req.Event, "bucket:") || strings.HasPrefix(*req.Event, "journey:") {
		httpapi.WriteError(w, r, errcode.InvalidField("event", "names starting with bucket: or journey: are emitted by the engine"))
		return
	}
	e := s.newEvent(streams.TypeTrack, "admin")
	e.Name = *req.Event
	if req.UserID != nil {
		e.UserID = strings.TrimSpace(*req.UserID)
	}
	if req.UserEmail != nil {
		e.Email = strings.TrimSpace(*req.UserEmail)
		if e.Email != "" && !httpapi.ValidEmail(e.Email) {
			httpapi.WriteError(w, r, errcode.InvalidField("userEmail", "must be a valid email address"))
			return
		}
	}
	if e.UserID == "" && e.Email == "" {
		httpapi.WriteError(w, r, errcode.Invalid(msgNeedIdentity))
		return
	}
	props, err := objectField("properties", req.Properties)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e.EventProperties = props
	p, err := s.pub.PublishEvent(r.Context(), e)
	if err != nil {
		httpapi.WriteError(w, r, errcode.Unavailable("Event store unavailable, retry", err))
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"id": e.ID, "stored": !p.Duplicate})
}
