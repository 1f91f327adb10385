package preferences

import (
	"context"
	"fmt"

	"github.com/seed-eeb360f6/hogsend/sqlc/dbsqlc"
)

// CheckBatch is Check for many sends in one read (the mailer's batch
// consumer, mailer.BatchSuppression): reasons[i] is Check's reason for the
// send to emails[i] in categories[i], "" when it is not blocked.
func (s *Store) CheckBatch(ctx context.Context, emails, categories []string) ([]string, error) {
	if len(emails) != len(categories) {
		return nil, fmt.Errorf("check batch: %d emails, %d categories", len(emails), len(categories))
	}
	norm := make([]string, len(emails))
	var uniq []string
	seen := make(map[string]bool, len(emails))
	for i, e := range emails {
		norm[i] = NormalizeEmail(e)
		if !seen[norm[i]] {
			seen[norm[i]] = true
			uniq = append(uniq, norm[i])
		}
	}
	reasons := make([]string, len(emails))
	if len(uniq) == 0 {
		return reasons, nil
	}
	found, err := s.q(s.pool).PrefListByEmails(ctx, uniq)
	if err != nil {
		return nil, fmt.Errorf("read preferences: %w", err)
	}
	rows := make(map[string][]dbsqlc.EmailPreference, len(uniq))
	for _, r := range found {
		rows[r.MatchEmail] = append(rows[r.MatchEmail], r.EmailPreference)
	}
	for i := range emails {
		reasons[i] = s.blockReason(rows[norm[i]], categories[i])
	}
	return reasons, nil
}

// blockReason is Check's verdict over the rows of an address: the reason
// the send in category is blocked, "" when it is not.
func (s *Store) blockReason(rows []dbsqlc.EmailPreference, category string) string {
	for _, r := range rows {
		if r.Suppressed {
			return ReasonSuppressed
		}
	}
	for _, r := range rows {
		if r.UnsubscribedAll {
			return ReasonUnsubscribed
		}
	}
	if category == "" {
		return ""
	}
	if len(rows) == 0 {
		if !s.lists.Subscribed(nil, category) {
			return ReasonCategoryUnsubscribed
		}
		return ""
	}
	for _, r := range rows {
		if !s.lists.Subscribed(boolCategories(rawCategories(r.Categories)), category) {
			return ReasonCategoryUnsubscribed
		}
	}
	return ""
}
