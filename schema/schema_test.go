package schema_test

import (
	"context"
	"testing"

	"github.com/seed-eeb360f6/hogsend/schema"
	"github.com/seed-eeb360f6/hogsend/schema/schematest"
)

func TestMigrationsApplyAndReportStatus(t *testing.T) {
	pool := schematest.NewPool(t)
	applied, latest, err := schema.Status(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if applied != latest || latest == 0 {
		t.Fatalf("applied %d, latest %d: want equal and non-zero", applied, latest)
	}
	// Migrating an up-to-date database is a no-op.
	if err := schema.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
}
