package templates

// The stock templates the binary ships (DESIGN §4): lifecycle examples a
// user can send as they are or replace with their own. Their bodies live in
// stock/<key>.html; everything else is here.

// Stock returns the stock templates, freshly built: welcome, nudge,
// trial-ending, payment-failed, win-back and nps.
//
// They share a small prop vocabulary, so a journey can switch templates
// without renaming props:
//
//	name         the greeting ("Hi there" without it)
//	url          the call-to-action's destination (else productUrl; no button without either)
//	cta          the button's label (each template has its own default)
//	productName  the product (filled from RenderOptions.Brand.Name)
//	senderName   the sign-off (else "The <productName> team")
//
// plus their own, all optional: welcome steps (a list); nudge headline
// (else body, the subject a journey send passes, spec 20 §1.8.2), message,
// featureName, featureDescription, step, steps and title; trial-ending
// daysLeft or trialEndDate, and plan; payment-failed amount, currency,
// cardLast4, plan, retryDate and final (the last reminder); win-back
// daysInactive, plan, highlights (a list) and offer; nps uses url as the
// survey address and appends score=0…10. A missing prop drops its
// sentence, never leaving a gap or a placeholder.
func Stock() []Template {
	return []Template{
		{
			Key:       "welcome",
			Category:  "journey",
			Subject:   `{{if .productName}}Welcome to {{.productName}}{{else}}Welcome aboard{{end}}{{with .name}}, {{.}}{{end}}`,
			Preheader: `Your account is ready. Here's the quickest way to get started.`,
			HTML:      stockHTML("welcome"),
			ExampleProps: map[string]any{
				"name":        "Ada",
				"productName": "Acme",
				"url":         "https://app.acme.example/onboarding?step=1&source=email",
				"steps": []any{
					"Create your first project.",
					"Invite a teammate: everything is better together.",
					"Connect your data so reports fill in on their own.",
				},
			},
		},
		{
			Key:       "nudge",
			Category:  "journey",
			Subject:   `{{if .featureName}}Have you tried {{.featureName}} yet{{else}}Ready for your next step{{end}}{{with .name}}, {{.}}{{end}}?`,
			Preheader: `{{with .message}}{{.}}{{else}}Pick up where you left off. It only takes a few minutes.{{end}}`,
			HTML:      stockHTML("nudge"),
			ExampleProps: map[string]any{
				"name":               "Ada",
				"productName":        "Acme",
				"featureName":        "Reports",
				"featureDescription": "Reports turn your raw events into a weekly summary you can share with your team in one click.",
				"step":               2,
				"steps":              4,
				"title":              "Build your first report",
				"url":                "https://app.acme.example/reports/new",
			},
		},
		{
			Key:       "trial-ending",
			Category:  "transactional",
			Subject:   `Your {{with .productName}}{{.}} {{end}}trial ends {{if .daysLeft}}in {{.daysLeft}} {{plural .daysLeft "day" "days"}}{{else if .trialEndDate}}on {{.trialEndDate}}{{else}}soon{{end}}`,
			Preheader: `Choose a plan to keep everything you've set up. It takes a minute.`,
			HTML:      stockHTML("trial-ending"),
			ExampleProps: map[string]any{
				"name":        "Ada",
				"productName": "Acme",
				"daysLeft":    3,
				"plan":        "Team",
				"url":         "https://app.acme.example/billing/plans",
			},
		},
		{
			Key:       "payment-failed",
			Category:  "transactional",
			Subject:   `{{if .final}}Final notice{{else}}Action needed{{end}}: your payment{{with .amount}} of {{.}}{{with $.currency}} {{.}}{{end}}{{end}} didn't go through`,
			Preheader: `Update your payment method to keep your subscription active.`,
			HTML:      stockHTML("payment-failed"),
			ExampleProps: map[string]any{
				"name":        "Ada",
				"productName": "Acme",
				"amount":      "$49.00",
				"cardLast4":   "4242",
				"plan":        "Team",
				"retryDate":   "March 17",
				"attempt":     1,
				"final":       false,
				"url":         "https://app.acme.example/billing",
			},
		},
		{
			Key:       "win-back",
			Category:  "marketing",
			Subject:   `It's been a while{{with .name}}, {{.}}{{end}}: here's what's new`,
			Preheader: `A lot has changed since your last visit.{{with .offer}} Plus: {{.}}.{{end}}`,
			HTML:      stockHTML("win-back"),
			ExampleProps: map[string]any{
				"name":         "Ada",
				"productName":  "Acme",
				"daysInactive": 45,
				"highlights": []any{
					"Dashboards load three times faster.",
					"Scheduled exports to CSV and Google Sheets.",
					"A new mobile app for iOS and Android.",
				},
				"offer": "20% off your next three months",
				"url":   "https://app.acme.example/whats-new",
			},
		},
		{
			Key:       "nps",
			Category:  "journey",
			Subject:   `Quick question: how likely are you to recommend {{or .productName "us"}}?`,
			Preheader: `One click, one second. It helps more than you'd think.`,
			HTML:      stockHTML("nps"),
			// A row of eleven score links reads badly when derived, so the
			// text part is written out.
			Text: `Hi {{or .name "there"}},

On a scale from 0 to 10, how likely are you to recommend {{or .productName "us"}} to a friend or colleague?
{{with .url}}
Open the link for your score (0 = not at all likely, 10 = extremely likely):
{{range $score := 11}}
{{$score}}: {{withQuery $.url "score" $score}}{{end}}

Have a moment more? Tell us the reason for your score: {{.}}
It's the most useful thing you can send us.
{{else}}
Just reply to this email with a number. Every answer is read by the team.

If you have a moment more, tell us the reason for your score in a reply. It's the most useful thing you can send us.
{{end}}
{{if .senderName}}{{.senderName}}{{else if .productName}}The {{.productName}} team{{else}}The team{{end}}`,
			ExampleProps: map[string]any{
				"name":        "Ada",
				"productName": "Acme",
				"url":         "https://app.acme.example/nps?u=123",
			},
		},
	}
}

// StockRegistry returns a registry holding the stock templates.
func StockRegistry() (*Registry, error) { return NewRegistry(Stock()...) }

// stockHTML returns the body of a stock template. The files are embedded
// and covered by the golden tests, so a missing one is a build mistake.
func stockHTML(key string) string {
	b, err := files.ReadFile("stock/" + key + ".html")
	if err != nil {
		panic("templates: stock body missing: " + err.Error())
	}
	return string(b)
}
