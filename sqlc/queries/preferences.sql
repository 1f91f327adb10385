-- Owned by services/preferences: email_preferences (spec 20 §3). The
-- contact reads at the end only resolve identities; projections/contacts
-- writes those tables.
--
-- Emails are stored trimmed and lower-cased; reads match lower(email) so
-- rows written before normalisation are still found (index
-- email_preferences_email).

-- name: PrefLockByKey :one
-- The row Set changes, locked for the read-modify-write. A row stored with
-- the normalised email wins over an older mixed-case one.
SELECT * FROM email_preferences
WHERE user_id = @user_id AND lower(email) = @email::text
ORDER BY (email = @email::text) DESC, created_at, id
LIMIT 1
FOR UPDATE;

-- name: PrefGetByKey :one
SELECT * FROM email_preferences
WHERE user_id = @user_id AND lower(email) = @email::text
ORDER BY (email = @email::text) DESC, created_at, id
LIMIT 1;

-- name: PrefGetByUser :one
-- The admin view of a contact: its rows by user id, the one for the
-- contact's current email first.
SELECT * FROM email_preferences
WHERE user_id = @user_id
ORDER BY (lower(email) = @email::text) DESC, created_at, id
LIMIT 1;

-- name: PrefInsert :one
-- Nothing is returned when a concurrent writer inserted the key first; the
-- caller then locks that row and updates it.
INSERT INTO email_preferences (id, user_id, email, unsubscribed_all, suppressed, categories, suppressed_at, created_at, updated_at)
VALUES (@id, @user_id, @email, @unsubscribed_all, @suppressed, @categories, @suppressed_at, @at, @at)
ON CONFLICT (user_id, email) DO NOTHING
RETURNING *;

-- name: PrefUpdate :one
UPDATE email_preferences SET
    unsubscribed_all = @unsubscribed_all,
    suppressed = @suppressed,
    suppressed_at = @suppressed_at,
    categories = @categories,
    updated_at = @at
WHERE id = @id
RETURNING *;

-- name: PrefListByEmail :many
-- Every row of an address, for the suppression check.
SELECT * FROM email_preferences
WHERE lower(email) = @email::text
ORDER BY created_at, id;

-- name: PrefBounce :many
-- A bounce counts on every row of the address; the threshold suppresses
-- and re-stamps suppressed_at on each later bounce.
UPDATE email_preferences SET
    bounce_count = bounce_count + 1,
    last_bounce_at = @at::timestamptz,
    suppressed = suppressed OR bounce_count + 1 >= @threshold::int,
    suppressed_at = CASE WHEN bounce_count + 1 >= @threshold::int THEN @at::timestamptz ELSE suppressed_at END,
    updated_at = @at::timestamptz
WHERE lower(email) = @email::text
RETURNING *;

-- name: PrefBounceInsert :one
-- The [Go] rule for an address without a row: create it with the first
-- bounce (a concurrent creator's row takes the bounce instead).
INSERT INTO email_preferences (id, user_id, email, bounce_count, last_bounce_at, suppressed, suppressed_at, created_at, updated_at)
VALUES (@id, @user_id, @email::text, 1, @at::timestamptz, 1 >= @threshold::int,
        CASE WHEN 1 >= @threshold::int THEN @at::timestamptz END, @at::timestamptz, @at::timestamptz)
ON CONFLICT (user_id, email) DO UPDATE SET
    bounce_count = email_preferences.bounce_count + 1,
    last_bounce_at = excluded.last_bounce_at,
    suppressed = email_preferences.suppressed OR email_preferences.bounce_count + 1 >= @threshold::int,
    suppressed_at = CASE WHEN email_preferences.bounce_count + 1 >= @threshold::int THEN excluded.last_bounce_at ELSE email_preferences.suppressed_at END,
    updated_at = excluded.updated_at
RETURNING *;

-- name: PrefComplaint :many
UPDATE email_preferences SET suppressed = true, suppressed_at = @at::timestamptz, updated_at = @at::timestamptz
WHERE lower(email) = @email::text
RETURNING *;

-- name: PrefComplaintInsert :one
INSERT INTO email_preferences (id, user_id, email, suppressed, suppressed_at, created_at, updated_at)
VALUES (@id, @user_id, @email::text, true, @at::timestamptz, @at::timestamptz, @at::timestamptz)
ON CONFLICT (user_id, email) DO UPDATE SET
    suppressed = true, suppressed_at = excluded.suppressed_at, updated_at = excluded.updated_at
RETURNING *;

-- name: PrefSuppressionList :many
-- kind: '' (all rows), bounced, unsubscribed or complained (suppressed
-- without bounces: also catches manual suppression).
SELECT * FROM email_preferences
WHERE (@kind::text = ''
    OR (@kind::text = 'bounced' AND bounce_count > 0)
    OR (@kind::text = 'unsubscribed' AND unsubscribed_all)
    OR (@kind::text = 'complained' AND suppressed AND bounce_count = 0))
ORDER BY updated_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: PrefSuppressionCount :one
SELECT count(*) FROM email_preferences
WHERE (@kind::text = ''
    OR (@kind::text = 'bounced' AND bounce_count > 0)
    OR (@kind::text = 'unsubscribed' AND unsubscribed_all)
    OR (@kind::text = 'complained' AND suppressed AND bounce_count = 0));

-- name: PrefContactGet :one
-- A live contact by uuid (when the key parses as one) or external id; the
-- uuid match wins.
SELECT id, external_id, email FROM contacts
WHERE deleted_at IS NULL
  AND ((sqlc.narg(id)::uuid IS NOT NULL AND id = sqlc.narg(id)::uuid) OR external_id = @external_id::text)
ORDER BY (id = sqlc.narg(id)::uuid) IS TRUE DESC
LIMIT 1;

-- name: PrefContactResolve :one
-- The live contact of an identity: by external id, else by email, else by
-- a stale key (alias) pointing at its current owner. Blank keys match
-- nothing.
SELECT c.id, c.external_id, c.email FROM contacts c
WHERE c.deleted_at IS NULL
  AND ((@external_id::text <> '' AND c.external_id = @external_id::text)
    OR (@email::text <> '' AND lower(c.email) = @email::text)
    OR c.id IN (SELECT a.contact_id FROM contact_aliases a
                WHERE (@external_id::text <> '' AND a.alias_kind = 'external' AND a.alias_value = @external_id::text)
                   OR (@email::text <> '' AND a.alias_kind = 'email' AND a.alias_value = @email::text)))
ORDER BY CASE
    WHEN @external_id::text <> '' AND c.external_id = @external_id::text THEN 0
    WHEN @email::text <> '' AND lower(c.email) = @email::text THEN 1
    ELSE 2 END, c.created_at, c.id
LIMIT 1;
