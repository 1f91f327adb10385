-- Reads of the contacts projection's tables (API routes). Only
-- projections/contacts writes these tables.

-- name: ContactList :many
SELECT * FROM contacts
WHERE deleted_at IS NULL
  AND (@search::text = '' OR email ILIKE '%' || @search || '%' OR external_id ILIKE '%' || @search || '%' OR anonymous_id ILIKE '%' || @search || '%')
ORDER BY last_seen_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: ContactCount :one
SELECT count(*) FROM contacts
WHERE deleted_at IS NULL
  AND (@search::text = '' OR email ILIKE '%' || @search || '%' OR external_id ILIKE '%' || @search || '%' OR anonymous_id ILIKE '%' || @search || '%');

-- name: ContactExport :many
SELECT * FROM contacts
WHERE deleted_at IS NULL
  AND (@search::text = '' OR email ILIKE '%' || @search || '%' OR external_id ILIKE '%' || @search || '%' OR anonymous_id ILIKE '%' || @search || '%')
ORDER BY created_at DESC, id DESC
LIMIT @lim;

-- name: ContactFindByKeys :many
-- Public find: live rows by email or external id; aliases are not followed.
SELECT * FROM contacts
WHERE deleted_at IS NULL
  AND ((@email::text <> '' AND lower(email) = @email) OR (@external_id::text <> '' AND external_id = @external_id))
ORDER BY created_at, id;

-- name: ContactGetByID :one
SELECT * FROM contacts WHERE id = @id AND deleted_at IS NULL;

-- name: ContactGetByExternalID :one
SELECT * FROM contacts WHERE external_id = @external_id AND deleted_at IS NULL;

-- name: UserEventListByKey :many
SELECT * FROM user_events WHERE user_id = @user_id
ORDER BY occurred_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: UserEventCountByKey :one
SELECT count(*) FROM user_events WHERE user_id = @user_id;

-- name: UserEventList :many
SELECT * FROM user_events
WHERE (@event::text = '' OR event = @event) AND (@user_id::text = '' OR user_id = @user_id)
ORDER BY occurred_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: UserEventCount :one
SELECT count(*) FROM user_events
WHERE (@event::text = '' OR event = @event) AND (@user_id::text = '' OR user_id = @user_id);

-- name: UserEventGet :one
SELECT * FROM user_events WHERE id = @id;
