-- Journey entries of the contact timeline (spec 10 §2.8): live states
-- under the contact's key, newest first.

-- name: TimelineJourneyStates :many
SELECT id, journey_id, status, current_node_id, completed_at, exited_at, created_at
FROM journey_states
WHERE user_id = @user_id AND deleted_at IS NULL
ORDER BY created_at DESC, id DESC
LIMIT @lim;

-- name: TimelineJourneyStateCount :one
SELECT count(*) FROM journey_states WHERE user_id = @user_id AND deleted_at IS NULL;

-- name: TimelineEmailSends :many
-- Sends of the contact: joined to its live journey states, plus (spec 10
-- §2.8 [Go]) sends whose user_id is its key.
SELECT e.id, e.template_key, e.subject, e.status, e.to_email, e.sent_at, e.delivered_at, e.opened_at, e.created_at
FROM email_sends e
WHERE e.user_id = @user_id
   OR e.journey_state_id IN (SELECT s.id FROM journey_states s WHERE s.user_id = @user_id AND s.deleted_at IS NULL)
ORDER BY e.created_at DESC, e.id DESC
LIMIT @lim;

-- name: TimelineEmailSendCount :one
SELECT count(*) FROM email_sends e
WHERE e.user_id = @user_id
   OR e.journey_state_id IN (SELECT s.id FROM journey_states s WHERE s.user_id = @user_id AND s.deleted_at IS NULL);
