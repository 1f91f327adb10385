-- Owned by package projections: checkpoints and outbox of ordered consumers.

-- name: CheckpointLock :one
-- Creates or row-locks the partition's checkpoint for the batch
-- transaction in one statement, so a second instance that took over
-- mid-batch waits and then sees what was applied.
INSERT INTO projection_checkpoints AS cp (consumer, partition, last_seq)
VALUES (@consumer, @partition, 0)
ON CONFLICT (consumer, partition) DO UPDATE SET last_seq = cp.last_seq
RETURNING last_seq;

-- name: CheckpointSet :exec
UPDATE projection_checkpoints SET last_seq = @last_seq, updated_at = now()
WHERE consumer = @consumer AND partition = @partition;

-- name: CheckpointList :many
SELECT consumer, partition, last_seq, updated_at FROM projection_checkpoints
WHERE consumer = @consumer ORDER BY partition;

-- name: CheckpointReset :exec
DELETE FROM projection_checkpoints WHERE consumer = @consumer;

-- name: OutboxInsert :exec
INSERT INTO projection_outbox (consumer, partition, seq, messages, payload)
VALUES (@consumer, @partition, @seq, @messages, @payload);

-- name: OutboxList :many
SELECT seq, messages, payload FROM projection_outbox
WHERE consumer = @consumer AND partition = @partition
ORDER BY seq;

-- name: OutboxDeletePartition :exec
DELETE FROM projection_outbox WHERE consumer = @consumer AND partition = @partition;

-- name: OutboxReset :exec
DELETE FROM projection_outbox WHERE consumer = @consumer;

-- name: CheckpointAdvanceMany :exec
-- Replay in global order sets the partitions it passed through.
INSERT INTO projection_checkpoints AS cp (consumer, partition, last_seq)
SELECT @consumer::text, unnest(@partitions::int[]), unnest(@seqs::bigint[])
ON CONFLICT (consumer, partition) DO UPDATE
SET last_seq = greatest(cp.last_seq, EXCLUDED.last_seq), updated_at = now();
