package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Dead letter statuses.
const (
	DeadLetterPending   = "pending"
	DeadLetterRetried   = "retried"
	DeadLetterDiscarded = "discarded"
)

// ErrNotFound is returned for a dead letter that does not exist, or (Retry,
// Discard) is no longer pending.
var ErrNotFound = errors.New("dead letter not found")

// DeadLetter is a message a consumer gave up on.
type DeadLetter struct {
	ID uuid.UUID
	// Source is the consumer that gave up (its durable name, or the name of
	// a partitioned group).
	Source string
	// SourceID is the message's Nats-Msg-Id, when it had one.
	SourceID string
	// Subject is the stored subject of the message.
	Subject   string
	StreamSeq uint64
	// Data is the message body as it was consumed.
	Data       []byte
	Error      string
	RetryCount int
	Status     string
	RetriedAt  *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// DeadLetterRecorder records dead letters; the runners need only this.
type DeadLetterRecorder interface {
	Record(ctx context.Context, dl DeadLetter) error
}

// DeadLetterStore keeps dead letters in the dead_letters table and re-drives
// them. The bus is the only writer of that table.
type DeadLetterStore struct {
	db dbsqlc.DBTX
	js jetstream.JetStream
}

// NewDeadLetterStore returns a store on db (a pool). js is needed only by
// Retry.
func NewDeadLetterStore(db dbsqlc.DBTX, js jetstream.JetStream) *DeadLetterStore {
	return &DeadLetterStore{db: db, js: js}
}

// Record inserts dl. A zero ID gets a fresh UUIDv7.
func (s *DeadLetterStore) Record(ctx context.Context, dl DeadLetter) error {
	id := dl.ID
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return fmt.Errorf("record dead letter: %w", err)
		}
	}
	p := dbsqlc.DeadLetterInsertParams{
		ID:      id,
		Source:  dl.Source,
		Subject: dl.Subject,
		Raw:     dl.Data,
		Error:   dl.Error,
	}
	if p.Raw == nil {
		p.Raw = []byte{}
	}
	if dl.SourceID != "" {
		p.SourceID = &dl.SourceID
	}
	if dl.StreamSeq != 0 {
		seq := int64(dl.StreamSeq)
		p.StreamSeq = &seq
	}
	// payload is a readable copy for the admin UI; jsonb refuses invalid
	// JSON and \u0000, and raw always keeps the exact bytes.
	if json.Valid(dl.Data) && !bytes.Contains(dl.Data, []byte(`\u0000`)) {
		p.Payload = json.RawMessage(dl.Data)
	}
	if err := dbsqlc.New(s.db).DeadLetterInsert(ctx, p); err != nil {
		return fmt.Errorf("record dead letter: %w", err)
	}
	return nil
}

// DeadLetterFilter selects dead letters; empty fields match everything.
type DeadLetterFilter struct {
	Source string
	Status string
	// Limit defaults to 50.
	Limit  int
	Offset int
}

// List returns one page of dead letters, newest first, and the number of
// dead letters matching the filter.
func (s *DeadLetterStore) List(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, int64, error) {
	q := dbsqlc.New(s.db)
	var source, status *string
	if f.Source != "" {
		source = &f.Source
	}
	if f.Status != "" {
		status = &f.Status
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	rows, err := q.DeadLetterList(ctx, dbsqlc.DeadLetterListParams{
		Source: source, Status: status, Lim: int32(limit), Off: int32(max(f.Offset, 0)),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list dead letters: %w", err)
	}
	total, err := q.DeadLetterCount(ctx, dbsqlc.DeadLetterCountParams{Source: source, Status: status})
	if err != nil {
		return nil, 0, fmt.Errorf("count dead letters: %w", err)
	}
	out := make([]DeadLetter, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, total, nil
}

// Get returns one dead letter or ErrNotFound.
func (s *DeadLetterStore) Get(ctx context.Context, id uuid.UUID) (DeadLetter, error) {
	r, err := dbsqlc.New(s.db).DeadLetterGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, ErrNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter: %w", err)
	}
	return fromRow(r), nil
}

// Retry re-publishes a pending dead letter's body to the subject it was
// published on and marks it retried. The msg id is derived from the dead
// letter and its retry count, so a Retry repeated after a crash between
// publish and mark is dropped by the stream's dedupe window. The message
// goes to the end of its stream, so on EVENTS it is applied after events
// that arrived since.
func (s *DeadLetterStore) Retry(ctx context.Context, id uuid.UUID) (DeadLetter, error) {
	if s.js == nil {
		return DeadLetter{}, errors.New("retry dead letter: store has no JetStream")
	}
	dl, err := s.Get(ctx, id)
	if err != nil {
		return DeadLetter{}, err
	}
	if dl.Status != DeadLetterPending {
		return DeadLetter{}, ErrNotFound
	}
	msgID := fmt.Sprintf("dlq:%s:%d", dl.ID, dl.RetryCount+1)
	if _, err := s.js.Publish(ctx, publishSubject(dl.Subject), dl.Data, jetstream.WithMsgID(msgID)); err != nil {
		return DeadLetter{}, fmt.Errorf("retry dead letter: %w", err)
	}
	r, err := dbsqlc.New(s.db).DeadLetterMarkRetried(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, ErrNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("mark dead letter retried: %w", err)
	}
	return fromRow(r), nil
}

// Discard marks a pending dead letter as discarded.
func (s *DeadLetterStore) Discard(ctx context.Context, id uuid.UUID) (DeadLetter, error) {
	r, err := dbsqlc.New(s.db).DeadLetterDiscard(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, ErrNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("discard dead letter: %w", err)
	}
	return fromRow(r), nil
}

func fromRow(r dbsqlc.DeadLetter) DeadLetter {
	dl := DeadLetter{
		ID:         r.ID,
		Source:     r.Source,
		Subject:    r.Subject,
		Data:       r.Raw,
		Error:      r.Error,
		RetryCount: int(r.RetryCount),
		Status:     r.Status,
		RetriedAt:  r.RetriedAt,
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
	}
	if r.SourceID != nil {
		dl.SourceID = *r.SourceID
	}
	if r.StreamSeq != nil {
		dl.StreamSeq = uint64(*r.StreamSeq)
	}
	if dl.Data == nil && r.Payload != nil {
		dl.Data = r.Payload
	}
	return dl
}
