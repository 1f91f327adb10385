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

-- name: CheckpointAdvanceMany :exec
-- Replay in global order sets the partitions it passed through.
INSERT INTO projection_checkpoints AS cp (consumer, partition, last_seq)
SELECT @consumer::text, unnest(@partitions::int[]), unnest(@seqs::bigint[])
ON CONFLICT (consumer, partition) DO UPDATE
SET last_seq = greatest(cp.last_seq, EXCLUDED.last_seq), updated_at = now();

-- name: CheckpointReset :exec
DELETE FROM projection_checkpoints WHERE consumer = @consumer;

-- name: OutboxListMany :many
SELECT partition, seq, messages, payload FROM projection_outbox
WHERE consumer = @consumer AND partition = ANY(@partitions::int[])
ORDER BY partition, seq;

-- name: OutboxReset :exec
DELETE FROM projection_outbox WHERE consumer = @consumer;

-- name: OutboxReplaceAndAdvance :exec
-- The end of a batch in one round trip: drop the partitions' previous
-- outbox rows (published, or folded into the new ones), store the new
-- rows and advance the checkpoints. Sub-statements of one statement must
-- not touch the same row, so the delete spares the (partition, seq) of the
-- new rows and the insert overwrites such a row (a redelivered batch
-- whose checkpoint did not move).
WITH cleared AS (
  DELETE FROM projection_outbox o
  WHERE o.consumer = @consumer AND o.partition = ANY(@clear_partitions::int[])
    AND (o.partition, o.seq) NOT IN (SELECT unnest(@out_partitions::int[]), unnest(@out_seqs::bigint[]))
),
stored AS (
  INSERT INTO projection_outbox (consumer, partition, seq, messages, payload)
  SELECT @consumer, unnest(@out_partitions::int[]), unnest(@out_seqs::bigint[]), unnest(@out_messages::int[]), unnest(@out_payloads::bytea[])
  ON CONFLICT (consumer, partition, seq) DO UPDATE SET messages = EXCLUDED.messages, payload = EXCLUDED.payload
)
UPDATE projection_checkpoints cp SET last_seq = u.seq, updated_at = now()
FROM (SELECT unnest(@cp_partitions::int[]) AS partition, unnest(@cp_seqs::bigint[]) AS seq) u
WHERE cp.consumer = @consumer AND cp.partition = u.partition;
