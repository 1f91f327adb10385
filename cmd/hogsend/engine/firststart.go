package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/seed-eeb360f6/hogsend/services/apikey"
)

// adminKeyFile keeps the key minted on the first dev start, so the user can
// find it again (the database only holds its hash).
const adminKeyFile = "admin-key"

// firstStart mints a full-admin key when the database has none and no
// ADMIN_API_KEY is configured, and prints how to reach the API.
func (m *Main) firstStart(ctx context.Context, keys *apikey.Store) error {
	path := filepath.Join(m.Config.DataDir, adminKeyFile)
	var key string
	if m.Config.AdminAPIKey != "" {
		key = "(ADMIN_API_KEY)"
	} else {
		_, total, err := keys.List(ctx, apikey.ListParams{IncludeRevoked: true, Limit: 1})
		if err != nil {
			return err
		}
		if total == 0 {
			created, err := keys.Create(ctx, apikey.CreateParams{Name: "dev admin", Scopes: []string{"full-admin"}})
			if err != nil {
				return fmt.Errorf("create first admin key: %w", err)
			}
			key = created.Plaintext
			if err := os.MkdirAll(m.Config.DataDir, 0o755); err == nil {
				_ = os.WriteFile(path, []byte(key+"\n"), 0o600)
			}
		} else if b, err := os.ReadFile(path); err == nil {
			key = strings.TrimSpace(string(b))
		} else {
			key = "(created earlier; `hogsend apikey create --scope full-admin` makes another)"
		}
	}
	m.banner = fmt.Sprintf("Hogsend %s\n  API       %s\n  Admin key %s\n", Version, m.Config.PublicURL, key)
	return nil
}
