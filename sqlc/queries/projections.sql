-- Owned by package projections: checkpoints and outbox of ordered consumers.

-- name: CheckpointEnsure :exec
INSERT INTO projection_checkpoints (consumer, partition, last_seq)
VALUES (@consumer, @partition, 0)
ON CONFLICT (consumer, partition) DO NOTHING;

-- name: CheckpointLock :one
-- Locks the partition's checkpoint for the batch transaction, so a second
-- instance that took over mid-batch waits and then sees what was applied.
SELECT last_seq FROM projection_checkpoints
WHERE consumer = @consumer AND partition = @partition
FOR UPDATE;

-- name: CheckpointSet :exec
UPDATE projection_checkpoints SET last_seq = @last_seq, updated_at = now()
WHERE consumer = @consumer AND partition = @partition;

-- name: CheckpointList :many
SELECT consumer, partition, last_seq, updated_at FROM projection_checkpoints
WHERE consumer = @consumer ORDER BY partition;

-- name: CheckpointReset :exec
DELETE FROM projection_checkpoints WHERE consumer = @consumer;

-- name: OutboxInsert :exec
INSERT INTO projection_outbox (consumer, partition, seq, ord, subject, msg_id, durable, payload)
SELECT @consumer::text, @partition::int, unnest(@seqs::bigint[]), unnest(@ords::int[]),
       unnest(@subjects::text[]), unnest(@msg_ids::text[]), true, unnest(@payloads::bytea[]);

-- name: OutboxList :many
SELECT seq, ord, subject, msg_id, payload FROM projection_outbox
WHERE consumer = @consumer AND partition = @partition
ORDER BY seq, ord;

-- name: OutboxDelete :exec
DELETE FROM projection_outbox
WHERE consumer = @consumer AND partition = @partition AND seq <= @through_seq;

-- name: OutboxReset :exec
DELETE FROM projection_outbox WHERE consumer = @consumer;
