-- The email reporting statements (services/emailapi, spec 20 §5 and the
-- overview of spec 10 §5.7). They only read: the mailer owns email_sends,
-- tracked_links and link_clicks, and an admin resend goes back through the
-- mailer as a command. Every name starts with Report.
--
-- Shared conventions:
-- * An absent (NULL) filter does not filter.
-- * from_at/to_at bound created_at, both inclusive.
-- * engagement names the timestamp that must be set (opened, clicked,
--   bounced, complained); NULL or any other value does not filter.
-- * A send's journey is its live journey state (soft-deleted states do not
--   join).
-- * Date buckets are truncated in UTC whatever the session time zone and
--   written as Postgres prints a timestamptz in UTC ("2025-03-08 00:00:00+00").

-- name: ReportSendList :many
-- A page of sends with their journey, sorted by @sort (createdAt, sentAt,
-- openedAt, clickedAt; anything else is createdAt) in the direction
-- @sort_desc asks, with Postgres's null ordering (NULLs first descending,
-- last ascending); the id breaks ties in the same direction.
SELECT e.id, e.journey_state_id, e.template_key, e.resend_id, e.from_email, e.to_email, e.subject, e.category, e.status,
       e.user_id, js.user_id AS journey_user_id, js.journey_id,
       e.sent_at, e.delivered_at, e.opened_at, e.clicked_at, e.bounced_at, e.complained_at, e.created_at, e.updated_at
FROM email_sends e
LEFT JOIN journey_states js ON js.id = e.journey_state_id AND js.deleted_at IS NULL
WHERE (sqlc.narg(to_email)::text IS NULL OR e.to_email = sqlc.narg(to_email))
  AND (sqlc.narg(template_key)::text IS NULL OR e.template_key = sqlc.narg(template_key))
  AND (sqlc.narg(status)::text IS NULL OR e.status = sqlc.narg(status))
  AND (sqlc.narg(category)::text IS NULL OR e.category = sqlc.narg(category))
  AND (sqlc.narg(journey_id)::text IS NULL OR js.journey_id = sqlc.narg(journey_id))
  AND (sqlc.narg(user_id)::text IS NULL OR e.user_id = sqlc.narg(user_id) OR js.user_id = sqlc.narg(user_id))
  AND CASE sqlc.narg(engagement)::text
        WHEN 'opened' THEN e.opened_at IS NOT NULL
        WHEN 'clicked' THEN e.clicked_at IS NOT NULL
        WHEN 'bounced' THEN e.bounced_at IS NOT NULL
        WHEN 'complained' THEN e.complained_at IS NOT NULL
        ELSE true
      END
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR e.created_at >= sqlc.narg(from_at))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR e.created_at <= sqlc.narg(to_at))
ORDER BY
  CASE WHEN @sort_desc::bool THEN
    CASE @sort::text WHEN 'sentAt' THEN e.sent_at WHEN 'openedAt' THEN e.opened_at WHEN 'clickedAt' THEN e.clicked_at ELSE e.created_at END
  END DESC,
  CASE WHEN NOT @sort_desc::bool THEN
    CASE @sort::text WHEN 'sentAt' THEN e.sent_at WHEN 'openedAt' THEN e.opened_at WHEN 'clickedAt' THEN e.clicked_at ELSE e.created_at END
  END ASC,
  CASE WHEN @sort_desc::bool THEN e.id END DESC,
  CASE WHEN NOT @sort_desc::bool THEN e.id END ASC
LIMIT @lim OFFSET @off;

-- name: ReportSendCount :one
-- The total of ReportSendList's filters.
SELECT count(*)
FROM email_sends e
LEFT JOIN journey_states js ON js.id = e.journey_state_id AND js.deleted_at IS NULL
WHERE (sqlc.narg(to_email)::text IS NULL OR e.to_email = sqlc.narg(to_email))
  AND (sqlc.narg(template_key)::text IS NULL OR e.template_key = sqlc.narg(template_key))
  AND (sqlc.narg(status)::text IS NULL OR e.status = sqlc.narg(status))
  AND (sqlc.narg(category)::text IS NULL OR e.category = sqlc.narg(category))
  AND (sqlc.narg(journey_id)::text IS NULL OR js.journey_id = sqlc.narg(journey_id))
  AND (sqlc.narg(user_id)::text IS NULL OR e.user_id = sqlc.narg(user_id) OR js.user_id = sqlc.narg(user_id))
  AND CASE sqlc.narg(engagement)::text
        WHEN 'opened' THEN e.opened_at IS NOT NULL
        WHEN 'clicked' THEN e.clicked_at IS NOT NULL
        WHEN 'bounced' THEN e.bounced_at IS NOT NULL
        WHEN 'complained' THEN e.complained_at IS NOT NULL
        ELSE true
      END
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR e.created_at >= sqlc.narg(from_at))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR e.created_at <= sqlc.narg(to_at));

-- name: ReportSendGet :one
-- One send with its live journey state (the journey columns are NULL
-- without one).
SELECT e.id, e.journey_state_id, e.template_key, e.resend_id, e.from_email, e.to_email, e.subject, e.category, e.status,
       e.user_id, e.contact_id,
       e.sent_at, e.delivered_at, e.opened_at, e.clicked_at, e.bounced_at, e.complained_at, e.created_at, e.updated_at,
       js.journey_id, js.user_id AS journey_user_id, js.status AS journey_status, js.current_node_id AS journey_current_node_id
FROM email_sends e
LEFT JOIN journey_states js ON js.id = e.journey_state_id AND js.deleted_at IS NULL
WHERE e.id = @id;

-- name: ReportSendLinks :many
-- A send's tracked links in creation order.
SELECT id, url, created_at FROM tracked_links
WHERE email_send_id = @email_send_id
ORDER BY created_at, id;

-- name: ReportSendClicks :many
-- Every click on a send's links, oldest first (automated hits included).
SELECT c.id, c.link_id, l.url, c.ip_address, c.user_agent, c.automated, c.created_at
FROM link_clicks c
JOIN tracked_links l ON l.id = c.link_id
WHERE c.email_send_id = @email_send_id AND l.email_send_id = @email_send_id
ORDER BY c.created_at, c.id;

-- name: ReportTemplateMetrics :many
-- Per-template counts over sends created in the window: sent (sent_at),
-- delivered (status delivered or delivered_at), opened and clicked
-- (timestamps), bounced (status). Sends without a template form one group
-- with a NULL key, only when @include_untemplated.
SELECT template_key,
       count(*) FILTER (WHERE sent_at IS NOT NULL)                              AS sent,
       count(*) FILTER (WHERE status = 'delivered' OR delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE opened_at IS NOT NULL)                            AS opened,
       count(*) FILTER (WHERE clicked_at IS NOT NULL)                           AS clicked,
       count(*) FILTER (WHERE status = 'bounced')                               AS bounced
FROM email_sends
WHERE (@include_untemplated::bool OR template_key IS NOT NULL)
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR created_at >= sqlc.narg(from_at))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR created_at <= sqlc.narg(to_at))
GROUP BY template_key
ORDER BY template_key NULLS LAST;

-- name: ReportDeliverability :many
-- Sends created in [@from_at, @to_at] per @period bucket, ascending:
-- total, delivered (status delivered or delivered_at), bounced and
-- complained (status).
SELECT (to_char(date_trunc(@period::text, created_at, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00')::text AS date,
       count(*)                                                                 AS total,
       count(*) FILTER (WHERE status = 'delivered' OR delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE status = 'bounced')                               AS bounced,
       count(*) FILTER (WHERE status = 'complained')                            AS complained
FROM email_sends
WHERE created_at >= @from_at::timestamptz AND created_at <= @to_at::timestamptz
GROUP BY date_trunc(@period::text, created_at, 'UTC')
ORDER BY date_trunc(@period::text, created_at, 'UTC');

-- name: ReportOverview :one
-- The overview counts (spec 10 §5.7): live contacts, live active or waiting
-- journey states, distinct buckets with a live active membership, live
-- active memberships, sends with sent_at since each of the three instants,
-- sends bounced (status) created since @since_30d, preference rows and
-- those unsubscribed from everything.
SELECT
  (SELECT count(*) FROM contacts WHERE deleted_at IS NULL)::bigint                                          AS total_contacts,
  (SELECT count(*) FROM journey_states WHERE deleted_at IS NULL AND status IN ('active', 'waiting'))::bigint AS active_journeys,
  (SELECT count(DISTINCT bucket_id) FROM bucket_memberships WHERE status = 'active' AND deleted_at IS NULL)::bigint AS active_buckets,
  (SELECT count(*) FROM bucket_memberships WHERE status = 'active' AND deleted_at IS NULL)::bigint            AS bucket_members,
  (SELECT count(*) FROM email_sends WHERE sent_at >= @since_24h::timestamptz)::bigint                        AS sent_24h,
  (SELECT count(*) FROM email_sends WHERE sent_at >= @since_7d::timestamptz)::bigint                         AS sent_7d,
  (SELECT count(*) FROM email_sends WHERE sent_at >= @since_30d::timestamptz)::bigint                        AS sent_30d,
  (SELECT count(*) FROM email_sends WHERE status = 'bounced' AND created_at >= @since_30d::timestamptz)::bigint AS bounced_30d,
  (SELECT count(*) FROM email_preferences)::bigint                                                           AS prefs_total,
  (SELECT count(*) FROM email_preferences WHERE unsubscribed_all)::bigint                                    AS prefs_unsubscribed;

-- name: ReportTemplateSent :one
-- Whether any send ever used the template (no window).
SELECT EXISTS (SELECT 1 FROM email_sends WHERE template_key = @template_key::text)::bool AS sent;

-- name: ReportTemplateTotals :one
-- One template's counts over sends created in the window; bounced and
-- complained count the timestamps here.
SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)                              AS sent,
       count(*) FILTER (WHERE status = 'delivered' OR delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE opened_at IS NOT NULL)                            AS opened,
       count(*) FILTER (WHERE clicked_at IS NOT NULL)                           AS clicked,
       count(*) FILTER (WHERE bounced_at IS NOT NULL)                           AS bounced,
       count(*) FILTER (WHERE complained_at IS NOT NULL)                        AS complained
FROM email_sends
WHERE template_key = @template_key::text
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR created_at >= sqlc.narg(from_at))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR created_at <= sqlc.narg(to_at));

-- name: ReportTemplateSeries :many
-- ReportTemplateTotals per @period bucket, ascending (no complained).
SELECT (to_char(date_trunc(@period::text, created_at, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00')::text AS date,
       count(*) FILTER (WHERE sent_at IS NOT NULL)                              AS sent,
       count(*) FILTER (WHERE status = 'delivered' OR delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE opened_at IS NOT NULL)                            AS opened,
       count(*) FILTER (WHERE clicked_at IS NOT NULL)                           AS clicked,
       count(*) FILTER (WHERE bounced_at IS NOT NULL)                           AS bounced
FROM email_sends
WHERE template_key = @template_key::text
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR created_at >= sqlc.narg(from_at))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR created_at <= sqlc.narg(to_at))
GROUP BY date_trunc(@period::text, created_at, 'UTC')
ORDER BY date_trunc(@period::text, created_at, 'UTC');

-- name: ReportContactGet :one
-- A live contact by id.
SELECT id, external_id, email, anonymous_id FROM contacts
WHERE id = @id AND deleted_at IS NULL;

-- name: ReportContactByExternalID :one
-- A live contact by external id (aliases are not followed).
SELECT id, external_id, email, anonymous_id FROM contacts
WHERE external_id = @external_id AND deleted_at IS NULL;

-- name: ReportContactSends :many
-- A contact's sends, newest first: user_id is its key, or user_email its
-- email (case-insensitively; a NULL email matches nothing), or contact_id
-- names it.
SELECT id, template_key, subject, status, sent_at, delivered_at, opened_at, clicked_at, bounced_at, complained_at,
       bounce_type, created_at
FROM email_sends
WHERE user_id = @user_key::text
   OR lower(user_email) = lower(sqlc.narg(email)::text)
   OR contact_id = @contact_id::uuid
ORDER BY created_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: ReportContactSendCount :one
SELECT count(*) FROM email_sends
WHERE user_id = @user_key::text
   OR lower(user_email) = lower(sqlc.narg(email)::text)
   OR contact_id = @contact_id::uuid;

-- name: ReportSendExport :many
-- At most @lim sends, newest first, for the CSV export. user_id filters
-- the send's own column only (no journey join).
SELECT id, created_at, template_key, status, to_email, user_id, subject,
       sent_at, delivered_at, opened_at, clicked_at, bounced_at, complained_at, bounce_type
FROM email_sends
WHERE (sqlc.narg(template_key)::text IS NULL OR template_key = sqlc.narg(template_key))
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status))
  AND (sqlc.narg(category)::text IS NULL OR category = sqlc.narg(category))
  AND (sqlc.narg(user_id)::text IS NULL OR user_id = sqlc.narg(user_id))
  AND CASE sqlc.narg(engagement)::text
        WHEN 'opened' THEN opened_at IS NOT NULL
        WHEN 'clicked' THEN clicked_at IS NOT NULL
        WHEN 'bounced' THEN bounced_at IS NOT NULL
        WHEN 'complained' THEN complained_at IS NOT NULL
        ELSE true
      END
  AND (sqlc.narg(from_at)::timestamptz IS NULL OR created_at >= sqlc.narg(from_at))
  AND (sqlc.narg(to_at)::timestamptz IS NULL OR created_at <= sqlc.narg(to_at))
ORDER BY created_at DESC, id DESC
LIMIT @lim;
