-- +goose Up

-- Contacts: the identity read model owned by projections/contacts.
-- Keys are unique only among live rows (deleted rows keep their stale values),
-- which fixes the reference's collisions after a soft delete.
CREATE TABLE contacts (
    id              uuid PRIMARY KEY,
    organization_id uuid,
    external_id     text,
    email           text,
    anonymous_id    text,
    timezone        text,
    properties      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A blank email is never a key: store null, never ''.
    CONSTRAINT contacts_email_not_blank CHECK (email IS NULL OR email <> ''),
    CONSTRAINT contacts_external_id_not_blank CHECK (external_id IS NULL OR external_id <> ''),
    CONSTRAINT contacts_anonymous_id_not_blank CHECK (anonymous_id IS NULL OR anonymous_id <> '')
) WITH (fillfactor = 85);
-- Nearly every event rewrites its contact (properties, last_seen_at). No
-- index covers those columns and pages keep free space, so the rewrite is
-- a HOT update that touches no index. The admin list therefore sorts by
-- last_seen_at without an index.
CREATE UNIQUE INDEX contacts_live_external_id ON contacts (external_id) WHERE deleted_at IS NULL AND external_id IS NOT NULL;
CREATE UNIQUE INDEX contacts_live_email ON contacts (lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL;
CREATE UNIQUE INDEX contacts_live_anonymous_id ON contacts (anonymous_id) WHERE deleted_at IS NULL AND anonymous_id IS NOT NULL;

-- Stale keys pointing at their current owner (promote on link, merge on merge).
CREATE TABLE contact_aliases (
    id              uuid PRIMARY KEY,
    contact_id      uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    alias_kind      text NOT NULL CHECK (alias_kind IN ('external', 'email', 'anonymous')),
    alias_value     text NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('promote', 'merge')),
    from_contact_id uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alias_kind, alias_value)
);
CREATE INDEX contact_aliases_contact ON contact_aliases (contact_id);

-- Event history, keyed by the contact key string (no FK: history survives
-- deletion and is re-keyed by folding).
CREATE TABLE user_events (
    id              uuid PRIMARY KEY,
    organization_id uuid,
    user_id         text        NOT NULL,
    event           text        NOT NULL,
    properties      jsonb,
    idempotency_key text UNIQUE,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    -- stream_seq is the EVENTS sequence the row was projected from; replay
    -- comparisons and debugging use it.
    stream_seq      bigint
);
CREATE INDEX user_events_user_event_time ON user_events (user_id, event, occurred_at);
CREATE INDEX user_events_occurred ON user_events (occurred_at DESC);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    organization_id uuid,
    name            text        NOT NULL,
    key_prefix      text        NOT NULL,
    key_hash        text        NOT NULL UNIQUE,
    scopes          text[]      NOT NULL DEFAULT ARRAY['read'],
    created_by      text,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_revoked ON api_keys (revoked_at);

-- Messages a consumer gave up on (MaxDeliver reached or a permanent error).
CREATE TABLE dead_letters (
    id          uuid PRIMARY KEY,
    source      text        NOT NULL,
    source_id   text,
    subject     text        NOT NULL,
    stream_seq  bigint,
    payload     jsonb,
    raw         bytea,
    error       text        NOT NULL,
    retry_count integer     NOT NULL DEFAULT 0,
    status      text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'retried', 'discarded')),
    retried_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_source ON dead_letters (source);
CREATE INDEX dead_letters_status ON dead_letters (status);
CREATE INDEX dead_letters_created ON dead_letters (created_at DESC);

-- Per-partition position of an ordered consumer, committed in the same
-- transaction as the batch it covers: a redelivered message at or below it
-- is acknowledged and skipped.
CREATE TABLE projection_checkpoints (
    consumer   text        NOT NULL,
    partition  integer     NOT NULL,
    last_seq   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, partition)
);

-- Transactional outbox: the messages a batch derives (ACTIVITY) are stored
-- with the batch, as one row holding them all, and published after commit,
-- so a crash between commit and publish loses nothing. The next batch of
-- the partition deletes the row once it was published.
CREATE TABLE projection_outbox (
    consumer   text    NOT NULL,
    partition  integer NOT NULL,
    seq        bigint  NOT NULL,
    messages   integer NOT NULL,
    payload    bytea   NOT NULL,
    PRIMARY KEY (consumer, partition, seq)
);

-- +goose Down
DROP TABLE projection_outbox;
DROP TABLE projection_checkpoints;
DROP TABLE dead_letters;
DROP TABLE api_keys;
DROP TABLE user_events;
DROP TABLE contact_aliases;
DROP TABLE contacts;
