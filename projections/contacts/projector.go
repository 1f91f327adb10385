// Package contacts is the contacts projection: it consumes EVENTS in
// per-contact order, resolves identity (create, fill-in-link, merge),
// applies contact properties, appends event history and publishes each
// applied event with a contact snapshot to ACTIVITY.
//
// A batch is resolved in memory against the rows it row-locked at its
// start and written back with a handful of set-based statements, so the
// common case (an event for a known contact) costs no per-event round trip.
package contacts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/projections"
	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
	"github.com/seed-eeb360f6/hogsend/streams"
	"github.com/seed-eeb360f6/hogsend/streams/bus"
)

// Name is the consumer name of the projection (durables contacts-pNN).
const Name = "contacts"

// Notifier sends core-NATS notifications (a *nats.Conn satisfies it).
type Notifier interface {
	Publish(subject string, data []byte) error
}

// Projector implements projections.Projector for contacts.
type Projector struct {
	replay bool
	notify Notifier
	log    *slog.Logger
	// DeadLetter records an undecodable message; the batch goes on
	// without it. Nil drops such messages with a log line.
	deadLetter func(ctx context.Context, m bus.Msg, err error)
}

// Options configure a Projector.
type Options struct {
	Notifier   Notifier
	Logger     *slog.Logger
	DeadLetter func(ctx context.Context, m bus.Msg, err error)
	// Replay rebuilds the tables only: nothing is published to ACTIVITY
	// (those messages exist already, and acting on history again would
	// re-run its effects) and no notifications are sent.
	Replay bool
}

// New returns the contacts projector.
func New(opts Options) *Projector {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Projector{replay: opts.Replay, notify: opts.Notifier, log: log, deadLetter: opts.DeadLetter}
}

// Key kinds, as stored in contact_aliases.alias_kind.
const (
	kindExternal  = "external"
	kindEmail     = "email"
	kindAnonymous = "anonymous"
)

type aliasKey struct{ kind, value string }

type aliasOp struct {
	target uuid.UUID
	from   *uuid.UUID
	merge  bool
	at     time.Time
	id     uuid.UUID
}

type contact struct {
	row     dbsqlc.Contact
	props   props
	loaded  bool // existed live when the batch started
	dirty   bool
	deleted bool
}

func (c *contact) key() string {
	switch {
	case c.row.ExternalID != nil:
		return *c.row.ExternalID
	case c.row.AnonymousID != nil:
		return *c.row.AnonymousID
	default:
		return c.row.ID.String()
	}
}

// touch records that an event reached the contact. last_seen_at never
// moves back: events from ingest nodes with skewed clocks may arrive with
// an earlier receive time.
func (c *contact) touch(at time.Time) {
	if at.After(c.row.LastSeenAt) {
		c.row.LastSeenAt = at
	}
	if at.After(c.row.UpdatedAt) {
		c.row.UpdatedAt = at
	}
	c.dirty = true
}

func (c *contact) snapshot() streams.Contact {
	return streams.Contact{
		ID: c.row.ID.String(), ExternalID: c.row.ExternalID, Email: c.row.Email, AnonymousID: c.row.AnonymousID,
		Properties: c.props.encode(), FirstSeenAt: c.row.FirstSeenAt, LastSeenAt: c.row.LastSeenAt,
		CreatedAt: c.row.CreatedAt, UpdatedAt: c.row.UpdatedAt, DeletedAt: c.row.DeletedAt,
	}
}

// keys are the normalised identifiers an event supplies (spec 10 §2.2.1).
type keys struct {
	external, email, anonymous string
}

func (k keys) empty() bool { return k.external == "" && k.email == "" && k.anonymous == "" }

func (k keys) list() []aliasKey {
	var out []aliasKey
	if k.external != "" {
		out = append(out, aliasKey{kindExternal, k.external})
	}
	if k.email != "" {
		out = append(out, aliasKey{kindEmail, k.email})
	}
	if k.anonymous != "" {
		out = append(out, aliasKey{kindAnonymous, k.anonymous})
	}
	return out
}

// NormalizeEmail trims and lower-cases an email; blank means absent.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func eventKeys(e *streams.Event) keys {
	return keys{
		external:  strings.TrimSpace(e.UserID),
		email:     NormalizeEmail(e.Email),
		anonymous: strings.TrimSpace(e.AnonymousID),
	}
}

type item struct {
	msg      bus.Msg
	event    streams.Event
	activity *streams.Activity
	applied  streams.Applied
	track    bool
}

// batch is the in-memory state of one batch transaction.
type batch struct {
	contacts   map[uuid.UUID]*contact
	byExternal map[string]*contact
	byEmail    map[string]*contact
	byAnon     map[string]*contact
	aliases    map[aliasKey]uuid.UUID
	aliasOps   map[aliasKey]*aliasOp
	aliasOrder []aliasKey
	folds      []streams.Fold
	newOrder   []uuid.UUID
	ev         dbsqlc.UserEventsInsertManyParams
	evItem     []int
}

// Apply implements projections.Projector.
func (p *Projector) Apply(ctx context.Context, tx pgx.Tx, msgs []bus.Msg) (projections.Output, error) {
	q := dbsqlc.New(tx)
	items := make([]*item, 0, len(msgs))
	for _, m := range msgs {
		it := &item{msg: m}
		err := json.Unmarshal(m.Data, &it.event)
		if err == nil && it.event.V > streams.EnvelopeVersion {
			err = fmt.Errorf("unknown envelope version %d", it.event.V)
		}
		if err == nil {
			if id, perr := uuid.Parse(it.event.ID); perr != nil {
				err = fmt.Errorf("event id %q is not a uuid", it.event.ID)
			} else {
				it.event.ID = id.String() // canonical, as Postgres returns it
			}
		}
		if err != nil {
			p.dead(ctx, m, fmt.Errorf("decode event: %w", err))
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return projections.Output{}, nil
	}
	b, err := load(ctx, q, items)
	if err != nil {
		return projections.Output{}, err
	}
	for i, it := range items {
		b.apply(i, it)
	}
	stored, err := b.write(ctx, q)
	if err != nil {
		return projections.Output{}, err
	}
	if p.replay {
		return projections.Output{}, nil
	}
	return p.output(items, stored), nil
}

func (p *Projector) dead(ctx context.Context, m bus.Msg, err error) {
	if p.deadLetter != nil {
		p.deadLetter(ctx, m, err)
		return
	}
	p.log.Error("dropping undecodable event", "subject", m.Subject, "seq", m.Seq, "err", err)
}

// load takes the advisory locks of every key in the batch (sorted, one
// statement) and reads, row-locked, every live contact those keys or their
// aliases reach.
func load(ctx context.Context, q *dbsqlc.Queries, items []*item) (*batch, error) {
	var lockKeys, exts, emails, anons, aliasKinds, aliasValues []string
	var ids []uuid.UUID
	for _, it := range items {
		k := eventKeys(&it.event)
		for _, ak := range k.list() {
			lockKeys = append(lockKeys, ak.kind+":"+ak.value)
			aliasKinds = append(aliasKinds, ak.kind)
			aliasValues = append(aliasValues, ak.value)
		}
		if k.external != "" {
			exts = append(exts, k.external)
		}
		if k.email != "" {
			emails = append(emails, k.email)
		}
		if k.anonymous != "" {
			anons = append(anons, k.anonymous)
		}
		if id, err := uuid.Parse(it.event.ContactID); err == nil {
			ids = append(ids, id)
			lockKeys = append(lockKeys, "id:"+id.String())
		}
	}
	if err := q.ContactLockKeys(ctx, lockKeys); err != nil {
		return nil, fmt.Errorf("lock contact keys: %w", err)
	}
	b := &batch{
		contacts:   map[uuid.UUID]*contact{},
		byExternal: map[string]*contact{},
		byEmail:    map[string]*contact{},
		byAnon:     map[string]*contact{},
		aliases:    map[aliasKey]uuid.UUID{},
		aliasOps:   map[aliasKey]*aliasOp{},
	}
	if len(aliasKinds) > 0 {
		rows, err := q.ContactAliasesFindByKeys(ctx, dbsqlc.ContactAliasesFindByKeysParams{Kinds: aliasKinds, AliasValues: aliasValues})
		if err != nil {
			return nil, fmt.Errorf("read contact aliases: %w", err)
		}
		for _, r := range rows {
			b.aliases[aliasKey{r.AliasKind, r.AliasValue}] = r.ContactID
			ids = append(ids, r.ContactID)
		}
	}
	rows, err := q.ContactsLockLiveByKeys(ctx, dbsqlc.ContactsLockLiveByKeysParams{
		ExternalIds: nonNil(exts), Emails: nonNil(emails), AnonymousIds: nonNil(anons), Ids: idStrings(ids),
	})
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	for _, r := range rows {
		pr, err := decodeProps(r.Properties)
		if err != nil {
			return nil, bus.Permanent(fmt.Errorf("contact %s: %w", r.ID, err))
		}
		c := &contact{row: r, props: pr, loaded: true}
		b.contacts[r.ID] = c
		b.index(c)
	}
	return b, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// idStrings passes uuids as text: pgx encodes uuid.UUID values one by
// one through driver.Valuer, which costs more than Postgres parsing text.
func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func (b *batch) index(c *contact) {
	if c.row.ExternalID != nil {
		b.byExternal[*c.row.ExternalID] = c
	}
	if c.row.Email != nil {
		b.byEmail[strings.ToLower(*c.row.Email)] = c
	}
	if c.row.AnonymousID != nil {
		b.byAnon[*c.row.AnonymousID] = c
	}
}

func (b *batch) unindex(c *contact) {
	if c.row.ExternalID != nil && b.byExternal[*c.row.ExternalID] == c {
		delete(b.byExternal, *c.row.ExternalID)
	}
	if c.row.Email != nil && b.byEmail[strings.ToLower(*c.row.Email)] == c {
		delete(b.byEmail, strings.ToLower(*c.row.Email))
	}
	if c.row.AnonymousID != nil && b.byAnon[*c.row.AnonymousID] == c {
		delete(b.byAnon, *c.row.AnonymousID)
	}
}

// owner finds the live contact holding a key, following an alias when no
// live contact holds it directly.
func (b *batch) owner(k aliasKey) *contact {
	var c *contact
	switch k.kind {
	case kindExternal:
		c = b.byExternal[k.value]
	case kindEmail:
		c = b.byEmail[k.value]
	case kindAnonymous:
		c = b.byAnon[k.value]
	}
	if c != nil {
		return c
	}
	if id, ok := b.aliases[k]; ok {
		if t := b.contacts[id]; t != nil && !t.deleted {
			return t
		}
	}
	return nil
}

// deterministicID derives ids from the event so a replay rebuilds rows with
// the same ids as the live run.
func deterministicID(eventID string, parts ...string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(eventID+"\x00"+strings.Join(parts, "\x00")))
}

func (b *batch) setAlias(eventID string, k aliasKey, target uuid.UUID, from *uuid.UUID, merge bool, at time.Time) {
	op, ok := b.aliasOps[k]
	if !ok {
		if _, exists := b.aliases[k]; exists && !merge {
			return // promote leaves an existing alias as it is
		}
		op = &aliasOp{id: deterministicID(eventID, "alias", k.kind, k.value)}
		b.aliasOps[k] = op
		b.aliasOrder = append(b.aliasOrder, k)
	} else if !merge {
		return
	}
	op.target, op.from, op.merge, op.at = target, from, op.merge || merge, at
	b.aliases[k] = target
}

func (b *batch) fold(from, to string) {
	if from == "" || from == to {
		return
	}
	b.folds = append(b.folds, streams.Fold{From: from, To: to})
	// Rows this batch has not written yet move with the history.
	for i, uid := range b.ev.UserIds {
		if uid == from {
			b.ev.UserIds[i] = to
		}
	}
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (b *batch) apply(i int, it *item) {
	e := &it.event
	at := e.ReceivedAt.UTC()
	if at.IsZero() {
		at = it.msg.Timestamp.UTC()
	}
	it.applied = streams.Applied{EventID: e.ID}
	var patch props
	if len(e.ContactProperties) > 0 {
		pr, err := decodeProps(e.ContactProperties)
		if err != nil {
			it.applied.Error = "invalid_request"
			return
		}
		patch = pr
	}
	var c *contact
	var act streams.Activity
	switch {
	case e.Type == streams.TypeTrack && e.Engine():
		// Spec 10 §4.5 flaw fixed: a transition is not identity input. It
		// is recorded for the contact it names, changing nothing on it.
		if c = b.engineContact(e); c == nil {
			if !e.Lifecycle() {
				b.appendEvent(i, it, e.UserID)
			}
			return
		}
	case e.Type == streams.TypeDelete:
		b.delete(it, at)
		if it.applied.ContactID != "" {
			c = b.contacts[uuid.MustParse(it.applied.ContactID)]
		}
	case e.ContactID != "":
		c = b.edit(it, patch, at)
	default:
		k := eventKeys(e)
		if k.empty() {
			it.applied.Error = "invalid_request"
			return
		}
		c = b.resolve(it, k, patch, at, &act)
	}
	if c == nil {
		return
	}
	it.applied.ContactID = c.row.ID.String()
	it.applied.Key = c.key()
	it.applied.Stored = true
	act.V = 1
	act.Event = *e
	act.Seq = it.msg.Seq
	act.ContactID = it.applied.ContactID
	act.Key = it.applied.Key
	act.Contact = c.snapshot()
	act.Stored = true
	act.Created, act.Linked, act.Merged = it.applied.Created, it.applied.Linked, it.applied.Merged
	it.activity = &act
	if e.Type == streams.TypeTrack && e.Name != "" && !e.Lifecycle() {
		b.appendEvent(i, it, c.key())
	}
}

// appendEvent queues the history row of a track event under key.
func (b *batch) appendEvent(i int, it *item, key string) {
	e := &it.event
	it.track = true
	props := e.EventProperties
	if len(props) == 0 {
		props = json.RawMessage("{}")
	}
	b.ev.Ids = append(b.ev.Ids, e.ID)
	b.ev.UserIds = append(b.ev.UserIds, key)
	b.ev.Events = append(b.ev.Events, e.Name)
	b.ev.Properties = append(b.ev.Properties, string(props))
	b.ev.IdempotencyKeys = append(b.ev.IdempotencyKeys, e.IdempotencyKey)
	b.ev.OccurredAts = append(b.ev.OccurredAts, e.OccurredAt().UTC())
	b.ev.Seqs = append(b.ev.Seqs, int64(it.msg.Seq))
	b.evItem = append(b.evItem, i)
}

// engineContact is the live contact an engine event names, or nil when it
// is gone (the event is then kept in history under the key it carries).
func (b *batch) engineContact(e *streams.Event) *contact {
	id, err := uuid.Parse(e.ContactID)
	if err != nil {
		return nil
	}
	if c := b.contacts[id]; c != nil && !c.deleted {
		return c
	}
	return nil
}

// resolve runs the resolver of spec 10 §2.2 for one event.
func (b *batch) resolve(it *item, k keys, patch props, at time.Time, act *streams.Activity) *contact {
	e := &it.event
	var found []*contact
	for _, ak := range k.list() {
		if c := b.owner(ak); c != nil && !containsContact(found, c) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		id, err := uuid.Parse(e.ID)
		if err != nil {
			id = deterministicID(e.ID, "contact")
		}
		c := &contact{row: dbsqlc.Contact{
			ID: id, ExternalID: ptr(k.external), Email: ptr(k.email), AnonymousID: ptr(k.anonymous),
			FirstSeenAt: at, LastSeenAt: at, CreatedAt: at, UpdatedAt: at,
		}, props: patch.withoutNulls(), dirty: true}
		b.contacts[id] = c
		b.newOrder = append(b.newOrder, id)
		b.index(c)
		// A create writes no alias: its keys are its own columns. Aliases
		// record keys attached later (promote) or moved by a merge.
		it.applied.Created = true
		return c
	case 1:
		c := found[0]
		oldKey := c.key()
		b.unindex(c)
		filled := fill(c, k)
		b.index(c)
		for _, ak := range filled {
			b.setAlias(e.ID, ak, c.row.ID, nil, false, at)
		}
		c.props.link(patch)
		c.touch(at)
		if newKey := c.key(); newKey != oldKey {
			b.fold(oldKey, newKey)
			act.Folds = append(act.Folds, streams.Fold{From: oldKey, To: newKey})
		}
		it.applied.Linked = true
		return c
	default:
		c := b.merge(it, found, k, patch, at, act)
		it.applied.Linked, it.applied.Merged = true, true
		return c
	}
}

func containsContact(cs []*contact, c *contact) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// fill sets the contact's empty key columns from k and returns the keys it
// attached. A supplied key that conflicts with a stored one is dropped.
func fill(c *contact, k keys) []aliasKey {
	var out []aliasKey
	if c.row.ExternalID == nil && k.external != "" {
		c.row.ExternalID = ptr(k.external)
		out = append(out, aliasKey{kindExternal, k.external})
	}
	if c.row.Email == nil && k.email != "" {
		c.row.Email = ptr(k.email)
		out = append(out, aliasKey{kindEmail, k.email})
	}
	if c.row.AnonymousID == nil && k.anonymous != "" {
		c.row.AnonymousID = ptr(k.anonymous)
		out = append(out, aliasKey{kindAnonymous, k.anonymous})
	}
	return out
}

// survivorFirst orders contacts by the survivor rule: has an external id,
// then oldest first_seen_at, then lowest id.
func survivorLess(a, b *contact) bool {
	ae, be := a.row.ExternalID != nil, b.row.ExternalID != nil
	if ae != be {
		return ae
	}
	if !a.row.FirstSeenAt.Equal(b.row.FirstSeenAt) {
		return a.row.FirstSeenAt.Before(b.row.FirstSeenAt)
	}
	return bytes.Compare(a.row.ID[:], b.row.ID[:]) < 0
}

// merge folds every loser into the survivor (spec 10 §2.2 rule 6).
func (b *batch) merge(it *item, found []*contact, k keys, patch props, at time.Time, act *streams.Activity) *contact {
	e := &it.event
	ordered := append([]*contact(nil), found...)
	for i := 1; i < len(ordered); i++ { // insertion sort: at most three
		for j := i; j > 0 && survivorLess(ordered[j], ordered[j-1]); j-- {
			ordered[j], ordered[j-1] = ordered[j-1], ordered[j]
		}
	}
	s, losers := ordered[0], ordered[1:]
	oldKey := s.key()

	// Losers are soft-deleted before their keys move to the survivor.
	for _, l := range losers {
		b.unindex(l)
		l.deleted, l.dirty = true, true
		l.row.DeletedAt = &at
		l.row.UpdatedAt = at
	}
	b.unindex(s)
	filled := fill(s, k)
	for _, l := range losers {
		filled = append(filled, fill(s, keys{external: deref(l.row.ExternalID), email: deref(l.row.Email), anonymous: deref(l.row.AnonymousID)})...)
	}
	b.index(s)
	for _, ak := range filled {
		b.setAlias(e.ID, ak, s.row.ID, nil, false, at)
	}
	newKey := s.key()

	merged := props{}
	for _, l := range losers {
		for kk, v := range l.props {
			merged[kk] = v
		}
	}
	for kk, v := range s.props {
		merged[kk] = v
	}
	merged.overlay(patch)
	s.props = merged.withoutNulls()
	if s.row.Timezone == nil {
		for _, l := range losers {
			if l.row.Timezone != nil {
				s.row.Timezone = l.row.Timezone
				break
			}
		}
	}
	for _, l := range losers {
		if l.row.FirstSeenAt.Before(s.row.FirstSeenAt) {
			s.row.FirstSeenAt = l.row.FirstSeenAt
		}
	}
	s.touch(at)

	if newKey != oldKey {
		b.fold(oldKey, newKey)
		act.Folds = append(act.Folds, streams.Fold{From: oldKey, To: newKey})
	}
	for _, l := range losers {
		from := l.row.ID
		for _, lk := range (keys{external: deref(l.row.ExternalID), email: strings.ToLower(deref(l.row.Email)), anonymous: deref(l.row.AnonymousID)}).list() {
			b.setAlias(e.ID, lk, s.row.ID, &from, true, at)
		}
		for _, hk := range []string{deref(l.row.ExternalID), deref(l.row.AnonymousID), l.row.ID.String()} {
			if hk != "" && hk != newKey {
				b.fold(hk, newKey)
				act.Folds = append(act.Folds, streams.Fold{From: hk, To: newKey})
			}
		}
		act.MergedIDs = append(act.MergedIDs, l.row.ID.String())
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// edit applies an admin edit addressed by contact id: properties as a
// fill-in-link patch, and an email that is filled or replaced. Unlike the
// reference it never creates a second contact and never merges: an email
// owned by another live contact is a conflict and changes nothing.
func (b *batch) edit(it *item, patch props, at time.Time) *contact {
	id, err := uuid.Parse(it.event.ContactID)
	if err != nil {
		it.applied.Error = "invalid_request"
		return nil
	}
	c := b.contacts[id]
	if c == nil || c.deleted {
		it.applied.Error = "not_found"
		return nil
	}
	if email := NormalizeEmail(it.event.Email); email != "" && email != strings.ToLower(deref(c.row.Email)) {
		if other := b.byEmail[email]; other != nil && other != c {
			it.applied.Error = "conflict"
			return nil
		}
		b.unindex(c)
		c.row.Email = &email
		b.index(c)
		b.setAlias(it.event.ID, aliasKey{kindEmail, email}, c.row.ID, nil, false, at)
	}
	c.props.link(patch)
	c.touch(at)
	it.applied.Linked = true
	return c
}

// delete soft-deletes the live contacts an event names: by id, or by email
// or external id without following aliases (spec 10 §2.5).
func (b *batch) delete(it *item, at time.Time) {
	var targets []*contact
	if it.event.ContactID != "" {
		if id, err := uuid.Parse(it.event.ContactID); err == nil {
			if c := b.contacts[id]; c != nil && !c.deleted {
				targets = append(targets, c)
			}
		}
	} else {
		k := eventKeys(&it.event)
		if c := b.byEmail[k.email]; k.email != "" && c != nil {
			targets = append(targets, c)
		}
		if c := b.byExternal[k.external]; k.external != "" && c != nil && !containsContact(targets, c) {
			targets = append(targets, c)
		}
	}
	for _, c := range targets {
		b.unindex(c)
		c.deleted, c.dirty = true, true
		c.row.DeletedAt = &at
		c.row.UpdatedAt = at
	}
	it.applied.Deleted = len(targets)
	if len(targets) == 0 {
		it.applied.Error = "not_found"
		return
	}
	it.applied.ContactID = targets[0].row.ID.String()
}

// write stores the batch: deletions of loaded contacts first (so their keys
// are free), then updates, inserts, aliases, history folds and history.
// It returns the ids of the user_events rows actually inserted.
func (b *batch) write(ctx context.Context, q *dbsqlc.Queries) (map[string]bool, error) {
	var dels, upds dbsqlc.ContactsUpdateManyParams
	var ins dbsqlc.ContactsInsertFullParams
	for _, c := range b.contacts {
		if !c.dirty || !c.loaded {
			continue
		}
		p := &upds
		if c.deleted {
			p = &dels
		}
		appendUpdate(p, c)
	}
	for _, id := range b.newOrder {
		c := b.contacts[id]
		ins.Ids = append(ins.Ids, c.row.ID.String())
		ins.ExternalIds = append(ins.ExternalIds, deref(c.row.ExternalID))
		ins.Emails = append(ins.Emails, deref(c.row.Email))
		ins.AnonymousIds = append(ins.AnonymousIds, deref(c.row.AnonymousID))
		ins.Properties = append(ins.Properties, string(c.props.encode()))
		ins.FirstSeenAts = append(ins.FirstSeenAts, c.row.FirstSeenAt)
		ins.LastSeenAts = append(ins.LastSeenAts, c.row.LastSeenAt)
		ins.CreatedAts = append(ins.CreatedAts, c.row.CreatedAt)
		ins.UpdatedAts = append(ins.UpdatedAts, c.row.UpdatedAt)
		ins.DeletedAts = append(ins.DeletedAts, zeroIfNil(c.row.DeletedAt))
	}
	for _, p := range []dbsqlc.ContactsUpdateManyParams{dels, upds} {
		if len(p.Ids) == 0 {
			continue
		}
		n, err := q.ContactsUpdateMany(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("update contacts: %w", err)
		}
		if int(n) != len(p.Ids) {
			// Another partition's batch deleted or merged one of these
			// contacts after it was read; run the batch again.
			return nil, fmt.Errorf("update contacts: %d of %d rows changed concurrently", len(p.Ids)-int(n), len(p.Ids))
		}
	}
	if len(ins.Ids) > 0 {
		if err := q.ContactsInsertFull(ctx, ins); err != nil {
			return nil, fmt.Errorf("insert contacts: %w", err)
		}
	}
	if err := b.writeAliases(ctx, q); err != nil {
		return nil, err
	}
	// Folds touch only rows stored by earlier batches; rows of this batch
	// were re-keyed in memory.
	for _, f := range b.folds {
		if _, err := q.UserEventsRekey(ctx, dbsqlc.UserEventsRekeyParams{FromKey: f.From, ToKey: f.To}); err != nil {
			return nil, fmt.Errorf("fold history %s: %w", f.From, err)
		}
	}
	stored := map[string]bool{}
	if len(b.ev.Ids) > 0 {
		ids, err := q.UserEventsInsertMany(ctx, b.ev)
		if err != nil {
			return nil, fmt.Errorf("insert user events: %w", err)
		}
		for _, id := range ids {
			stored[id] = true
		}
	}
	return stored, nil
}

func appendUpdate(p *dbsqlc.ContactsUpdateManyParams, c *contact) {
	p.Ids = append(p.Ids, c.row.ID.String())
	p.ExternalIds = append(p.ExternalIds, deref(c.row.ExternalID))
	p.Emails = append(p.Emails, deref(c.row.Email))
	p.AnonymousIds = append(p.AnonymousIds, deref(c.row.AnonymousID))
	p.Properties = append(p.Properties, string(c.props.encode()))
	p.FirstSeenAts = append(p.FirstSeenAts, c.row.FirstSeenAt)
	p.LastSeenAts = append(p.LastSeenAts, c.row.LastSeenAt)
	p.UpdatedAts = append(p.UpdatedAts, c.row.UpdatedAt)
	p.DeletedAts = append(p.DeletedAts, zeroIfNil(c.row.DeletedAt))
}

func zeroIfNil(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (b *batch) writeAliases(ctx context.Context, q *dbsqlc.Queries) error {
	var promote dbsqlc.ContactAliasesPromoteManyParams
	var merge dbsqlc.ContactAliasesMergeManyParams
	for _, k := range b.aliasOrder {
		op := b.aliasOps[k]
		if op.merge {
			from := uuid.Nil
			if op.from != nil {
				from = *op.from
			}
			merge.Ids = append(merge.Ids, op.id)
			merge.ContactIds = append(merge.ContactIds, op.target)
			merge.Kinds = append(merge.Kinds, k.kind)
			merge.AliasValues = append(merge.AliasValues, k.value)
			merge.FromContactIds = append(merge.FromContactIds, from)
			merge.Ats = append(merge.Ats, op.at)
			continue
		}
		promote.Ids = append(promote.Ids, op.id)
		promote.ContactIds = append(promote.ContactIds, op.target)
		promote.Kinds = append(promote.Kinds, k.kind)
		promote.AliasValues = append(promote.AliasValues, k.value)
		promote.Ats = append(promote.Ats, op.at)
	}
	if len(merge.Ids) > 0 {
		if err := q.ContactAliasesMergeMany(ctx, merge); err != nil {
			return fmt.Errorf("write merge aliases: %w", err)
		}
	}
	if len(promote.Ids) > 0 {
		if err := q.ContactAliasesPromoteMany(ctx, promote); err != nil {
			return fmt.Errorf("write promote aliases: %w", err)
		}
	}
	return nil
}

// output builds the ACTIVITY outbox (every applied event except duplicate
// track events) and the read-your-writes notifications.
func (p *Projector) output(items []*item, stored map[string]bool) projections.Output {
	var out projections.Output
	var notes []streams.Applied
	for _, it := range items {
		if it.track {
			if !stored[it.event.ID] {
				it.applied.Stored = false
				it.activity = nil
			}
		}
		if it.activity != nil {
			out.Outbox = append(out.Outbox, bus.OutMsg{
				Subject: streams.ActivitySubject(it.activity.ContactID),
				MsgID:   it.event.ID,
				Data:    streams.MarshalActivity(it.activity, it.msg.Data),
			})
			out.OutboxFrom = append(out.OutboxFrom, it.msg.Seq)
		}
		if it.event.Notify {
			notes = append(notes, it.applied)
		}
	}
	if len(notes) > 0 && p.notify != nil {
		out.AfterPublish = func(context.Context) {
			for _, n := range notes {
				data, _ := json.Marshal(n)
				if err := p.notify.Publish(streams.AppliedSubject(n.EventID), data); err != nil {
					p.log.Warn("announce applied event", "event", n.EventID, "err", err)
				}
			}
		}
	}
	return out
}
