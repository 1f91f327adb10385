package buckets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// Config is a bucket's bucket_configs row: the admin's enabled override
// and the criteria hash the last backfill computed memberships for.
type Config struct {
	BucketID string
	// Enabled overrides the definition's static Enabled (spec §4.2.4).
	Enabled bool
	// CriteriaHash is nil until a backfill completed (spec §4.9).
	CriteriaHash *string
	UpdatedAt    time.Time
}

// EffectiveEnabled is the bucket's enabled value as the admin shows it:
// the override in cfgs when there is one, else the static switch.
func EffectiveEnabled(b *Bucket, cfgs map[string]Config) bool {
	if c, ok := cfgs[b.ID()]; ok {
		return c.Enabled
	}
	return b.Enabled()
}

// SetEnabled upserts the enabled override of bucketID. Whether the bucket
// is registered is the caller's to check. The returned CriteriaHash is
// read right after the write (the statement that writes does not return
// it), so a concurrent backfill may already have replaced it.
func SetEnabled(ctx context.Context, db dbsqlc.DBTX, bucketID string, enabled bool) (Config, error) {
	q := dbsqlc.New(db)
	row, err := q.BucketConfigSetEnabled(ctx, dbsqlc.BucketConfigSetEnabledParams{
		ID: uuid.Must(uuid.NewV7()), BucketID: bucketID, Enabled: enabled,
	})
	if err != nil {
		return Config{}, fmt.Errorf("set bucket %s enabled: %w", bucketID, err)
	}
	cfg := Config{BucketID: row.BucketID, Enabled: row.Enabled, UpdatedAt: row.UpdatedAt}
	cur, err := q.BucketConfigGet(ctx, bucketID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Rows are never deleted; nothing to add.
	case err != nil:
		return Config{}, fmt.Errorf("read bucket %s config: %w", bucketID, err)
	default:
		cfg.CriteriaHash = cur.CriteriaHash
	}
	return cfg, nil
}

// Configs returns every bucket_configs row by bucket id, registered or
// not.
func Configs(ctx context.Context, db dbsqlc.DBTX) (map[string]Config, error) {
	rows, err := dbsqlc.New(db).BucketConfigList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list bucket configs: %w", err)
	}
	out := make(map[string]Config, len(rows))
	for _, r := range rows {
		out[r.BucketID] = Config{BucketID: r.BucketID, Enabled: r.Enabled, CriteriaHash: r.CriteriaHash, UpdatedAt: r.UpdatedAt}
	}
	return out, nil
}
