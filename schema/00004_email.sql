-- +goose Up

-- One row per tracked send (spec 20 §1.5), owned by services/mailer.
-- idempotency_key is the command's key (journey: state id + step; API:
-- the caller's key); withheld and failed sends hold none, so a retry
-- really re-sends.
CREATE TABLE email_sends (
    id               uuid PRIMARY KEY,
    idempotency_key  text UNIQUE,
    journey_state_id uuid,
    user_id          text,
    user_email       text,
    -- The contact the send is for, when known (engagement events name it).
    contact_id       uuid,
    template_key     text,
    from_email       text        NOT NULL DEFAULT '',
    to_email         text        NOT NULL,
    subject          text        NOT NULL DEFAULT '',
    category         text,
    status           text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'rendered', 'sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained', 'failed')),
    -- Why a failed row failed: suppressed, unsubscribed,
    -- category_unsubscribed, provider (Go addition; status stays failed).
    reason           text,
    error_message    text,
    provider         text,
    resend_id        text,
    click_count      integer     NOT NULL DEFAULT 0,
    -- A delivery in progress holds the row until then, so concurrent
    -- copies of a command make one provider call; a crashed holder's lease
    -- runs out and a retry takes over (with the same provider key).
    lease_until      timestamptz,
    sent_at          timestamptz,
    delivered_at     timestamptz,
    opened_at        timestamptz,
    clicked_at       timestamptz,
    bounced_at       timestamptz,
    complained_at    timestamptz,
    bounce_type      text,
    bounce_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_sends_to_created ON email_sends (lower(to_email), created_at);
CREATE INDEX email_sends_resend_id ON email_sends (resend_id) WHERE resend_id IS NOT NULL;
CREATE INDEX email_sends_journey_state ON email_sends (journey_state_id) WHERE journey_state_id IS NOT NULL;
CREATE INDEX email_sends_user ON email_sends (user_id, created_at);
CREATE INDEX email_sends_created ON email_sends (created_at);
CREATE INDEX email_sends_template ON email_sends (template_key, created_at);

-- Links of a tracked send; a click redirects only to a stored URL.
CREATE TABLE tracked_links (
    id            uuid PRIMARY KEY,
    email_send_id uuid        NOT NULL REFERENCES email_sends (id) ON DELETE CASCADE,
    url           text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tracked_links_send ON tracked_links (email_send_id);

CREATE TABLE link_clicks (
    id            uuid PRIMARY KEY,
    link_id       uuid        NOT NULL REFERENCES tracked_links (id) ON DELETE CASCADE,
    email_send_id uuid        NOT NULL,
    ip_address    text,
    user_agent    text,
    -- Set when the hit looks automated (link scanners, privacy proxies);
    -- recorded, never dropped.
    automated     boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_clicks_send ON link_clicks (email_send_id, created_at);

-- The dev mail outbox: what the default provider "sent", as sent.
CREATE TABLE dev_outbox (
    id            uuid PRIMARY KEY,
    -- The provider idempotency key: a re-sent message is stored once.
    send_key      text        NOT NULL UNIQUE,
    from_email    text        NOT NULL,
    to_emails     text[]      NOT NULL,
    subject       text        NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    html          text        NOT NULL DEFAULT '',
    text          text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dev_outbox_created ON dev_outbox (created_at DESC);

-- Addresses match normalised (spec 20 §1.3 [Go]).
CREATE INDEX email_preferences_email ON email_preferences (lower(email));

-- +goose Down
DROP INDEX email_preferences_email;
DROP TABLE dev_outbox;
DROP TABLE link_clicks;
DROP TABLE tracked_links;
DROP TABLE email_sends;
