-- The journeys runtime's reads and writes. Only the journeys service
-- writes journey_states, journey_steps, journey_logs and journey_outbox:
-- this runtime, and its admin API (services/journeyapi) for cancels and
-- the journey_configs switch.

-- name: JourneyLiveStatesLock :many
-- Live active and waiting states of the keys, locked in id order so two
-- writers never deadlock; a state a concurrent wake-up is changing is
-- returned as that transaction committed it.
SELECT * FROM journey_states
WHERE user_id = ANY(@keys::text[]) AND status IN ('active', 'waiting') AND deleted_at IS NULL
ORDER BY id
FOR UPDATE;

-- name: JourneyPendingSteps :many
-- Blocking steps not yet resolved, of the given states.
SELECT * FROM journey_steps WHERE state_id = ANY(@state_ids::uuid[]) AND result IS NULL;

-- name: JourneySteps :many
SELECT * FROM journey_steps WHERE state_id = @state_id ORDER BY step;

-- name: JourneyPriorStates :many
-- Guard 4 of spec 10 §5.2: every row of each (key, journey) pair, any
-- status, deleted ones included.
SELECT s.user_id, s.journey_id, count(*)::int AS n, max(s.created_at)::timestamptz AS newest
FROM journey_states s
JOIN (SELECT unnest(@keys::text[]) AS user_id, unnest(@journey_ids::text[]) AS journey_id) p
  ON s.user_id = p.user_id AND s.journey_id = p.journey_id
GROUP BY s.user_id, s.journey_id;

-- name: JourneyUnsubscribedKeys :many
-- Guard 5: keys whose first preferences row unsubscribed from everything.
SELECT DISTINCT ON (user_id) user_id, unsubscribed_all
FROM email_preferences
WHERE user_id = ANY(@keys::text[])
ORDER BY user_id, created_at, id;

-- name: JourneyEnrolGuards :one
-- What a batch's enrolments check, in one round trip instead of four
-- (each is about 0.3 ms while PostgreSQL and NATS share the cores, and a
-- journeys batch pays them before its first run): guard 4's prior states
-- of the (key, journey) pairs (JourneyPriorStates), guard 5's
-- unsubscribed keys (JourneyUnsubscribedKeys), the contacts' time zone
-- column (the ACTIVITY snapshot does not carry it) and the admin
-- overrides (JourneyConfigList); and what the unique indexes would refuse
-- an enrolment for (new states are inserted together when the batch ends,
-- so the consumer decides these in memory): a pair with a soft-deleted
-- live row (blocked; uq_user_journey_active spans deleted rows) and the
-- (journey, event) pairs already enrolled (journey_states_trigger). Each
-- part is a JSON array.
SELECT
  (SELECT coalesce(json_agg(json_build_object('key', g.user_id, 'journey', g.journey_id, 'n', g.n, 'newest', g.newest, 'blocked', g.blocked)), '[]')
   FROM (SELECT s.user_id, s.journey_id, count(*) AS n, max(s.created_at) AS newest,
                bool_or(s.status IN ('active', 'waiting') AND s.deleted_at IS NOT NULL) AS blocked
         FROM journey_states s
         JOIN (SELECT unnest(@keys::text[]) AS user_id, unnest(@journey_ids::text[]) AS journey_id) p
           ON s.user_id = p.user_id AND s.journey_id = p.journey_id
         GROUP BY s.user_id, s.journey_id) g)::jsonb AS prior,
  (SELECT coalesce(json_agg(json_build_object('key', u.user_id, 'all', u.unsubscribed_all)), '[]')
   FROM (SELECT DISTINCT ON (e.user_id) e.user_id, e.unsubscribed_all
         FROM email_preferences e
         WHERE e.user_id = ANY(@keys::text[])
         ORDER BY e.user_id, e.created_at, e.id) u)::jsonb AS unsubscribed,
  (SELECT coalesce(json_agg(json_build_object('id', c.id, 'zone', c.timezone)), '[]')
   FROM contacts c WHERE c.id = ANY(@contact_ids::uuid[]) AND c.timezone IS NOT NULL)::jsonb AS zones,
  (SELECT coalesce(json_agg(json_build_object('journey', j.journey_id, 'enabled', j.enabled)), '[]')
   FROM journey_configs j)::jsonb AS configs,
  (SELECT coalesce(json_agg(json_build_object('journey', s.journey_id, 'event', s.trigger_event_id)), '[]')
   FROM journey_states s
   JOIN (SELECT unnest(@trigger_journey_ids::text[]) AS journey_id, unnest(@trigger_event_ids::text[]) AS event_id) t
     ON s.journey_id = t.journey_id AND s.trigger_event_id = t.event_id)::jsonb AS enrolled;

-- name: JourneyConfigList :many
SELECT journey_id, enabled, updated_at FROM journey_configs ORDER BY journey_id;

-- name: JourneyWritesApply :one
-- Everything a transaction's runs changed, in one statement (one round
-- trip, where one insert per enrolment plus four statements cost several
-- milliseconds per journeys batch on a busy machine): the states enrolled
-- in it, inserted as their runs left them (a run that completed at once
-- is inserted completed, never updated), new steps, results of steps
-- stored as pending, the changed states that existed before, once each,
-- and the log rows. An empty part is a no-op. The parts touch different
-- rows: a step recorded in this transaction is resolved in memory before
-- it is written, and a pair whose stored run ended in the transaction is
-- written before a new run of the pair is enrolled (so no insert here
-- races an update of the same pair's live slot). Foreign keys are checked
-- when the statement ends, after the new states exist. Returns how many
-- new states were inserted; fewer than given means a unique index refused
-- one, which the consumer treats as an error. The transaction holds the
-- existing states' rows (locked FOR UPDATE), so their transitions were
-- decided on their current status. Empty strings, 0 and the zero time
-- stand for NULL.
WITH new_states AS (
  INSERT INTO journey_states (id, user_id, user_email, journey_id, contact_id, current_node_id, status, hatchet_run_id, context,
                              error_message, entry_count, trigger_event_id, timezone, completed_at, exited_at, created_at, updated_at)
  SELECT n.id, n.user_id, n.user_email, n.journey_id, nullif(n.contact_id, '')::uuid, n.node, n.status, n.id::text, n.context::jsonb,
         nullif(n.err, ''), n.entry_count, n.trigger_event_id, n.timezone,
         nullif(n.completed_at, '0001-01-01 00:00:00+00'::timestamptz), nullif(n.exited_at, '0001-01-01 00:00:00+00'::timestamptz),
         n.created_at, n.updated_at
  FROM (SELECT unnest(@new_ids::uuid[]) AS id, unnest(@new_user_ids::text[]) AS user_id, unnest(@new_user_emails::text[]) AS user_email,
               unnest(@new_journey_ids::text[]) AS journey_id, unnest(@new_contact_ids::text[]) AS contact_id,
               unnest(@new_nodes::text[]) AS node, unnest(@new_statuses::text[]) AS status, unnest(@new_contexts::text[]) AS context,
               unnest(@new_errs::text[]) AS err, unnest(@new_entry_counts::int[]) AS entry_count,
               unnest(@new_trigger_event_ids::text[]) AS trigger_event_id, unnest(@new_timezones::text[]) AS timezone,
               unnest(@new_completed_ats::timestamptz[]) AS completed_at, unnest(@new_exited_ats::timestamptz[]) AS exited_at,
               unnest(@new_created_ats::timestamptz[]) AS created_at, unnest(@new_updated_ats::timestamptz[]) AS updated_at) n
  ON CONFLICT DO NOTHING
  RETURNING id
), new_steps AS (
  INSERT INTO journey_steps (state_id, step, kind, label, result, due_at, wait_event, wait_after_seq, wait_after_at, created_at, resolved_at)
  SELECT unnest(@step_state_ids::uuid[]), unnest(@step_numbers::int[]), unnest(@step_kinds::text[]), nullif(unnest(@step_labels::text[]), ''),
         nullif(unnest(@step_results::text[]), '')::jsonb, nullif(unnest(@step_due_ats::timestamptz[]), '0001-01-01 00:00:00+00'::timestamptz),
         nullif(unnest(@step_wait_events::text[]), ''), nullif(unnest(@step_wait_after_seqs::bigint[]), 0),
         nullif(unnest(@step_wait_after_ats::timestamptz[]), '0001-01-01 00:00:00+00'::timestamptz), unnest(@step_created_ats::timestamptz[]),
         nullif(unnest(@step_resolved_ats::timestamptz[]), '0001-01-01 00:00:00+00'::timestamptz)
), resolved AS (
  UPDATE journey_steps s SET result = r.result::jsonb, resolved_at = r.at
  FROM (SELECT unnest(@resolve_state_ids::uuid[]) AS state_id, unnest(@resolve_steps::int[]) AS step,
               unnest(@resolve_results::text[]) AS result, unnest(@resolve_ats::timestamptz[]) AS at) r
  WHERE s.state_id = r.state_id AND s.step = r.step AND s.result IS NULL
), changed AS (
  UPDATE journey_states s SET
      status          = u.status,
      current_node_id = u.node,
      error_message   = nullif(u.err, ''),
      completed_at    = u.completed_at,
      exited_at       = u.exited_at,
      updated_at      = u.at
  FROM (SELECT unnest(@state_ids::uuid[]) AS id, unnest(@state_statuses::text[]) AS status, unnest(@state_nodes::text[]) AS node,
               unnest(@state_errs::text[]) AS err,
               nullif(unnest(@state_completed_ats::timestamptz[]), '0001-01-01 00:00:00+00'::timestamptz) AS completed_at,
               nullif(unnest(@state_exited_ats::timestamptz[]), '0001-01-01 00:00:00+00'::timestamptz) AS exited_at,
               unnest(@state_ats::timestamptz[]) AS at) u
  WHERE s.id = u.id
), logged AS (
  INSERT INTO journey_logs (id, journey_state_id, from_node_id, to_node_id, action, detail, created_at, updated_at)
  SELECT unnest(@log_ids::uuid[]), unnest(@log_state_ids::uuid[]), nullif(unnest(@log_from_nodes::text[]), ''), nullif(unnest(@log_to_nodes::text[]), ''),
         unnest(@log_actions::text[]), nullif(unnest(@log_details::text[]), '')::jsonb, unnest(@log_ats::timestamptz[]), unnest(@log_ats::timestamptz[])
)
SELECT count(*)::int AS inserted FROM new_states;

-- name: JourneyStatesRekey :many
-- History folding (spec 10 §2.3.3) of live rows from one key to another.
-- A moved active/waiting row whose pair is taken on the target exits
-- first (and its run is thereby cancelled: the wake guard sees it).
UPDATE journey_states s SET
    status     = CASE WHEN s.status IN ('active', 'waiting') AND EXISTS (
                     SELECT 1 FROM journey_states t
                     WHERE t.user_id = @to_key AND t.journey_id = s.journey_id AND t.status IN ('active', 'waiting'))
                 THEN 'exited' ELSE s.status END,
    exited_at  = CASE WHEN s.status IN ('active', 'waiting') AND EXISTS (
                     SELECT 1 FROM journey_states t
                     WHERE t.user_id = @to_key AND t.journey_id = s.journey_id AND t.status IN ('active', 'waiting'))
                 THEN @at::timestamptz ELSE s.exited_at END,
    user_id    = @to_key,
    contact_id = coalesce(sqlc.narg(to_contact_id), s.contact_id),
    user_email = CASE WHEN @to_email::text <> '' THEN @to_email::text ELSE s.user_email END,
    updated_at = @at
WHERE s.user_id = @from_key AND s.deleted_at IS NULL
RETURNING s.id, s.status;

-- name: JourneyHistoryOf :one
-- ctx.JourneyHistory (spec 10 §5.4): all rows, deleted ones included.
SELECT count(*)::int AS entry_count, coalesce(max(completed_at), '0001-01-01 00:00:00+00'::timestamptz)::timestamptz AS last_completed_at
FROM journey_states WHERE user_id = @user_id AND journey_id = @journey_id;

-- name: JourneyEventCount :one
SELECT count(*)::int FROM user_events
WHERE user_id = @user_id AND event = @event AND occurred_at >= @since AND occurred_at <= @until;

-- name: JourneyContactEmail :one
-- The current email of the contact a state is for (the default recipient
-- when the trigger event carried none).
SELECT coalesce(email, '')::text FROM contacts WHERE id = @id AND deleted_at IS NULL;

-- name: JourneyLiveStatesOfEvent :many
-- The exit report of POST /v1/events in one round trip: the live active
-- and waiting states under the history key of the live contact the event
-- names (by external id, else email, else anonymous id).
WITH c AS (
    SELECT coalesce(x.external_id, x.anonymous_id, x.id::text)::text AS key
    FROM contacts x
    WHERE x.deleted_at IS NULL AND (
          (sqlc.narg(external_id)::text IS NOT NULL AND x.external_id = sqlc.narg(external_id)::text)
       OR (sqlc.narg(email)::text IS NOT NULL AND lower(x.email) = lower(sqlc.narg(email)::text))
       OR (sqlc.narg(anonymous_id)::text IS NOT NULL AND x.anonymous_id = sqlc.narg(anonymous_id)::text))
    ORDER BY (x.external_id IS NOT DISTINCT FROM sqlc.narg(external_id)::text) DESC,
             (lower(x.email) IS NOT DISTINCT FROM lower(sqlc.narg(email)::text)) DESC
    LIMIT 1)
SELECT s.id, s.journey_id FROM journey_states s JOIN c ON s.user_id = c.key
WHERE s.status IN ('active', 'waiting') AND s.deleted_at IS NULL
ORDER BY s.created_at, s.id;

-- name: JourneyStatesLockMany :many
-- The states of a batch of wake-ups, locked in id order.
SELECT * FROM journey_states WHERE id = ANY(@ids::uuid[]) ORDER BY id FOR UPDATE;

-- name: JourneyStepsOfMany :many
SELECT * FROM journey_steps WHERE state_id = ANY(@state_ids::uuid[]) ORDER BY state_id, step;

-- name: JourneyOutboxInsertMany :many
INSERT INTO journey_outbox (state_id, msgs)
SELECT unnest(@state_ids::uuid[]), unnest(@msgs::text[])::jsonb
RETURNING id;

-- name: JourneyOutboxForStates :many
SELECT id, msgs FROM journey_outbox WHERE state_id = ANY(@state_ids::uuid[]) ORDER BY id;

-- name: JourneyOutboxDeleteMany :exec
DELETE FROM journey_outbox WHERE id = ANY(@ids::bigint[]);

-- name: JourneyEmailHistory :one
-- ctx.EmailHistory (spec 10 §5.4): every send of a template to an
-- address, failed ones included.
SELECT count(*)::int AS n, coalesce(max(sent_at), '0001-01-01 00:00:00+00'::timestamptz)::timestamptz AS last_sent_at
FROM email_sends WHERE lower(to_email) = lower(@to_email) AND template_key = @template_key;


