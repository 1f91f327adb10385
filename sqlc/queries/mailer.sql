-- The mailer's reads and writes (services/mailer owns email_sends,
-- tracked_links and link_clicks).

-- name: MailerSendByKey :one
SELECT * FROM email_sends WHERE idempotency_key = @idempotency_key;

-- name: MailerSendGet :one
SELECT * FROM email_sends WHERE id = @id;

-- name: MailerSendInsert :one
-- A queued send holding its key; nothing when a concurrent twin holds it.
INSERT INTO email_sends (id, idempotency_key, journey_state_id, user_id, user_email, contact_id, template_key,
                         from_email, to_email, subject, category, status, reason, provider, created_at, updated_at)
VALUES (@id, sqlc.narg(idempotency_key), sqlc.narg(journey_state_id), sqlc.narg(user_id), sqlc.narg(user_email), sqlc.narg(contact_id),
        @template_key, @from_email, @to_email, @subject, sqlc.narg(category), @status, sqlc.narg(reason), sqlc.narg(provider), @at, @at)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: MailerSendMarkSent :execrows
UPDATE email_sends SET status = 'sent', sent_at = @at, resend_id = sqlc.narg(resend_id), provider = @provider, updated_at = @at
WHERE id = @id AND status = 'queued';

-- name: MailerSendMarkFailed :execrows
-- A failed send releases its key, so a later command really re-sends
-- (spec 20 §1.2.8).
UPDATE email_sends SET status = 'failed', reason = @reason, error_message = @error_message, idempotency_key = NULL, updated_at = @at
WHERE id = @id AND status = 'queued';

-- name: MailerCapCount :one
-- Frequency cap (spec 20 §1.4): the recipient's non-failed sends since,
-- of one category when given.
SELECT count(*) FROM email_sends
WHERE lower(to_email) = lower(@to_email) AND created_at >= @since AND status <> 'failed'
  AND (sqlc.narg(category)::text IS NULL OR category = sqlc.narg(category)::text);

-- name: MailerTrackedLinksInsert :exec
INSERT INTO tracked_links (id, email_send_id, url, created_at)
SELECT unnest(@ids::uuid[]), @email_send_id, unnest(@urls::text[]), @at
ON CONFLICT (id) DO NOTHING;

-- name: MailerLinkGet :one
SELECT l.id, l.url, l.email_send_id FROM tracked_links l WHERE l.id = @id;

-- name: MailerOpen :one
-- First-party open: opened_at only when still null; reports whether this
-- hit was the first.
UPDATE email_sends SET opened_at = coalesce(opened_at, @at), updated_at = @at
WHERE id = @id
RETURNING (opened_at = @at)::bool AS first, id, template_key, to_email, user_id, contact_id, journey_state_id;

-- name: MailerClick :one
UPDATE email_sends SET click_count = click_count + 1, clicked_at = coalesce(clicked_at, @at), updated_at = @at
WHERE id = @id
RETURNING (clicked_at = @at)::bool AS first, id, template_key, to_email, user_id, contact_id, journey_state_id;

-- name: MailerClickInsert :exec
INSERT INTO link_clicks (id, link_id, email_send_id, ip_address, user_agent, automated, created_at)
VALUES (@id, @link_id, @email_send_id, sqlc.narg(ip_address), sqlc.narg(user_agent), @automated, @at);

-- name: MailerContactByEmail :one
-- A live contact owning the address, directly or through an email alias
-- (direct first).
SELECT c.id, c.external_id, c.email, c.anonymous_id, 0 AS via_alias FROM contacts c
WHERE lower(c.email) = lower(@email) AND c.deleted_at IS NULL
UNION ALL
SELECT c.id, c.external_id, c.email, c.anonymous_id, 1 AS via_alias FROM contact_aliases a JOIN contacts c ON c.id = a.contact_id
WHERE a.alias_kind = 'email' AND a.alias_value = lower(@email) AND c.deleted_at IS NULL
ORDER BY via_alias
LIMIT 1;

-- name: MailerContactByExternalID :one
-- A live contact by external id, directly or through an alias.
SELECT c.id, c.external_id, c.email, c.anonymous_id, 0 AS via_alias FROM contacts c
WHERE c.external_id = @external_id AND c.deleted_at IS NULL
UNION ALL
SELECT c.id, c.external_id, c.email, c.anonymous_id, 1 AS via_alias FROM contact_aliases a JOIN contacts c ON c.id = a.contact_id
WHERE a.alias_kind = 'external' AND a.alias_value = @external_id AND c.deleted_at IS NULL
ORDER BY via_alias
LIMIT 1;

-- name: MailerSendClaim :one
-- Takes the delivery of a queued send unless another attempt holds it.
UPDATE email_sends SET lease_until = @until
WHERE id = @id AND status = 'queued' AND (lease_until IS NULL OR lease_until < @now)
RETURNING id;

-- name: MailerSendRelease :exec
UPDATE email_sends SET lease_until = NULL WHERE id = @id AND status = 'queued';

-- name: MailerSendLease :one
SELECT status, lease_until FROM email_sends WHERE id = @id;

-- name: MailerProviderEvent :many
-- A provider webhook onto the sends carrying its id (spec 20 §2.5 with the
-- [Go] rules): the status only moves forward (queued < sent < delivered <
-- opened < clicked < bounced < complained), and each timestamp is filled
-- only when still null, so first-party opens and clicks are kept.
UPDATE email_sends SET
    status = CASE WHEN array_position(ARRAY['queued','sent','delivered','opened','clicked','bounced','complained'], @status::text)
                     > coalesce(array_position(ARRAY['queued','sent','delivered','opened','clicked','bounced','complained'], status), 0)
                  THEN @status::text ELSE status END,
    sent_at       = CASE WHEN @status::text = 'sent'       THEN coalesce(sent_at, @at::timestamptz) ELSE sent_at END,
    delivered_at  = CASE WHEN @status::text = 'delivered'  THEN coalesce(delivered_at, @at::timestamptz) ELSE delivered_at END,
    opened_at     = CASE WHEN @status::text = 'opened'     THEN coalesce(opened_at, @at::timestamptz) ELSE opened_at END,
    clicked_at    = CASE WHEN @status::text = 'clicked'    THEN coalesce(clicked_at, @at::timestamptz) ELSE clicked_at END,
    bounced_at    = CASE WHEN @status::text = 'bounced'    THEN coalesce(bounced_at, @at::timestamptz) ELSE bounced_at END,
    complained_at = CASE WHEN @status::text = 'complained' THEN coalesce(complained_at, @at::timestamptz) ELSE complained_at END,
    bounce_type   = coalesce(sqlc.narg(bounce_type)::text, bounce_type),
    bounce_reason = coalesce(sqlc.narg(bounce_reason)::text, bounce_reason),
    updated_at    = @at::timestamptz
WHERE resend_id = @resend_id::text
RETURNING id, user_id, contact_id, to_email, template_key, resend_id;

-- Batch forms of the send algorithm, for Mailer.HandleBatch (one statement
-- per step of a batch of commands). Arrays go in as text (uuids included:
-- pgx encodes text arrays without reflection) and keys are joined from
-- unnest rather than matched with = ANY (see contacts.sql).

-- name: MailerSendsByKeys :many
SELECT e.* FROM unnest(@keys::text[]) AS k(v) JOIN email_sends e ON e.idempotency_key = k.v;

-- name: MailerSendInsertBatch :many
-- Queued sends holding their keys, leased until @lease_until by the batch
-- that inserts them, and withheld sends ('failed', no key, no lease).
-- Empty strings stand for NULL. A row whose key or id is taken is skipped
-- (not returned): the caller reads the row holding it.
INSERT INTO email_sends (id, idempotency_key, journey_state_id, user_id, user_email, contact_id, template_key,
                         from_email, to_email, subject, category, status, reason, provider, lease_until, created_at, updated_at)
SELECT u.id, u.idempotency_key, u.journey_state_id, u.user_id, u.to_email, u.contact_id, u.template_key,
       u.from_email, u.to_email, u.subject, u.category, u.status, u.reason, @provider::text,
       CASE WHEN u.status = 'queued' THEN @lease_until::timestamptz END, @at::timestamptz, @at::timestamptz
FROM (SELECT unnest(@ids::text[])::uuid AS id,
             nullif(unnest(@idempotency_keys::text[]), '') AS idempotency_key,
             nullif(unnest(@journey_state_ids::text[]), '')::uuid AS journey_state_id,
             nullif(unnest(@user_ids::text[]), '') AS user_id,
             nullif(unnest(@contact_ids::text[]), '')::uuid AS contact_id,
             unnest(@template_keys::text[]) AS template_key,
             unnest(@from_emails::text[]) AS from_email,
             unnest(@to_emails::text[]) AS to_email,
             unnest(@subjects::text[]) AS subject,
             nullif(unnest(@categories::text[]), '') AS category,
             unnest(@statuses::text[]) AS status,
             nullif(unnest(@reasons::text[]), '') AS reason) u
ON CONFLICT DO NOTHING
RETURNING *;

-- name: MailerSendClaimBatch :many
-- MailerSendClaim for many sends: the ids claimed.
UPDATE email_sends e SET lease_until = @until
FROM unnest(@ids::text[]) AS k(v)
WHERE e.id = k.v::uuid AND e.status = 'queued' AND (e.lease_until IS NULL OR e.lease_until < @now)
RETURNING e.id;

-- name: MailerSendLeases :many
SELECT e.id, e.status, e.lease_until FROM unnest(@ids::text[]) AS k(v) JOIN email_sends e ON e.id = k.v::uuid;

-- name: MailerSendReleaseBatch :exec
UPDATE email_sends e SET lease_until = NULL
FROM unnest(@ids::text[]) AS k(v)
WHERE e.id = k.v::uuid AND e.status = 'queued';

-- name: MailerTrackedLinksInsertBatch :exec
INSERT INTO tracked_links (id, email_send_id, url, created_at)
SELECT unnest(@ids::text[])::uuid, unnest(@email_send_ids::text[])::uuid, unnest(@urls::text[]), @at
ON CONFLICT (id) DO NOTHING;

-- name: MailerSendMarkSentBatch :execrows
-- MailerSendMarkSent for many sends; an empty resend id is NULL.
UPDATE email_sends e SET status = 'sent', sent_at = @at::timestamptz, resend_id = u.resend_id, provider = @provider::text,
                         updated_at = @at::timestamptz
FROM (SELECT unnest(@ids::text[])::uuid AS id, nullif(unnest(@resend_ids::text[]), '') AS resend_id) u
WHERE e.id = u.id AND e.status = 'queued';

-- name: MailerCapCounts :many
-- MailerCapCount for many (recipient, since, category) triples; an empty
-- category counts every category. i is the triple's index.
SELECT u.i::int AS i,
       (SELECT count(*) FROM email_sends e
        WHERE lower(e.to_email) = lower(u.to_email) AND e.created_at >= u.since AND e.status <> 'failed'
          AND (u.category = '' OR e.category = u.category))::bigint AS n
FROM (SELECT unnest(@to_emails::text[]) AS to_email, unnest(@sinces::timestamptz[]) AS since,
             unnest(@categories::text[]) AS category,
             generate_series(0, cardinality(@to_emails::text[]) - 1) AS i) u;

-- name: PrefListByEmails :many
-- The batch form of PrefListByEmail (services/preferences CheckBatch, the
-- mailer's batch suppression check): every row of each normalised address,
-- with the address it matched.
SELECT k.v::text AS match_email, sqlc.embed(p) FROM unnest(@emails::text[]) AS k(v)
JOIN email_preferences p ON lower(p.email) = k.v;

-- name: DevOutboxInsertBatch :exec
-- DevOutboxInsert for many messages (devoutbox SendBatch); to_emails and
-- headers go in as JSON.
INSERT INTO dev_outbox (id, send_key, from_email, to_emails, subject, headers, html, text, created_at)
SELECT u.id, u.send_key, u.from_email, ARRAY(SELECT jsonb_array_elements_text(u.to_emails)), u.subject, u.headers,
       u.html, u.text, @created_at
FROM (SELECT unnest(@ids::text[])::uuid AS id, unnest(@send_keys::text[]) AS send_key,
             unnest(@from_emails::text[]) AS from_email, unnest(@to_emails::text[])::jsonb AS to_emails,
             unnest(@subjects::text[]) AS subject, unnest(@headers::text[])::jsonb AS headers,
             unnest(@htmls::text[]) AS html, unnest(@texts::text[]) AS text) u
ON CONFLICT (send_key) DO NOTHING;

-- name: DevOutboxIDsByKeys :many
SELECT d.send_key, d.id FROM unnest(@send_keys::text[]) AS k(v) JOIN dev_outbox d ON d.send_key = k.v;
