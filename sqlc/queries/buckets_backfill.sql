-- Owned by projections/buckets: the backfill and re-evaluation jobs of
-- spec 10 §4.9 (import_jobs rows with format bucket-backfill or
-- bucket-reeval and file_name = the bucket id).

-- name: BucketBackfillJobLock :exec
-- Serialises enqueueing per bucket across processes booting at once
-- (transaction-scoped), so the NOT EXISTS of BucketBackfillJobInsert,
-- run after it in the same transaction, sees any job a concurrent boot
-- just committed.
SELECT pg_advisory_xact_lock(hashtextextended('hogsend:bucket-job:' || @bucket_id::text, 0));

-- name: BucketBackfillJobAbandon :exec
-- A job still processing long after its timeout lost its worker (the
-- process died mid-job). Failing it lets a new job be enqueued; the old
-- hash stays, so nothing is lost.
UPDATE import_jobs
SET status = 'failed', updated_at = now(),
    errors = jsonb_build_array(jsonb_build_object('row', 0, 'error', 'abandoned: no progress while processing'))
WHERE file_name = @bucket_id::text AND format = @format::text AND status = 'processing'
  AND updated_at < now() - make_interval(secs => @stale_secs::float8);

-- name: BucketBackfillJobInsert :one
-- Adds a pending job unless the bucket already has one of this format
-- pending or processing; no row back means it had.
INSERT INTO import_jobs (id, file_name, format, status, created_at, updated_at)
SELECT @id, @bucket_id::text, @format::text, 'pending', now(), now()
WHERE NOT EXISTS (
    SELECT 1 FROM import_jobs j
    WHERE j.file_name = @bucket_id::text AND j.format = @format::text AND j.status IN ('pending', 'processing'))
RETURNING *;

-- name: BucketBackfillJobActive :one
SELECT * FROM import_jobs
WHERE file_name = @bucket_id::text AND format = @format::text AND status IN ('pending', 'processing')
ORDER BY created_at, id
LIMIT 1;

-- name: BucketBackfillJobGet :one
SELECT * FROM import_jobs WHERE id = @id;

-- name: BucketBackfillJobClaim :one
-- Takes one bucket job for running (a pending one, or a finished one run
-- again); a job another worker is processing is left alone.
UPDATE import_jobs
SET status = 'processing', total_rows = NULL, processed_rows = 0, failed_rows = 0, errors = NULL, updated_at = now()
WHERE id = @id AND format IN ('bucket-backfill', 'bucket-reeval') AND status <> 'processing'
RETURNING *;

-- name: BucketBackfillJobClaimNext :one
-- Takes the oldest pending bucket job; SKIP LOCKED lets several workers
-- claim concurrently without ever taking the same job.
UPDATE import_jobs
SET status = 'processing', total_rows = NULL, processed_rows = 0, failed_rows = 0, errors = NULL, updated_at = now()
WHERE id = (
    SELECT j.id FROM import_jobs j
    WHERE j.status = 'pending' AND j.format IN ('bucket-backfill', 'bucket-reeval')
    ORDER BY j.created_at, j.id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
  AND status = 'pending'
RETURNING *;

-- name: BucketBackfillJobSetTotal :exec
UPDATE import_jobs SET total_rows = @total_rows, updated_at = now() WHERE id = @id;

-- name: BucketBackfillJobComplete :exec
UPDATE import_jobs SET status = 'completed', processed_rows = @processed_rows, updated_at = now() WHERE id = @id;

-- name: BucketBackfillJobFail :exec
UPDATE import_jobs
SET status = 'failed', updated_at = now(),
    errors = jsonb_build_array(jsonb_build_object('row', 0, 'error', @message::text))
WHERE id = @id;

-- name: BucketBackfillConfigSetHash :exec
-- Records the criteria the memberships now reflect. A new row takes the
-- column default enabled = true, which is every backfilled bucket's
-- static value (disabled buckets are never backfilled).
INSERT INTO bucket_configs (id, bucket_id, criteria_hash, created_at, updated_at)
VALUES (@id, @bucket_id, @criteria_hash, now(), now())
ON CONFLICT (bucket_id) DO UPDATE SET criteria_hash = EXCLUDED.criteria_hash, updated_at = now();

-- name: BucketBackfillContactsPage :many
-- Live contacts by id (keyset paging) with their key (spec 10 Terms).
SELECT id, coalesce(external_id, anonymous_id, id::text)::text AS key, email, properties
FROM contacts
WHERE deleted_at IS NULL AND id > @after
ORDER BY id
LIMIT @lim;

-- name: BucketBackfillEventStats :many
-- The history of one page of keys for one event leaf: how many events
-- since @since, and the latest of them. Keys without any are absent.
SELECT user_id, count(*) AS n, max(occurred_at)::timestamptz AS last_at
FROM user_events
WHERE user_id = ANY(@keys::text[]) AND event = @event AND occurred_at >= @since
GROUP BY user_id;

-- name: BucketBackfillEventMatchers :many
-- The matchers of a single event leaf, set-based (spec 10 §4.9.2): the
-- event's rows grouped by key and joined to live contacts on the key.
-- @rule is 'absent' (a windowed not_exists: fired at some time but not
-- since @since), 'any' (at least one since @since) or a count operator
-- applied to the count since @since, which must also be at least one.
-- last_at is the latest occurrence of any time (for 'any' and the
-- operators the latest in the window is the latest of all, the window
-- having no upper bound).
SELECT coalesce(c.external_id, c.anonymous_id, c.id::text)::text AS key, c.email, e.last_at::timestamptz AS last_at
FROM (
    SELECT ue.user_id,
           count(*) FILTER (WHERE ue.occurred_at >= @since::timestamptz) AS n,
           max(ue.occurred_at) AS last_at
    FROM user_events ue
    WHERE ue.event = @event::text AND (@rule::text = 'absent' OR ue.occurred_at >= @since::timestamptz)
    GROUP BY ue.user_id
) e
JOIN contacts c ON c.deleted_at IS NULL AND coalesce(c.external_id, c.anonymous_id, c.id::text) = e.user_id
WHERE CASE @rule::text
        WHEN 'absent' THEN e.n = 0
        WHEN 'any' THEN e.n > 0
        WHEN 'gt' THEN e.n > 0 AND e.n > @value::float8
        WHEN 'gte' THEN e.n > 0 AND e.n >= @value::float8
        WHEN 'lt' THEN e.n > 0 AND e.n < @value::float8
        WHEN 'lte' THEN e.n > 0 AND e.n <= @value::float8
        WHEN 'eq' THEN e.n > 0 AND e.n = @value::float8
        ELSE false
      END;

-- name: BucketBackfillJoin :one
-- One chunk of backfill joins (spec 10 §4.9.3) in one statement: keys
-- that already have an active row are skipped by the partial unique
-- index, the epoch is 1 + every earlier row of the pair, and the job's
-- processed_rows grows by the rows inserted. An empty email means none;
-- an anchor of 0001-01-01 means none. The earlier rows are counted for
-- the whole chunk at once rather than per row, so that a plan made while
-- the table was still empty cannot turn into a scan per row.
WITH prior AS (
    SELECT p.user_id, count(*) AS n
    FROM bucket_memberships p
    WHERE p.bucket_id = @bucket_id::text AND p.user_id = ANY(@keys::text[])
    GROUP BY p.user_id
), ins AS (
    INSERT INTO bucket_memberships (id, user_id, bucket_id, user_email, status, entered_at, expires_at, max_dwell_at,
                                    last_evaluated_at, entry_count, source, dwell_anchor_at, created_at, updated_at)
    SELECT u.id, u.key, @bucket_id::text, NULLIF(u.email, ''), 'active', @at::timestamptz,
           sqlc.narg(expires_at)::timestamptz, sqlc.narg(max_dwell_at)::timestamptz, @at::timestamptz,
           1 + coalesce(prior.n, 0),
           'backfill', NULLIF(u.anchor, '0001-01-01 00:00:00+00'::timestamptz), @at::timestamptz, @at::timestamptz
    FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@keys::text[]) AS key,
                 unnest(@emails::text[]) AS email, unnest(@anchors::timestamptz[]) AS anchor) u
    LEFT JOIN prior ON prior.user_id = u.key
    ON CONFLICT (user_id, bucket_id) WHERE status = 'active' AND deleted_at IS NULL DO NOTHING
    RETURNING 1
), progress AS (
    UPDATE import_jobs j SET processed_rows = j.processed_rows + (SELECT count(*) FROM ins), updated_at = now()
    WHERE j.id = @job_id
)
SELECT count(*) FROM ins;

-- name: BucketBackfillActiveMembers :many
-- Every active row of the bucket, in one read: paging by id would sort
-- (or join) the whole bucket again for every page, as no index leads
-- with (bucket_id, status, id).
SELECT m.id, m.user_id
FROM bucket_memberships m
WHERE m.bucket_id = @bucket_id AND m.status = 'active' AND m.deleted_at IS NULL;

-- name: BucketBackfillLeave :many
-- One chunk of re-eval leaves: a compare-and-set from active that
-- ignores minDwell (spec 10 §4.7.1) and only touches rows whose contact
-- is live, found by its key (the reference's external_id join fixed).
-- It returns the rows this statement flipped, with the contact's id, and
-- the job's processed_rows grows by them. The key is looked up column by
-- column (@uuid_keys are the keys that are uuids): each column's index
-- and statistics make a probe per key, where the planner, having no
-- statistics on the key expression, would scan every contact.
WITH live AS (
    SELECT DISTINCT ON (k.key) k.key, k.contact_id
    FROM (
        SELECT c.external_id AS key, c.id AS contact_id
        FROM contacts c WHERE c.deleted_at IS NULL AND c.external_id = ANY(@keys::text[])
        UNION ALL
        SELECT c.anonymous_id, c.id
        FROM contacts c WHERE c.deleted_at IS NULL AND c.external_id IS NULL AND c.anonymous_id = ANY(@keys::text[])
        UNION ALL
        SELECT c.id::text, c.id
        FROM contacts c WHERE c.deleted_at IS NULL AND c.external_id IS NULL AND c.anonymous_id IS NULL AND c.id = ANY(@uuid_keys::uuid[])
    ) k
    ORDER BY k.key, k.contact_id
), flipped AS (
    UPDATE bucket_memberships m
    SET status = 'left', left_at = @at::timestamptz, last_evaluated_at = @at::timestamptz, updated_at = @at::timestamptz
    FROM live
    WHERE m.id = ANY(@ids::uuid[]) AND m.user_id = live.key AND m.bucket_id = @bucket_id
      AND m.status = 'active' AND m.deleted_at IS NULL
    RETURNING m.id, m.user_id, m.user_email, m.entry_count, live.contact_id
), progress AS (
    UPDATE import_jobs j SET processed_rows = j.processed_rows + (SELECT count(*) FROM flipped), updated_at = now()
    WHERE j.id = @job_id
)
SELECT f.id, f.user_id, f.user_email, f.entry_count, f.contact_id FROM flipped f;
