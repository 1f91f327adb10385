-- Owned by package projections: checkpoints and outbox of ordered consumers.

-- name: CheckpointLockMany :many
-- Creates or row-locks the checkpoints of the partitions in a commit group
-- in one statement (in partition order, so two processes never deadlock
-- on them). A second instance that took a partition over mid-batch waits
-- here and then sees what was applied.
INSERT INTO projection_checkpoints AS cp (consumer, partition, last_seq)
SELECT @consumer::text, p, 0 FROM unnest(@partitions::int[]) AS p ORDER BY p
ON CONFLICT (consumer, partition) DO UPDATE SET last_seq = cp.last_seq
RETURNING partition, last_seq;

-- name: CheckpointSetMany :exec
UPDATE projection_checkpoints cp SET last_seq = u.seq, updated_at = now()
FROM (SELECT unnest(@partitions::int[]) AS partition, unnest(@seqs::bigint[]) AS seq) u
WHERE cp.consumer = @consumer AND cp.partition = u.partition;

-- name: CheckpointAdvanceMany :exec
-- Replay in global order sets the partitions it passed through.
INSERT INTO projection_checkpoints AS cp (consumer, partition, last_seq)
SELECT @consumer::text, unnest(@partitions::int[]), unnest(@seqs::bigint[])
ON CONFLICT (consumer, partition) DO UPDATE
SET last_seq = greatest(cp.last_seq, EXCLUDED.last_seq), updated_at = now();

-- name: CheckpointList :many
SELECT consumer, partition, last_seq, updated_at FROM projection_checkpoints
WHERE consumer = @consumer ORDER BY partition;

-- name: CheckpointReset :exec
DELETE FROM projection_checkpoints WHERE consumer = @consumer;

-- name: OutboxInsertMany :exec
INSERT INTO projection_outbox (consumer, partition, seq, messages, payload)
SELECT @consumer::text, unnest(@partitions::int[]), unnest(@seqs::bigint[]), unnest(@messages::int[]), unnest(@payloads::bytea[]);

-- name: OutboxListMany :many
SELECT partition, seq, messages, payload FROM projection_outbox
WHERE consumer = @consumer AND partition = ANY(@partitions::int[])
ORDER BY partition, seq;

-- name: OutboxDeleteMany :exec
DELETE FROM projection_outbox WHERE consumer = @consumer AND partition = ANY(@partitions::int[]);

-- name: OutboxReset :exec
DELETE FROM projection_outbox WHERE consumer = @consumer;
