-- +goose Up

-- Segment membership, owned by projections/buckets. Rows are never
-- deleted: a join inserts an active row whose entry_count is the epoch
-- (1 + every earlier row of the pair), a leave flips it to left.
CREATE TABLE bucket_memberships (
    id                uuid PRIMARY KEY,
    organization_id   uuid,
    user_id           text        NOT NULL,
    bucket_id         text        NOT NULL,
    user_email        text,
    status            text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left')),
    entered_at        timestamptz NOT NULL DEFAULT now(),
    left_at           timestamptz,
    expires_at        timestamptz,
    max_dwell_at      timestamptz,
    last_evaluated_at timestamptz,
    entry_count       integer     NOT NULL DEFAULT 1,
    source            text,
    context           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    dwell_state       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    dwell_anchor_at   timestamptz,
    deleted_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_user_bucket_active ON bucket_memberships (user_id, bucket_id) WHERE status = 'active' AND deleted_at IS NULL;
CREATE INDEX bucket_memberships_user ON bucket_memberships (user_id, bucket_id);
CREATE INDEX bucket_memberships_bucket_status_entered ON bucket_memberships (bucket_id, status, entered_at);
CREATE INDEX bucket_memberships_bucket_status_evaluated ON bucket_memberships (bucket_id, status, last_evaluated_at);
CREATE INDEX bucket_memberships_expires ON bucket_memberships (expires_at) WHERE status = 'active';
CREATE INDEX bucket_memberships_max_dwell ON bucket_memberships (max_dwell_at) WHERE status = 'active';

-- Memberships, history and preferences are keyed by the contact key
-- (external id, else anonymous id, else id); sweeps and backfills join live
-- contacts on it. The indexed columns never change on a property update,
-- so contact updates stay HOT.
CREATE INDEX contacts_live_key ON contacts ((coalesce(external_id, anonymous_id, id::text))) WHERE deleted_at IS NULL;

-- Admin overrides per bucket (enable/disable) and the criteria hash the
-- last backfill computed memberships for.
CREATE TABLE bucket_configs (
    id            uuid PRIMARY KEY,
    bucket_id     text        NOT NULL UNIQUE,
    enabled       boolean     NOT NULL DEFAULT true,
    criteria_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Long-running jobs with progress (contact imports, bucket backfills).
CREATE TABLE import_jobs (
    id             uuid PRIMARY KEY,
    file_name      text,
    format         text        NOT NULL,
    status         text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    total_rows     integer,
    processed_rows integer     NOT NULL DEFAULT 0,
    failed_rows    integer     NOT NULL DEFAULT 0,
    errors         jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_jobs_file_format ON import_jobs (file_name, format, status);

-- +goose Down
DROP TABLE import_jobs;
DROP TABLE bucket_configs;
DROP TABLE bucket_memberships;
