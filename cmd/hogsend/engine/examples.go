package engine

import (
	"github.com/seed-eeb360f6/hogsend/projections/buckets"
	"github.com/seed-eeb360f6/hogsend/services/condition"
	"github.com/seed-eeb360f6/hogsend/services/lists/list"
)

// exampleBuckets are the segments the stock binary ships; the README's
// quickstart events make a contact enter them. A program embedding the
// engine passes its own definitions in Main.Buckets instead.
func exampleBuckets() []*buckets.Bucket {
	criteria := func(n condition.Node) *condition.Node { return &n }
	return []*buckets.Bucket{
		buckets.MustDefine(buckets.Meta{
			ID: "pro-plan", Name: "On the pro plan",
			Description: "Contacts whose plan property is pro.",
			Criteria:    criteria(condition.Prop("plan").Eq("pro")),
		}),
		buckets.MustDefine(buckets.Meta{
			ID: "power-users", Name: "Power users",
			Description: "Contacts who used a feature at least five times.",
			Criteria:    criteria(condition.Event("feature_used").AtLeast(5)),
		}),
		buckets.MustDefine(buckets.Meta{
			ID: "active-this-week", Name: "Active this week",
			Description: "Contacts who opened the app in the last seven days.",
			TimeBased:   true,
			Criteria:    criteria(condition.Event("app_open").Within(condition.Days(7)).Exists()),
		}),
		// went-dormant is time-based by its windowed leaf: the reconcile
		// cron's absence pass joins contacts whose last app_open slipped
		// out of the window, and the dormant-win-back journey reacts to
		// bucket:entered:went-dormant. The positive leaf (they opened the
		// app at some point) keeps never-active contacts out. TimeBased is
		// left unset on purpose: it would arm expires_at 14 days after the
		// join, which means nothing for an absence window.
		buckets.MustDefine(buckets.Meta{
			ID: "went-dormant", Name: "Went dormant",
			Description: "Contacts who opened the app before but not in the last 14 days.",
			Criteria: criteria(condition.All(
				condition.Event("app_open").Exists(),
				condition.Event("app_open").Within(condition.Days(14)).NotExists(),
			)),
		}),
	}
}

// exampleLists are the subscription lists the stock binary ships: product
// news everyone gets unless they opt out, and a newsletter only for those
// who opt in.
func exampleLists() []list.List {
	return []list.List{
		list.MustDefine(list.List{ID: "product-updates", Name: "Product updates", Description: "New features and improvements.", DefaultOptIn: true}),
		list.MustDefine(list.List{ID: "newsletter", Name: "Newsletter", Description: "A monthly letter with tips and stories.", DefaultOptIn: false}),
	}
}
