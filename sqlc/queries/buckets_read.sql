-- Reads of the bucket projection's tables (admin API and configs). Only
-- projections/buckets writes bucket_memberships and bucket_configs.

-- name: BucketConfigList :many
SELECT bucket_id, enabled, criteria_hash, updated_at FROM bucket_configs ORDER BY bucket_id;

-- name: BucketConfigGet :one
SELECT bucket_id, enabled, criteria_hash, updated_at FROM bucket_configs WHERE bucket_id = @bucket_id;

-- name: BucketMembershipCounts :many
-- Live rows per bucket and status, for many buckets in one statement.
-- Buckets without rows are absent.
SELECT bucket_id,
       count(*) FILTER (WHERE status = 'active') AS active_count,
       count(*) FILTER (WHERE status = 'left')   AS left_count
FROM bucket_memberships
WHERE bucket_id = ANY(@bucket_ids::text[]) AND deleted_at IS NULL
GROUP BY bucket_id;

-- name: BucketMemberList :many
-- A page of live rows of one bucket and status, newest entry first.
SELECT * FROM bucket_memberships
WHERE bucket_id = @bucket_id AND status = @status AND deleted_at IS NULL
  AND (@user_id::text = '' OR user_id = @user_id)
ORDER BY entered_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: BucketMemberCount :one
SELECT count(*) FROM bucket_memberships
WHERE bucket_id = @bucket_id AND status = @status AND deleted_at IS NULL
  AND (@user_id::text = '' OR user_id = @user_id);

-- name: BucketMetrics :many
-- Per bucket over live rows: active rows, all rows, left rows and the
-- rounded mean dwell in seconds (an active row dwells until @now). Buckets
-- without rows are absent.
SELECT bucket_id,
       count(*) FILTER (WHERE status = 'active') AS size,
       count(*)                                  AS entered,
       count(*) FILTER (WHERE status = 'left')   AS left_count,
       round(avg(extract(epoch FROM coalesce(left_at, @now::timestamptz) - entered_at)))::bigint AS avg_dwell_secs
FROM bucket_memberships
WHERE bucket_id = ANY(@bucket_ids::text[]) AND deleted_at IS NULL
GROUP BY bucket_id;

-- name: BucketMetricsSeries :many
-- Live joins by date_trunc(@period, entered_at) and live leaves by
-- date_trunc(@period, left_at), each inside [@from_at, @to_at], merged per
-- period. Truncation happens in UTC whatever the session time zone, and
-- the date is written as Postgres prints a timestamptz in UTC
-- ("2025-03-08 00:00:00+00").
SELECT d.date::text AS date, sum(d.entered)::bigint AS entered, sum(d.left_n)::bigint AS left_count
FROM (
    SELECT to_char(date_trunc(@period::text, j.entered_at, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00' AS date,
           1 AS entered, 0 AS left_n
    FROM bucket_memberships j
    WHERE j.bucket_id = @bucket_id AND j.deleted_at IS NULL
      AND j.entered_at >= @from_at::timestamptz AND j.entered_at <= @to_at::timestamptz
    UNION ALL
    SELECT to_char(date_trunc(@period::text, l.left_at, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00' AS date,
           0 AS entered, 1 AS left_n
    FROM bucket_memberships l
    WHERE l.bucket_id = @bucket_id AND l.deleted_at IS NULL AND l.left_at IS NOT NULL
      AND l.left_at >= @from_at::timestamptz AND l.left_at <= @to_at::timestamptz
) d
GROUP BY d.date
ORDER BY d.date COLLATE "C";
