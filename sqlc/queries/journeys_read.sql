-- The journey admin API's statements (services/journeyapi, spec 10 §5.7):
-- reads of the journeys runtime's tables, plus the admin's two writes, the
-- enabled override (journey_configs) and the cancel of one state. The
-- cancel is a single conditional UPDATE, so it never overwrites a status
-- the runtime set, and the runtime leaves an exited state alone (its wake
-- guard only resumes waiting states). Every name starts with JourneyAdmin.

-- name: JourneyAdminConfigList :many
-- Every override, registered journey or not; the table has one row per
-- journey an admin ever switched, so reading it whole is cheap.
SELECT journey_id, enabled FROM journey_configs ORDER BY journey_id;

-- name: JourneyAdminConfigSetEnabled :one
INSERT INTO journey_configs (id, journey_id, enabled, created_at, updated_at)
VALUES (@id, @journey_id, @enabled, @at, @at)
ON CONFLICT (journey_id) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at
RETURNING journey_id, enabled, updated_at;

-- name: JourneyAdminStateStats :many
-- Live states per journey, for many journeys in one statement: a count per
-- status, and the mean run time in whole seconds of the completed and
-- exited states (end = completed_at, else exited_at), over ended_count
-- states; avg_duration_secs is 0 when ended_count is 0. Journeys without
-- live states are absent.
SELECT journey_id,
       count(*) FILTER (WHERE status = 'active')    AS active_count,
       count(*) FILTER (WHERE status = 'waiting')   AS waiting_count,
       count(*) FILTER (WHERE status = 'completed') AS completed_count,
       count(*) FILTER (WHERE status = 'failed')    AS failed_count,
       count(*) FILTER (WHERE status = 'exited')    AS exited_count,
       count(coalesce(completed_at, exited_at)) FILTER (WHERE status IN ('completed', 'exited')) AS ended_count,
       coalesce(round(avg(extract(epoch FROM coalesce(completed_at, exited_at) - created_at))
                      FILTER (WHERE status IN ('completed', 'exited'))), 0)::bigint AS avg_duration_secs
FROM journey_states
WHERE journey_id = ANY(@journey_ids::text[]) AND deleted_at IS NULL
GROUP BY journey_id;

-- name: JourneyAdminStateList :many
-- A page of a journey's live states, newest first; an empty status or
-- user id does not filter.
SELECT * FROM journey_states
WHERE journey_id = @journey_id AND deleted_at IS NULL
  AND (@status::text = '' OR status = @status)
  AND (@user_id::text = '' OR user_id = @user_id)
ORDER BY created_at DESC, id DESC
LIMIT @lim OFFSET @off;

-- name: JourneyAdminStateCount :one
SELECT count(*) FROM journey_states
WHERE journey_id = @journey_id AND deleted_at IS NULL
  AND (@status::text = '' OR status = @status)
  AND (@user_id::text = '' OR user_id = @user_id);

-- name: JourneyAdminStateRecent :many
-- The most recently updated live states of a journey.
SELECT * FROM journey_states
WHERE journey_id = @journey_id AND deleted_at IS NULL
ORDER BY updated_at DESC, id DESC
LIMIT @lim;

-- name: JourneyAdminStateGet :one
-- A live state; a NULL journey_id accepts any journey (the journey-logs
-- route), a set one must match.
SELECT * FROM journey_states
WHERE id = @id AND deleted_at IS NULL
  AND (sqlc.narg(journey_id)::text IS NULL OR journey_id = sqlc.narg(journey_id));

-- name: JourneyAdminLogList :many
-- A state's log, oldest first (ids are UUIDv7, so they break ties in
-- creation order).
SELECT id, from_node_id, to_node_id, action, detail, created_at
FROM journey_logs
WHERE journey_state_id = @journey_state_id
ORDER BY created_at, id;

-- name: JourneyAdminStateCancel :one
-- Exits a live active or waiting state of the journey. No row means the
-- state is missing or no longer cancellable; the caller reads it to tell
-- which. A run holding the row lock finishes first, and the status is
-- re-checked against what it committed. exited_at is read back from
-- updated_at, set to the same instant, whose column is NOT NULL.
UPDATE journey_states SET status = 'exited', exited_at = @at::timestamptz, updated_at = @at::timestamptz
WHERE id = @id AND journey_id = @journey_id AND deleted_at IS NULL AND status IN ('active', 'waiting')
RETURNING id, current_node_id, updated_at AS exited_at;

-- name: JourneyAdminLogInsert :exec
INSERT INTO journey_logs (id, journey_state_id, from_node_id, to_node_id, action, detail, created_at, updated_at)
VALUES (@id, @journey_state_id, sqlc.narg(from_node_id), sqlc.narg(to_node_id), @action, @detail, @at, @at);
