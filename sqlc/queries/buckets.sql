-- Owned by projections/buckets: bucket_memberships, bucket_configs.

-- name: BucketMembershipsOfKeys :many
-- Every row of the keys in the buckets, for the batch's in-memory state:
-- the active row per pair, the number of earlier rows (the next epoch)
-- and the latest leave (the entry gate).
SELECT id, user_id, bucket_id, status, entered_at, left_at, expires_at, entry_count, (deleted_at IS NOT NULL)::bool AS deleted
FROM bucket_memberships
WHERE user_id = ANY(@user_ids::text[]) AND bucket_id = ANY(@bucket_ids::text[]);

-- name: BucketMembershipJoin :one
-- Inserts the active row unless one exists; no row back means another
-- writer joined first and this one must not emit.
INSERT INTO bucket_memberships (id, user_id, bucket_id, user_email, status, entered_at, expires_at, max_dwell_at,
                                last_evaluated_at, entry_count, source, created_at, updated_at)
VALUES (@id, @user_id, @bucket_id, @user_email, 'active', @at, @expires_at, @max_dwell_at, @at,
        (SELECT count(*) + 1 FROM bucket_memberships m WHERE m.user_id = @user_id AND m.bucket_id = @bucket_id),
        @source, @at, @at)
ON CONFLICT (user_id, bucket_id) WHERE status = 'active' AND deleted_at IS NULL DO NOTHING
RETURNING id, entry_count;

-- name: BucketMembershipLeave :one
-- Compare-and-set from active: only the writer that flips the row emits.
UPDATE bucket_memberships
SET status = 'left', left_at = @at, last_evaluated_at = @at, updated_at = @at
WHERE id = @id AND status = 'active' AND deleted_at IS NULL
RETURNING entry_count;

-- name: BucketMembershipDefer :exec
-- A leave younger than minDwell waits: the deadline is kept in expires_at.
UPDATE bucket_memberships SET expires_at = @expires_at, last_evaluated_at = @at, updated_at = @at
WHERE id = @id AND status = 'active';

-- name: BucketMembershipsTouch :exec
-- Still a member: only last_evaluated_at moves.
UPDATE bucket_memberships m SET last_evaluated_at = u.at
FROM (SELECT unnest(@ids::text[])::uuid AS id, unnest(@ats::timestamptz[]) AS at) u
WHERE m.id = u.id AND m.status = 'active' AND (m.last_evaluated_at IS NULL OR m.last_evaluated_at < u.at);

-- name: BucketMembershipsLeaveClashing :exec
-- History folding (spec 10 §2.3): where the target key is already an
-- active member, the source key's active row becomes left, emitting
-- nothing; BucketMembershipsRekey then moves every row of the source key.
UPDATE bucket_memberships l SET status = 'left', left_at = @at, updated_at = @at
WHERE l.user_id = @from_key AND l.status = 'active' AND l.deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM bucket_memberships t WHERE t.user_id = @to_key AND t.bucket_id = l.bucket_id
              AND t.status = 'active' AND t.deleted_at IS NULL);

-- name: BucketMembershipsRekey :exec
UPDATE bucket_memberships SET user_id = @to_key, updated_at = @at WHERE user_id = @from_key;

-- name: BucketConfigsAll :many
SELECT bucket_id, enabled, criteria_hash FROM bucket_configs;

-- name: BucketConfigSetEnabled :one
INSERT INTO bucket_configs (id, bucket_id, enabled, created_at, updated_at)
VALUES (@id, @bucket_id, @enabled, now(), now())
ON CONFLICT (bucket_id) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()
RETURNING bucket_id, enabled, updated_at;

-- name: UserEventCountSince :one
-- History for conditions: events of a key up to the evaluated event's
-- position in EVENTS (evaluation as of that event, replay-stable).
SELECT count(*) FROM user_events
WHERE user_id = @user_id AND event = @event
  AND (stream_seq IS NULL OR stream_seq <= @max_seq)
  AND occurred_at >= @since;

-- name: BucketMembershipsSoftDeleteKey :exec
-- A deleted contact's memberships stop counting, emitting nothing (spec 10
-- §2.7 rule 3 fixed).
UPDATE bucket_memberships SET deleted_at = @at, updated_at = @at
WHERE user_id = @user_id AND deleted_at IS NULL;
