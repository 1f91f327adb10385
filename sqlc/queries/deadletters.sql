-- Owned by package streams/bus: messages a consumer gave up on.

-- name: DeadLetterInsert :exec
INSERT INTO dead_letters (id, source, source_id, subject, stream_seq, payload, raw, error)
VALUES (@id, @source, sqlc.narg(source_id), @subject, sqlc.narg(stream_seq), sqlc.narg(payload), @raw, @error);

-- name: DeadLetterList :many
-- Newest first; a null filter matches everything.
SELECT * FROM dead_letters
WHERE (sqlc.narg(source)::text IS NULL OR source = sqlc.narg(source)::text)
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)::text)
ORDER BY created_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: DeadLetterCount :one
SELECT count(*) FROM dead_letters
WHERE (sqlc.narg(source)::text IS NULL OR source = sqlc.narg(source)::text)
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)::text);

-- name: DeadLetterGet :one
SELECT * FROM dead_letters WHERE id = @id;

-- name: DeadLetterMarkRetried :one
-- Only a pending dead letter can be retried, so two concurrent retries
-- publish at most one extra copy (the second finds no row).
UPDATE dead_letters
SET status = 'retried', retry_count = retry_count + 1, retried_at = now(), updated_at = now()
WHERE id = @id AND status = 'pending'
RETURNING *;

-- name: DeadLetterDiscard :one
UPDATE dead_letters
SET status = 'discarded', updated_at = now()
WHERE id = @id AND status = 'pending'
RETURNING *;
