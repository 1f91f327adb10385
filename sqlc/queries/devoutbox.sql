-- The dev mail outbox (services/mailer/devoutbox), the default provider
-- when none is configured.

-- name: DevOutboxInsert :exec
-- A message re-sent under the same key is stored once.
INSERT INTO dev_outbox (id, send_key, from_email, to_emails, subject, headers, html, text, created_at)
VALUES (@id, @send_key, @from_email, @to_emails, @subject, @headers, @html, @text, @created_at)
ON CONFLICT (send_key) DO NOTHING;

-- name: DevOutboxIDByKey :one
SELECT id FROM dev_outbox WHERE send_key = @send_key;

-- name: DevOutboxList :many
SELECT id, from_email, to_emails, subject, created_at FROM dev_outbox
ORDER BY created_at DESC, id DESC LIMIT @lim OFFSET @off;

-- name: DevOutboxCount :one
SELECT count(*) FROM dev_outbox;

-- name: DevOutboxGet :one
SELECT * FROM dev_outbox WHERE id = @id;
