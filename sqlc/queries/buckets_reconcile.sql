-- Owned by projections/buckets: the reconcile sweep's reads and writes.

-- name: BucketSweepLock :one
-- One sweep at a time across every process (transaction-scoped lock).
SELECT pg_try_advisory_xact_lock(hashtextextended('hogsend:bucket-reconcile', 0));

-- name: BucketActiveMembersPage :many
-- Active members with a live contact, by row id (keyset paging), with
-- what evaluation needs. The contact is looked up per member through the
-- key expression index (a lateral lookup: a join of the whole page would
-- hash every contact).
SELECT m.id, m.user_id, m.user_email, m.entered_at, m.entry_count, m.expires_at, m.max_dwell_at,
       c.id AS contact_id, c.email AS contact_email, c.properties
FROM (SELECT * FROM bucket_memberships b
      WHERE b.bucket_id = @bucket_id AND b.status = 'active' AND b.deleted_at IS NULL AND b.id > @after
      ORDER BY b.id LIMIT @lim) m
LEFT JOIN LATERAL (SELECT x.id, x.email, x.properties FROM contacts x
              WHERE x.deleted_at IS NULL AND coalesce(x.external_id, x.anonymous_id, x.id::text) = m.user_id
              LIMIT 1) c ON true
ORDER BY m.id;

-- name: BucketMembershipsLeaveMany :many
-- Compare-and-set of a sweep's leaves: only rows still active (and old
-- enough when minDwell applies) flip.
UPDATE bucket_memberships
SET status = 'left', left_at = @at, last_evaluated_at = @at, updated_at = @at
WHERE id = ANY(@ids::uuid[]) AND status = 'active' AND deleted_at IS NULL AND entered_at <= @entered_before
RETURNING id, entry_count;

-- name: BucketMembershipsEvaluated :exec
UPDATE bucket_memberships SET last_evaluated_at = @at WHERE id = ANY(@ids::uuid[]) AND status = 'active';

-- name: BucketContactByKey :one
SELECT id, email, properties FROM contacts
WHERE deleted_at IS NULL AND coalesce(external_id, anonymous_id, id::text) = @key::text;

-- name: BucketMembershipExpire :one
-- The fast-expiry timer's compare-and-set: only the row as it was armed.
UPDATE bucket_memberships
SET status = 'left', left_at = @at, last_evaluated_at = @at, updated_at = @at
WHERE id = @id AND status = 'active' AND deleted_at IS NULL AND expires_at = @armed_expires_at
RETURNING entry_count;

-- name: UserEventsForEvaluation :many
-- The history a batch of evaluations needs, read once: every row of the
-- batch's keys for the event names its candidate buckets count.
SELECT user_id, event, stream_seq, occurred_at FROM user_events
WHERE user_id = ANY(@user_ids::text[]) AND event = ANY(@events::text[]);

-- name: BucketAbsenceCandidates :many
-- Live contacts that fired one of the events at some time and are not
-- active members of the bucket, by contact id (keyset paging).
SELECT c.id, coalesce(c.external_id, c.anonymous_id, c.id::text)::text AS key, c.email, c.properties
FROM contacts c
WHERE c.deleted_at IS NULL AND c.id > @after
  AND EXISTS (SELECT 1 FROM user_events e
              WHERE e.user_id = coalesce(c.external_id, c.anonymous_id, c.id::text) AND e.event = ANY(@events::text[]))
  AND NOT EXISTS (SELECT 1 FROM bucket_memberships m
                  WHERE m.user_id = coalesce(c.external_id, c.anonymous_id, c.id::text)
                    AND m.bucket_id = @bucket_id AND m.status = 'active' AND m.deleted_at IS NULL)
ORDER BY c.id
LIMIT @lim;

-- name: BucketBackfillIncomplete :one
-- Absence joins wait for the bucket's first backfill (spec 10 §4.8 pass 2).
SELECT (NOT EXISTS (SELECT 1 FROM bucket_configs WHERE bucket_id = @bucket_id::text AND criteria_hash IS NOT NULL)
    OR EXISTS (SELECT 1 FROM import_jobs WHERE file_name = @bucket_id::text AND format = 'bucket-backfill'
               AND status IN ('pending', 'processing')))::bool AS incomplete;

-- name: BucketDwellCandidates :many
-- Pass 4 of the sweep (spec 10 §4.8): active members with a live contact
-- whose dwell anchor is at or before @due, least recently evaluated first.
SELECT m.id, m.user_id, m.user_email, m.entry_count, m.entered_at, m.dwell_anchor_at, m.dwell_state,
       c.id AS contact_id, c.email AS contact_email
FROM (SELECT * FROM bucket_memberships b
      WHERE b.bucket_id = @bucket_id AND b.status = 'active' AND b.deleted_at IS NULL
        AND coalesce(b.dwell_anchor_at, b.entered_at) <= @due
      ORDER BY b.last_evaluated_at NULLS FIRST, b.id LIMIT @lim) m
JOIN LATERAL (SELECT x.id, x.email FROM contacts x
              WHERE x.deleted_at IS NULL AND coalesce(x.external_id, x.anonymous_id, x.id::text) = m.user_id
              LIMIT 1) c ON true
ORDER BY m.last_evaluated_at NULLS FIRST, m.id;

-- name: BucketDwellStamp :execrows
-- Records a dwell fire, only on a row still active.
UPDATE bucket_memberships
SET dwell_state = jsonb_set(dwell_state, ARRAY[@label::text], to_jsonb(@at::timestamptz)), last_evaluated_at = @at, updated_at = @at
WHERE id = @id AND status = 'active';
