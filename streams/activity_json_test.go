package streams

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestMarshalActivityMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	ext, email := "u\"1", "a@x.com"
	e := Event{V: 1, ID: "01a2", Type: TypeTrack, Name: "signup", UserID: "u\"1", EventProperties: json.RawMessage(`{"a":[1,2]}`), ReceivedAt: ts, Source: "api"}
	rawEvent, _ := json.Marshal(e)
	cases := []Activity{
		{V: 1, Event: e, Seq: 42, ContactID: "c1", Key: "u\"1", Stored: true, Created: true,
			Contact: Contact{ID: "c1", ExternalID: &ext, Email: &email, Properties: json.RawMessage(`{"plan":"pro","n":1.5}`), FirstSeenAt: ts, LastSeenAt: ts, CreatedAt: ts, UpdatedAt: ts}},
		{V: 1, Event: e, Seq: 7, ContactID: "c2", Key: "c2", Linked: true, Merged: true,
			Folds: []Fold{{From: "x", To: "y"}}, MergedIDs: []string{"c3"},
			Contact: Contact{ID: "c2", AnonymousID: &ext, Properties: json.RawMessage(`{}`), FirstSeenAt: ts, LastSeenAt: ts, CreatedAt: ts, UpdatedAt: ts, DeletedAt: &ts}},
	}
	for i, a := range cases {
		want, err := json.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		got := MarshalActivity(&a, rawEvent)
		var gotV, wantV any
		if err := json.Unmarshal(got, &gotV); err != nil {
			t.Fatalf("case %d: invalid JSON %s: %v", i, got, err)
		}
		_ = json.Unmarshal(want, &wantV)
		if !reflect.DeepEqual(gotV, wantV) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func BenchmarkMarshalActivity(b *testing.B) {
	ts := time.Now()
	ext := "user-1"
	e := Event{V: 1, ID: "01a21862-94f6-7831-af67-37c6ffb05ce5", Type: TypeTrack, Name: "page_viewed", UserID: ext,
		EventProperties: json.RawMessage(`{"path":"/pricing","n":12}`), ContactProperties: json.RawMessage(`{"plan":"pro","visits":12}`), ReceivedAt: ts, Source: "api"}
	raw, _ := json.Marshal(e)
	a := Activity{V: 1, Event: e, Seq: 1, ContactID: "c", Key: ext, Stored: true,
		Contact: Contact{ID: "c", ExternalID: &ext, Properties: json.RawMessage(`{"plan":"pro","visits":12}`), FirstSeenAt: ts, LastSeenAt: ts, CreatedAt: ts, UpdatedAt: ts}}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(&a)
		}
	})
	b.Run("MarshalActivity", func(b *testing.B) {
		for b.Loop() {
			_ = MarshalActivity(&a, raw)
		}
	})
}
