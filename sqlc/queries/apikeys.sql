-- name: ApiKeyInsert :one
INSERT INTO api_keys (id, name, key_prefix, key_hash, scopes, created_by, expires_at, created_at, updated_at)
VALUES (@id, @name, @key_prefix, @key_hash, @scopes::text[], @created_by, @expires_at, @created_at, @created_at)
RETURNING *;

-- ApiKeyGetByHash finds a live (non-revoked) key; expiry is judged by the caller.
-- name: ApiKeyGetByHash :one
SELECT * FROM api_keys
WHERE key_hash = @key_hash AND revoked_at IS NULL;

-- name: ApiKeyList :many
SELECT * FROM api_keys
WHERE @include_revoked::boolean OR revoked_at IS NULL
ORDER BY created_at DESC, id DESC
LIMIT @max_rows::bigint OFFSET @skip_rows::bigint;

-- name: ApiKeyCount :one
SELECT count(*) FROM api_keys
WHERE @include_revoked::boolean OR revoked_at IS NULL;

-- name: ApiKeyRevoke :execrows
UPDATE api_keys SET revoked_at = @now::timestamptz, updated_at = @now::timestamptz
WHERE id = @id AND revoked_at IS NULL;

-- ApiKeyTouch records a use, at most once per debounce interval: rows used
-- after @stale_before are left alone.
-- name: ApiKeyTouch :execrows
UPDATE api_keys SET last_used_at = @now::timestamptz
WHERE id = @id AND (last_used_at IS NULL OR last_used_at < @stale_before::timestamptz);
