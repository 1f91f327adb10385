package buckets

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// DwellSchedule is when a dwell reaction fires for a member (spec 10
// §4.10): once After the membership began, or Every interval while it
// lasts. Label names it in events and in the row's dwell_state.
type DwellSchedule struct {
	Label string
	After time.Duration
	Every time.Duration
}

// DwellEvent is the event a dwell fire emits.
func DwellEvent(bucketID, label string) string { return "bucket:dwell:" + bucketID + ":" + label }

// AddDwell registers a dwell schedule of bucketID, so the sweep fires it.
// Call it before any consumer uses the registry.
func (r *Registry) AddDwell(bucketID string, d DwellSchedule) {
	if r.dwell == nil {
		r.dwell = map[string][]DwellSchedule{}
	}
	r.dwell[bucketID] = append(r.dwell[bucketID], d)
}

// dwellPass is pass 4 of the sweep (spec 10 §4.8): for each dwell schedule
// of the bucket, members whose anchor is old enough fire — an after
// schedule once per membership, an every schedule once per elapsed
// interval (once after an outage, not once per missed interval). The event
// is published first, then the fire is stamped on the row if it is still
// active; its key carries the membership's epoch and the ordinal, so a
// repeat after a crash is one event in history.
func (r *Reconciler) dwellPass(ctx context.Context, b *Bucket) (fired int, err error) {
	scheds := r.reg.dwell[b.ID()]
	if len(scheds) == 0 {
		return 0, nil
	}
	if done, err := r.backfillDone(ctx, b); err != nil || !done {
		return 0, err
	}
	q := dbsqlc.New(r.pool)
	sweep := r.now().UTC()
	for _, d := range scheds {
		offset := d.After
		if d.Every > 0 {
			offset = d.Every
		}
		rows, err := q.BucketDwellCandidates(ctx, dbsqlc.BucketDwellCandidatesParams{BucketID: b.ID(), Due: ptrTime(sweep.Add(-offset)), Lim: int32(r.page)})
		if err != nil {
			return fired, fmt.Errorf("read dwell candidates: %w", err)
		}
		var msgs []bus.OutMsg
		var due, skipped []uuid.UUID
		for _, m := range rows {
			var state map[string]time.Time
			_ = json.Unmarshal(m.DwellState, &state) // a malformed stamp counts as none
			anchor := m.EnteredAt
			if m.DwellAnchorAt != nil {
				anchor = *m.DwellAnchorAt
			}
			last, seen := state[d.Label]
			ordinal := 1
			switch {
			case d.After > 0 && seen:
				skipped = append(skipped, m.ID)
				continue
			case d.Every > 0:
				if !seen {
					last = anchor
				}
				if sweep.Sub(last) < d.Every {
					skipped = append(skipped, m.ID)
					continue
				}
				ordinal = int(sweep.Sub(anchor) / d.Every)
			}
			email := deref(m.UserEmail)
			if m.ContactEmail != nil {
				email = *m.ContactEmail
			}
			msg, err := dwellMsg(b, d.Label, m.UserID, m.ContactID.String(), email, int(m.EntryCount), ordinal, sweep)
			if err != nil {
				return fired, err
			}
			msgs = append(msgs, msg)
			due = append(due, m.ID)
		}
		if len(msgs) > 0 {
			if err := r.pub.PublishAsyncBatch(ctx, msgs); err != nil {
				return fired, fmt.Errorf("publish dwell events: %w", err)
			}
		}
		for _, id := range due {
			n, err := q.BucketDwellStamp(ctx, dbsqlc.BucketDwellStampParams{Label: d.Label, At: &sweep, ID: id})
			if err != nil {
				return fired, fmt.Errorf("stamp dwell: %w", err)
			}
			fired += int(n)
		}
		if len(skipped) > 0 {
			// Evaluated without firing: move them back in the queue so
			// members not yet fired are reached.
			if err := q.BucketMembershipsEvaluated(ctx, dbsqlc.BucketMembershipsEvaluatedParams{At: &sweep, Ids: skipped}); err != nil {
				return fired, fmt.Errorf("stamp evaluation: %w", err)
			}
		}
	}
	return fired, nil
}

// dwellMsg is the bucket:dwell:<id>:<label> event of one fire.
func dwellMsg(b *Bucket, label, key, contactID, email string, epoch, ordinal int, at time.Time) (bus.OutMsg, error) {
	idem := TransitionKey(b.ID(), key, "dwell:"+label+":"+strconv.Itoa(epoch), ordinal)
	props, err := json.Marshal(map[string]any{
		"bucketId": b.ID(), "bucketName": b.Name(), "userId": key, "transition": "dwell", "source": SourceReconcile,
		"entryCount": epoch, "dwellCount": ordinal, "label": label,
	})
	if err != nil {
		return bus.OutMsg{}, fmt.Errorf("encode dwell event: %w", err)
	}
	ev := &streams.Event{
		V: streams.EnvelopeVersion, ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(idem)).String(),
		Type: streams.TypeTrack, Name: DwellEvent(b.ID(), label), UserID: key, Email: email, ContactID: contactID,
		EventProperties: props, IdempotencyKey: idem, ReceivedAt: at, Source: "bucket",
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return bus.OutMsg{}, fmt.Errorf("encode dwell event: %w", err)
	}
	return bus.OutMsg{Subject: streams.EventSubject(ev), MsgID: ev.MsgID(), Data: data}, nil
}

func ptrTime(t time.Time) *time.Time { return &t }
