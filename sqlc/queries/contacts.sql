-- Owned by projections/contacts: contacts, contact_aliases, user_events.

-- name: ContactLockKeys :exec
-- Advisory locks on every key of a batch, taken in one sorted pass so two
-- batches sharing keys never deadlock.
SELECT pg_advisory_xact_lock(s.h) FROM (
  SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(@keys::text[]) AS k ORDER BY 1
) s;

-- name: UserEventsInsertMany :many
-- Returns the ids actually inserted: a missing id was a duplicate (same id
-- or same idempotency key).
INSERT INTO user_events (id, user_id, event, properties, idempotency_key, occurred_at, stream_seq)
SELECT unnest(@ids::text[])::uuid, unnest(@user_ids::text[]), unnest(@events::text[]), unnest(@properties::text[])::jsonb,
       nullif(unnest(@idempotency_keys::text[]), ''), unnest(@occurred_ats::timestamptz[]), unnest(@seqs::bigint[])
ON CONFLICT DO NOTHING
RETURNING id::text;

-- name: UserEventsRekey :execrows
UPDATE user_events SET user_id = @to_key WHERE user_id = @from_key;

-- name: ContactsReset :exec
-- Replay from the start: the projection's tables are rebuilt from EVENTS.
TRUNCATE contact_aliases, user_events, contacts;

-- name: ContactsLockLiveByKeys :many
-- Loads (and row-locks, in id order) the live owners of a batch's keys, so
-- a batch on another partition reaching the same contact through another
-- key waits instead of overwriting.
--
-- Every lookup is a LATERAL subquery with LIMIT 1 (each live key is
-- unique), which the planner cannot flatten into a join: each key is one
-- probe of its unique index whatever the table's statistics say. As a
-- plain join, a table that grew since its last ANALYZE (a new install, a
-- burst of sign-ups) was planned as a scan of every live contact per batch,
-- because the partial indexes were estimated at a dozen rows (2.8 ms
-- instead of 0.2 ms for a batch of 7 against 5,000 contacts, growing with
-- the table). The ids are sorted before the rows are locked one by one, so
-- locks are taken in id order and two writers never deadlock.
SELECT c.* FROM unnest(ARRAY(
  SELECT DISTINCT k.id FROM (
    SELECT o.id FROM unnest(@external_ids::text[]) AS k(v)
      CROSS JOIN LATERAL (SELECT o.id FROM contacts o WHERE o.external_id = k.v AND o.deleted_at IS NULL LIMIT 1) o
    UNION ALL
    SELECT o.id FROM unnest(@emails::text[]) AS k(v)
      CROSS JOIN LATERAL (SELECT o.id FROM contacts o WHERE lower(o.email) = k.v AND o.deleted_at IS NULL LIMIT 1) o
    UNION ALL
    SELECT o.id FROM unnest(@anonymous_ids::text[]) AS k(v)
      CROSS JOIN LATERAL (SELECT o.id FROM contacts o WHERE o.anonymous_id = k.v AND o.deleted_at IS NULL LIMIT 1) o
    UNION ALL
    SELECT unnest(@ids::text[])::uuid
  ) k(id)
  ORDER BY k.id
)) WITH ORDINALITY AS ids(id, n)
CROSS JOIN LATERAL (SELECT * FROM contacts WHERE contacts.id = ids.id AND contacts.deleted_at IS NULL LIMIT 1 FOR UPDATE) c
ORDER BY ids.n;

-- name: ContactsUpdateMany :execrows
UPDATE contacts c SET
  external_id = u.external_id, email = u.email, anonymous_id = u.anonymous_id,
  properties = u.properties, first_seen_at = u.first_seen_at, last_seen_at = u.last_seen_at,
  updated_at = u.updated_at, deleted_at = u.deleted_at
FROM (
  SELECT unnest(@ids::text[])::uuid AS id,
         nullif(unnest(@external_ids::text[]), '') AS external_id,
         nullif(unnest(@emails::text[]), '') AS email,
         nullif(unnest(@anonymous_ids::text[]), '') AS anonymous_id,
         unnest(@properties::text[])::jsonb AS properties,
         unnest(@first_seen_ats::timestamptz[]) AS first_seen_at,
         unnest(@last_seen_ats::timestamptz[]) AS last_seen_at,
         unnest(@updated_ats::timestamptz[]) AS updated_at,
         nullif(unnest(@deleted_ats::timestamptz[]), '0001-01-01T00:00:00Z') AS deleted_at -- zero time = live
) u
WHERE c.id = u.id AND c.deleted_at IS NULL;

-- name: ContactsInsertFull :exec
INSERT INTO contacts (id, external_id, email, anonymous_id, properties, first_seen_at, last_seen_at, created_at, updated_at, deleted_at)
SELECT unnest(@ids::text[])::uuid, nullif(unnest(@external_ids::text[]), ''), nullif(unnest(@emails::text[]), ''),
       nullif(unnest(@anonymous_ids::text[]), ''), unnest(@properties::text[])::jsonb,
       unnest(@first_seen_ats::timestamptz[]), unnest(@last_seen_ats::timestamptz[]),
       unnest(@created_ats::timestamptz[]), unnest(@updated_ats::timestamptz[]), nullif(unnest(@deleted_ats::timestamptz[]), '0001-01-01T00:00:00Z');

-- name: ContactAliasesFindByKeys :many
SELECT a.alias_kind, a.alias_value, a.contact_id FROM contact_aliases a
JOIN (SELECT unnest(@kinds::text[]) AS kind, unnest(@alias_values::text[]) AS value) k
  ON a.alias_kind = k.kind AND a.alias_value = k.value;

-- name: ContactAliasesPromoteMany :exec
INSERT INTO contact_aliases (id, contact_id, alias_kind, alias_value, reason, from_contact_id, created_at, updated_at)
SELECT unnest(@ids::uuid[]), unnest(@contact_ids::uuid[]), unnest(@kinds::text[]), unnest(@alias_values::text[]),
       'promote', NULL, unnest(@ats::timestamptz[]), unnest(@ats::timestamptz[])
ON CONFLICT (alias_kind, alias_value) DO NOTHING;

-- name: ContactAliasesMergeMany :exec
INSERT INTO contact_aliases (id, contact_id, alias_kind, alias_value, reason, from_contact_id, created_at, updated_at)
SELECT unnest(@ids::uuid[]), unnest(@contact_ids::uuid[]), unnest(@kinds::text[]), unnest(@alias_values::text[]),
       'merge', unnest(@from_contact_ids::uuid[]), unnest(@ats::timestamptz[]), unnest(@ats::timestamptz[])
ON CONFLICT (alias_kind, alias_value) DO UPDATE
SET contact_id = EXCLUDED.contact_id, reason = 'merge', from_contact_id = EXCLUDED.from_contact_id, updated_at = EXCLUDED.updated_at;
