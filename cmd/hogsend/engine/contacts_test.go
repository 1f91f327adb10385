package engine

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/apiclient"
)

// aliasRow is a contact_aliases row as the assertions need it.
type aliasRow struct {
	ContactID, Reason, FromContactID string
}

// readAlias reads the alias of (kind, value); the API does not expose aliases.
func readAlias(t *testing.T, m *Main, kind, value string) (aliasRow, bool) {
	t.Helper()
	var a aliasRow
	err := m.pool.QueryRow(ctxT(t), `SELECT contact_id::text, reason, coalesce(from_contact_id::text, '')
		FROM contact_aliases WHERE alias_kind = $1 AND alias_value = $2`, kind, value).Scan(&a.ContactID, &a.Reason, &a.FromContactID)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return a, false
		}
		t.Fatalf("read alias %s:%s: %v", kind, value, err)
	}
	return a, true
}

// liveMatching counts live contacts whose email, external or anonymous id
// contains s.
func liveMatching(t *testing.T, c *apiclient.Client, s string) int {
	t.Helper()
	l, err := c.ListContacts(ctxT(t), apiclient.ListContactsParams{Search: s})
	if err != nil {
		t.Fatalf("list contacts %q: %v", s, err)
	}
	return l.Total
}

// TestIdentity covers the identity scenarios of spec 10 §7 (7, 8, 10, 11,
// 12) on one process; every subtest uses its own keys.
func TestIdentity(t *testing.T) {
	t.Parallel()
	m, admin := startApp(t)
	ingest := admin.WithKey(newKey(t, admin, "ingest"))

	t.Run("7 email-only contact gains userId", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		first, err := ingest.SendEvent(ctx, apiclient.Event{Name: "visit", Email: "e7@x.com"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "visit", Email: "E7@x.com"}); err != nil {
			t.Fatal(err)
		}
		// An email-only contact keys its history by its id, the id of the
		// event that created it.
		waitEvents(t, admin, first.ID, 2)
		e := waitContact(t, admin, first.ID, nil)
		if e.ExternalID != nil || str(e.Email) != "e7@x.com" {
			t.Fatalf("E = %+v", e)
		}

		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "login", Email: "e7@x.com", UserID: "u9"}); err != nil {
			t.Fatal(err)
		}
		rows := waitEvents(t, admin, "u9", 3)
		if rows[0].Event != "login" {
			t.Errorf("newest row = %+v", rows[0])
		}
		if n := len(eventsOf(t, admin, first.ID)); n != 0 {
			t.Errorf("%d rows left under the old key", n)
		}
		got := waitContact(t, admin, "u9", nil)
		if got.ID != e.ID || str(got.Email) != "e7@x.com" || !got.FirstSeenAt.Equal(e.FirstSeenAt) || !got.LastSeenAt.After(e.LastSeenAt) {
			t.Errorf("after link = %+v, before %+v", got, e)
		}
		if n := liveMatching(t, admin, "e7@x.com"); n != 1 {
			t.Errorf("%d live contacts with e7@x.com", n)
		}
		if a, ok := readAlias(t, m, "external", "u9"); !ok || a.Reason != "promote" || a.ContactID != e.ID || a.FromContactID != "" {
			t.Errorf("alias external:u9 = %+v, %v; want promote to %s", a, ok, e.ID)
		}
	})

	t.Run("8 merge", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		x, err := admin.UpsertContact(ctx, apiclient.UpsertContact{UserID: "a8", Properties: map[string]any{"plan": "pro", "who": "x"}})
		if err != nil || !x.Created {
			t.Fatalf("X = %+v, %v", x, err)
		}
		y, err := admin.UpsertContact(ctx, apiclient.UpsertContact{Email: "y8@x.com", Properties: map[string]any{"who": "y", "seats": 2}})
		if err != nil || !y.Created {
			t.Fatalf("Y = %+v, %v", y, err)
		}
		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "y-event", Email: "y8@x.com"}); err != nil {
			t.Fatal(err)
		}
		waitEvents(t, admin, y.ID, 1)
		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "x-event", UserID: "a8"}); err != nil {
			t.Fatal(err)
		}
		waitEvents(t, admin, "a8", 1)
		xBefore := waitContact(t, admin, x.ID, nil)

		res, err := ingest.UpsertContact(ctx, apiclient.UpsertContact{UserID: "a8", Email: "y8@x.com"})
		if err != nil {
			t.Fatal(err)
		}
		if res.ID != x.ID || res.Created || !res.Linked {
			t.Errorf("merge answer = %+v, want X %s linked", res, x.ID)
		}
		got, err := admin.GetContact(ctx, x.ID)
		if err != nil {
			t.Fatal(err)
		}
		c := got.Contact
		// Losers' properties under the survivor's.
		if str(c.ExternalID) != "a8" || str(c.Email) != "y8@x.com" || !reflect.DeepEqual(c.Properties, map[string]any{"plan": "pro", "who": "x", "seats": float64(2)}) ||
			!c.FirstSeenAt.Equal(xBefore.FirstSeenAt) {
			t.Errorf("survivor = %+v", c)
		}
		_, err = admin.GetContact(ctx, y.ID)
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")
		found, err := ingest.FindContacts(ctx, "y8@x.com", "")
		if err != nil || len(found) != 1 || found[0].ID != x.ID {
			t.Errorf("find y8 = %+v, %v", found, err)
		}
		rows := eventsOf(t, admin, "a8")
		if len(rows) != 2 || len(eventsOf(t, admin, y.ID)) != 0 {
			t.Errorf("a8 rows = %+v; want x-event and y-event", rows)
		}
		if a, ok := readAlias(t, m, "email", "y8@x.com"); !ok || a.Reason != "merge" || a.ContactID != x.ID || a.FromContactID != y.ID {
			t.Errorf("alias email:y8@x.com = %+v, %v; want merge %s → %s", a, ok, y.ID, x.ID)
		}
	})

	t.Run("10 merged-away email resolves to survivor", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		x, err := admin.UpsertContact(ctx, apiclient.UpsertContact{UserID: "a10", Email: "x10@x.com"})
		if err != nil {
			t.Fatal(err)
		}
		y, err := admin.UpsertContact(ctx, apiclient.UpsertContact{Email: "y10@x.com"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := admin.UpsertContact(ctx, apiclient.UpsertContact{UserID: "a10", Email: "y10@x.com"})
		if err != nil || res.ID != x.ID {
			t.Fatalf("merge = %+v, %v; want X", res, err)
		}
		// X kept its own email; y10 is only an alias now.
		if c := waitContact(t, admin, x.ID, nil); str(c.Email) != "x10@x.com" {
			t.Errorf("survivor email = %s", str(c.Email))
		}
		if a, ok := readAlias(t, m, "email", "y10@x.com"); !ok || a.ContactID != x.ID || a.Reason != "merge" || a.FromContactID != y.ID {
			t.Errorf("alias = %+v, %v", a, ok)
		}
		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "e10", Email: "y10@x.com", ContactProperties: map[string]any{"via": "alias"}}); err != nil {
			t.Fatal(err)
		}
		rows := waitEvents(t, admin, "a10", 1)
		if rows[0].Event != "e10" {
			t.Errorf("rows = %+v", rows)
		}
		waitContact(t, admin, x.ID, func(c apiclient.Contact) bool { return c.Properties["via"] == "alias" })
		if n := liveMatching(t, admin, "10@x.com"); n != 1 {
			t.Errorf("%d live contacts match 10@x.com, want only X", n)
		}
		if found, err := ingest.FindContacts(ctx, "y10@x.com", ""); err != nil || len(found) != 0 {
			t.Errorf("find follows aliases: %+v, %v", found, err)
		}
	})

	t.Run("11 null deletes a property", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		if _, err := ingest.UpsertContact(ctx, apiclient.UpsertContact{UserID: "u11", Properties: map[string]any{"plan": "pro", "seats": 3}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "downgrade", UserID: "u11", ContactProperties: map[string]any{"plan": nil}}); err != nil {
			t.Fatal(err)
		}
		c := waitContact(t, admin, "u11", func(c apiclient.Contact) bool { _, has := c.Properties["plan"]; return !has })
		if !reflect.DeepEqual(c.Properties, map[string]any{"seats": float64(3)}) {
			t.Errorf("properties = %v, want {seats:3}", c.Properties)
		}
		rows := waitEvents(t, admin, "u11", 1)
		if len(rows[0].Properties) != 0 {
			t.Errorf("contact properties leaked into the event: %v", rows[0].Properties)
		}
	})

	t.Run("12 delete then recreate", func(t *testing.T) {
		t.Parallel()
		ctx := ctxT(t)
		if _, err := ingest.SendEvent(ctx, apiclient.Event{Name: "signup", UserID: "u12", Email: "u12@x.com"}); err != nil {
			t.Fatal(err)
		}
		old := waitContact(t, admin, "u12", nil)
		if err := ingest.DeleteContacts(ctx, "", "u12"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		for _, q := range [][2]string{{"", "u12"}, {"u12@x.com", ""}} {
			found, err := ingest.FindContacts(ctx, q[0], q[1])
			if err != nil || found == nil || len(found) != 0 {
				t.Errorf("find %v = %#v, %v; want []", q, found, err)
			}
		}
		err := ingest.DeleteContacts(ctx, "", "u12")
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")
		_, err = admin.GetContact(ctx, old.ID)
		wantAPIError(t, err, http.StatusNotFound, "not_found", "")

		res, err := ingest.SendEvent(ctx, apiclient.Event{Name: "back", UserID: "u12"})
		if err != nil {
			t.Fatal(err)
		}
		c := waitContact(t, admin, "u12", nil)
		if c.ID == old.ID || c.ID != res.ID || c.Email != nil {
			t.Errorf("new contact = %+v, old %s", c, old.ID)
		}
		// History is keyed by the external id, so the new contact
		// inherits it (spec 10 §2.7 rule 2).
		if rows := waitEvents(t, admin, "u12", 2); rows[0].Event != "back" {
			t.Errorf("rows = %+v", rows)
		}
		err = ingest.DeleteContacts(ctx, "", "")
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "email or userId is required")
		_, err = ingest.FindContacts(ctx, "", "")
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "email or userId is required")
	})
}

// quotedProps is the CSV field of {"note": "a, \"quoted\"\nline"}: one
// quoted field with doubled quotes (jsonb may put a space after colons).
var quotedProps = regexp.MustCompile(`,"\{""note"": ?""a, \\""quoted\\""\\nline""\}",`)

// TestAdminContacts covers /v1/admin/contacts and /v1/admin/events on a
// process of its own (list totals need an otherwise empty database).
func TestAdminContacts(t *testing.T) {
	t.Parallel()
	_, admin := startApp(t)
	ingest := admin.WithKey(newKey(t, admin, "ingest"))
	ctx := ctxT(t)

	// POST answers 201 with the contact (even for a known one).
	resp, err := admin.Send(ctx, http.MethodPost, "/v1/admin/contacts", apiclient.CreateContact{ExternalID: "adm-0", Email: "Adm0@Example.com"})
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("create = %v, %v; want 201", resp, err)
	}
	var created struct {
		Contact apiclient.Contact `json:"contact"`
	}
	if err := json.Unmarshal(resp.Body, &created); err != nil || str(created.Contact.Email) != "adm0@example.com" || str(created.Contact.ExternalID) != "adm-0" {
		t.Fatalf("create body %s: %v", resp.Body, err)
	}
	contacts := []apiclient.Contact{created.Contact}
	for i, req := range []apiclient.CreateContact{
		{ExternalID: "adm-1", Properties: map[string]any{"plan": "pro", "seats": 3}},
		{Email: "adm2@example.com"},
		{ExternalID: "ADM-3", Email: "adm3@example.com", Properties: map[string]any{"note": "a, \"quoted\"\nline"}},
		{ExternalID: "adm-4", Email: "adm4@example.com"},
	} {
		c, err := admin.CreateContact(ctx, req)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		contacts = append(contacts, c)
	}
	again, err := admin.CreateContact(ctx, apiclient.CreateContact{ExternalID: "adm-1"})
	if err != nil || again.ID != contacts[1].ID {
		t.Errorf("create existing = %+v, %v; want %s", again, err, contacts[1].ID)
	}
	_, err = admin.CreateContact(ctx, apiclient.CreateContact{})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "externalId or email")
	_, err = admin.WithKey(newKey(t, admin, "read")).CreateContact(ctx, apiclient.CreateContact{ExternalID: "nope"})
	wantAPIError(t, err, http.StatusForbidden, "forbidden", "")

	t.Run("list", func(t *testing.T) {
		l, err := admin.ListContacts(ctx, apiclient.ListContactsParams{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Total != 5 || l.Limit != 50 || l.Offset != 0 || len(l.Contacts) != 5 {
			t.Fatalf("list = %+v", l)
		}
		// Newest last_seen_at first: adm-1 was touched last.
		var order []string
		for _, c := range l.Contacts {
			order = append(order, c.ID)
		}
		want := []string{contacts[1].ID, contacts[4].ID, contacts[3].ID, contacts[2].ID, contacts[0].ID}
		if !reflect.DeepEqual(order, want) {
			t.Errorf("order = %v, want %v", order, want)
		}
		var paged []string
		for off := 0; off < 5; off += 2 {
			p, err := admin.ListContacts(ctx, apiclient.ListContactsParams{Limit: 2, Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != 5 || p.Limit != 2 || p.Offset != off || len(p.Contacts) != min(2, 5-off) {
				t.Errorf("page %d = %+v", off, p)
			}
			for _, c := range p.Contacts {
				paged = append(paged, c.ID)
			}
		}
		if !reflect.DeepEqual(paged, want) {
			t.Errorf("pages = %v, want %v", paged, want)
		}
		for search, n := range map[string]int{"adm-3": 1, "ADM2@": 1, "example.com": 4, "adm": 5, "zzz": 0} {
			l, err := admin.ListContacts(ctx, apiclient.ListContactsParams{Search: search})
			if err != nil || l.Total != n || len(l.Contacts) != n {
				t.Errorf("search %q = %d (%d items), %v; want %d", search, l.Total, len(l.Contacts), err, n)
			}
		}
		for _, bad := range []string{"limit=0", "limit=101", "offset=-1", "limit=x"} {
			r, err := admin.Send(ctx, http.MethodGet, "/v1/admin/contacts?"+bad, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantAPIError(t, r.Err(), http.StatusBadRequest, "invalid_request", strings.SplitN(bad, "=", 2)[0])
		}
	})

	t.Run("get", func(t *testing.T) {
		for _, id := range []string{contacts[1].ID, "adm-1"} {
			d, err := admin.GetContact(ctx, id)
			if err != nil || d.Contact.ID != contacts[1].ID || !reflect.DeepEqual(d.Contact.Properties, map[string]any{"plan": "pro", "seats": float64(3)}) ||
				string(d.Preferences) != "null" {
				t.Errorf("get %s = %+v (preferences %s), %v", id, d.Contact, d.Preferences, err)
			}
		}
		for _, id := range []string{"019a0000-0000-7000-8000-000000000000", "nobody", "adm-2"} {
			_, err := admin.GetContact(ctx, id)
			wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")
		}
	})

	t.Run("patch", func(t *testing.T) {
		id := contacts[1].ID
		c, err := admin.UpdateContact(ctx, "adm-1", apiclient.UpdateContact{Properties: map[string]any{"plan": nil, "tier": "gold"}})
		if err != nil || c.ID != id || !reflect.DeepEqual(c.Properties, map[string]any{"seats": float64(3), "tier": "gold"}) || c.Email != nil {
			t.Fatalf("patch properties = %+v, %v", c, err)
		}
		c, err = admin.UpdateContact(ctx, id, apiclient.UpdateContact{Email: "First@Example.com"})
		if err != nil || str(c.Email) != "first@example.com" {
			t.Fatalf("fill email = %+v, %v", c, err)
		}
		// Unlike the reference, an email replaces the stored one.
		c, err = admin.UpdateContact(ctx, id, apiclient.UpdateContact{Email: "second@example.com"})
		if err != nil || str(c.Email) != "second@example.com" || !reflect.DeepEqual(c.Properties, map[string]any{"seats": float64(3), "tier": "gold"}) {
			t.Fatalf("replace email = %+v, %v", c, err)
		}
		if f, err := ingest.FindContacts(ctx, "first@example.com", ""); err != nil || len(f) != 0 {
			t.Errorf("old email still finds %+v, %v", f, err)
		}
		if f, err := ingest.FindContacts(ctx, "second@example.com", ""); err != nil || len(f) != 1 || f[0].ID != id {
			t.Errorf("new email finds %+v, %v", f, err)
		}

		// Another contact's email is a conflict and changes nothing.
		before, _ := admin.GetContact(ctx, id)
		_, err = admin.UpdateContact(ctx, id, apiclient.UpdateContact{Email: "ADM4@example.com", Properties: map[string]any{"tier": "silver"}})
		wantAPIError(t, err, http.StatusConflict, "conflict", "")
		after, err := admin.GetContact(ctx, id)
		if err != nil || !reflect.DeepEqual(after.Contact, before.Contact) {
			t.Errorf("after conflict = %+v, %v; want unchanged %+v", after.Contact, err, before.Contact)
		}
		if other, err := admin.GetContact(ctx, "adm-4"); err != nil || str(other.Contact.Email) != "adm4@example.com" {
			t.Errorf("owner of adm4@ = %+v, %v", other.Contact, err)
		}
		if n := liveMatching(t, admin, "adm"); n != 5 {
			t.Errorf("%d live contacts after patches, want 5 (patch never creates one)", n)
		}

		_, err = admin.UpdateContact(ctx, "nobody", apiclient.UpdateContact{Properties: map[string]any{"a": 1}})
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")
		_, err = admin.UpdateContact(ctx, id, apiclient.UpdateContact{Email: "not-an-email"})
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "email")
	})

	t.Run("timeline and events", func(t *testing.T) {
		base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		var ids []string
		for i, name := range []string{"first", "second", "third"} {
			res, err := ingest.SendEvent(ctx, apiclient.Event{Name: name, UserID: "adm-4", EventProperties: map[string]any{"i": i},
				Timestamp: apiclient.FormatTime(base.Add(time.Duration(i) * time.Hour))})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, res.ID)
		}
		// An event stamped in the past sorts by its timestamp, not by
		// arrival.
		res, err := ingest.SendEvent(ctx, apiclient.Event{Name: "zeroth", UserID: "adm-4", Timestamp: apiclient.FormatTime(base.Add(-time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{res.ID}, ids...)
		waitEvents(t, admin, "adm-4", 4)

		tl, err := admin.ContactTimeline(ctx, contacts[4].ID, apiclient.TimelineParams{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range tl.Timeline {
			names = append(names, e.Data["event"].(string))
			if e.Type != "event" {
				t.Errorf("entry type %q", e.Type)
			}
		}
		if tl.Total != 4 || tl.Limit != 50 || !reflect.DeepEqual(names, []string{"third", "second", "first", "zeroth"}) {
			t.Errorf("timeline = %v total %d", names, tl.Total)
		}
		if !tl.Timeline[0].Timestamp.Equal(base.Add(2*time.Hour)) || tl.Timeline[0].Data["id"] != ids[3] ||
			!reflect.DeepEqual(tl.Timeline[0].Data["properties"], map[string]any{"i": float64(2)}) {
			t.Errorf("newest entry = %+v", tl.Timeline[0])
		}
		page, err := admin.ContactTimeline(ctx, "adm-4", apiclient.TimelineParams{Type: "event", Limit: 2, Offset: 1})
		if err != nil || page.Total != 4 || len(page.Timeline) != 2 || page.Timeline[0].Data["event"] != "second" || page.Timeline[1].Data["event"] != "first" {
			t.Errorf("page = %+v, %v", page, err)
		}
		if j, err := admin.ContactTimeline(ctx, "adm-4", apiclient.TimelineParams{Type: "journey"}); err != nil || j.Total != 0 || len(j.Timeline) != 0 {
			t.Errorf("journey timeline = %+v, %v", j, err)
		}
		_, err = admin.ContactTimeline(ctx, "adm-4", apiclient.TimelineParams{Type: "bogus"})
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "type")
		_, err = admin.ContactTimeline(ctx, "nobody", apiclient.TimelineParams{})
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")

		byName, err := admin.ListEvents(ctx, apiclient.ListEventsParams{Event: "second"})
		if err != nil || byName.Total != 1 || byName.Events[0].ID != ids[2] || byName.Events[0].UserID != "adm-4" {
			t.Errorf("events named second = %+v, %v", byName, err)
		}
		all, err := admin.ListEvents(ctx, apiclient.ListEventsParams{Limit: 3})
		if err != nil || all.Total != 4 || len(all.Events) != 3 || all.Events[0].Event != "third" || all.Limit != 3 {
			t.Errorf("all events = %+v, %v", all, err)
		}
		ev, err := admin.GetEvent(ctx, ids[1])
		if err != nil || ev.Event != "first" || ev.UserID != "adm-4" || !ev.OccurredAt.Equal(base) {
			t.Errorf("get event = %+v, %v", ev, err)
		}
		_, err = admin.GetEvent(ctx, "not-a-uuid")
		wantAPIError(t, err, http.StatusBadRequest, "invalid_request", "id")
		_, err = admin.GetEvent(ctx, "019a0000-0000-7000-8000-000000000000")
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Event not found")
	})

	t.Run("export", func(t *testing.T) {
		exp, err := admin.ExportContacts(ctx, apiclient.ExportParams{})
		if err != nil || len(exp) != 5 {
			t.Fatalf("export = %+v, %v", exp, err)
		}
		// Newest created_at first.
		for i := range exp {
			if want := contacts[4-i].ID; exp[i].ID != want {
				t.Errorf("export[%d] = %s, want %s", i, exp[i].ID, want)
			}
		}
		if limited, err := admin.ExportContacts(ctx, apiclient.ExportParams{Search: "adm-", Limit: 2}); err != nil || len(limited) != 2 {
			t.Errorf("export search+limit = %d, %v", len(limited), err)
		}

		resp, err := admin.ExportContactsCSV(ctx, apiclient.ExportParams{})
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type = %q", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="contacts.csv"` {
			t.Errorf("Content-Disposition = %q", cd)
		}
		records, err := csv.NewReader(bytes.NewReader(resp.Body)).ReadAll()
		if err != nil {
			t.Fatalf("CSV does not parse: %v\n%s", err, resp.Body)
		}
		if len(records) != 6 || !reflect.DeepEqual(records[0], []string{"externalId", "email", "properties", "firstSeenAt", "lastSeenAt"}) {
			t.Fatalf("records = %q", records)
		}
		for i, rec := range records[1:] {
			e := exp[i]
			var props map[string]any
			if err := json.Unmarshal([]byte(rec[2]), &props); err != nil || !reflect.DeepEqual(props, e.Properties) {
				t.Errorf("row %d properties %q (%v), want %v", i, rec[2], err, e.Properties)
			}
			if rec[0] != strOr(e.ExternalID, "") || rec[1] != strOr(e.Email, "") ||
				rec[3] != apiclient.FormatTime(e.FirstSeenAt) || rec[4] != apiclient.FormatTime(e.LastSeenAt) {
				t.Errorf("row %d = %q, want %+v", i, rec, e)
			}
		}
		// The properties with a comma, quotes and a newline are one
		// quoted field (RFC 4180), not commas replaced by semicolons.
		if !quotedProps.Match(resp.Body) {
			t.Errorf("quoted properties not found in\n%s", resp.Body)
		}
	})

	t.Run("delete", func(t *testing.T) {
		id := contacts[2].ID
		if err := admin.DeleteContact(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err := admin.GetContact(ctx, id)
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")
		err = admin.DeleteContact(ctx, id)
		wantAPIError(t, err, http.StatusNotFound, "not_found", "Contact not found")
		if err := admin.DeleteContact(ctx, "ADM-3"); err != nil {
			t.Fatalf("delete by external id: %v", err)
		}
		l, err := admin.ListContacts(ctx, apiclient.ListContactsParams{})
		if err != nil || l.Total != 3 {
			t.Errorf("after deletes = %+v, %v", l, err)
		}
		exp, err := admin.ExportContacts(ctx, apiclient.ExportParams{})
		if err != nil || len(exp) != 3 {
			t.Errorf("export after deletes = %d, %v", len(exp), err)
		}
	})
}
