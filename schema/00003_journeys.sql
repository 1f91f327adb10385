-- +goose Up

-- Journey enrolments, owned by services/journeys. At most one active or
-- waiting row per (user, journey); any number of terminal rows (spec 10
-- §1.4: the reference's unique index over every status is a flaw).
CREATE TABLE journey_states (
    id               uuid PRIMARY KEY,
    organization_id  uuid,
    user_id          text        NOT NULL,
    user_email       text        NOT NULL DEFAULT '',
    journey_id       text        NOT NULL,
    -- The contact the run is for, so engine events (journey:completed)
    -- can name it; re-pointed when history folds onto another contact.
    contact_id       uuid,
    current_node_id  text        NOT NULL DEFAULT 'start',
    status           text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'waiting', 'completed', 'failed', 'exited')),
    -- The run's id; the durable run of a state is the state itself, so it
    -- holds the state id (the admin API keeps the reference's field name).
    hatchet_run_id   text,
    context          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error_message    text,
    entry_count      integer     NOT NULL DEFAULT 1,
    -- The event that enrolled (dedupe on event id × journey id) and the
    -- zone resolved at enrolment (spec 10 §5.6.1).
    trigger_event_id text        NOT NULL,
    timezone         text        NOT NULL DEFAULT 'UTC',
    completed_at     timestamptz,
    exited_at        timestamptz,
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_user_journey_active ON journey_states (user_id, journey_id) WHERE status IN ('active', 'waiting');
CREATE UNIQUE INDEX journey_states_trigger ON journey_states (journey_id, trigger_event_id);
CREATE INDEX journey_states_user ON journey_states (user_id, journey_id, created_at);
CREATE INDEX journey_states_journey_status ON journey_states (journey_id, status);
CREATE INDEX journey_states_journey_updated ON journey_states (journey_id, updated_at);
CREATE INDEX journey_states_status ON journey_states (status);

-- The step log of a state's durable run (DESIGN §4): one row per call on
-- ctx, numbered from 0. A blocking step (sleep, wait) is written pending
-- (result NULL) when the run suspends and resolved when it wakes.
CREATE TABLE journey_steps (
    state_id       uuid        NOT NULL REFERENCES journey_states (id) ON DELETE CASCADE,
    step           integer     NOT NULL,
    kind           text        NOT NULL,
    label          text,
    result         jsonb,
    due_at         timestamptz,
    wait_event     text,
    -- A wait counts events published after it began: after the EVENTS
    -- sequence it began at (when it began on an event), else after the
    -- receive time it began at.
    wait_after_seq bigint,
    wait_after_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    PRIMARY KEY (state_id, step)
);
CREATE INDEX journey_steps_waiting ON journey_steps (state_id) WHERE result IS NULL;

-- Every status change of a state (the reference writes none).
CREATE TABLE journey_logs (
    id               uuid PRIMARY KEY,
    journey_state_id uuid        NOT NULL REFERENCES journey_states (id) ON DELETE CASCADE,
    from_node_id     text,
    to_node_id       text,
    action           text        NOT NULL,
    detail           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journey_logs_state ON journey_logs (journey_state_id, created_at);

-- Admin overrides of a journey's static enabled switch.
CREATE TABLE journey_configs (
    id         uuid PRIMARY KEY,
    journey_id text        NOT NULL UNIQUE,
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Messages a woken run derived, stored in the run's transaction and
-- deleted once published: a crash in between leaves them for the retried
-- wake-up to publish (runs on ACTIVITY use the projection outbox).
CREATE TABLE journey_outbox (
    id         bigserial PRIMARY KEY,
    state_id   uuid        NOT NULL,
    msgs       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journey_outbox_state ON journey_outbox (state_id);

-- Email preferences (spec 10 §6). The preference writes arrive with the
-- email work; journeys read unsubscribed_all for the entry guard.
CREATE TABLE email_preferences (
    id               uuid PRIMARY KEY,
    user_id          text        NOT NULL,
    email            text        NOT NULL,
    unsubscribed_all boolean     NOT NULL DEFAULT false,
    suppressed       boolean     NOT NULL DEFAULT false,
    bounce_count     integer     NOT NULL DEFAULT 0,
    categories       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    suppressed_at    timestamptz,
    last_bounce_at   timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, email)
);
CREATE INDEX email_preferences_user ON email_preferences (user_id, created_at);

-- +goose Down
DROP TABLE email_preferences;
DROP TABLE journey_outbox;
DROP TABLE journey_configs;
DROP TABLE journey_logs;
DROP TABLE journey_steps;
DROP TABLE journey_states;
