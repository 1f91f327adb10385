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
