package templates_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
)

const pixel = `<img src="https://api.test/v1/t/o/send-1" width="1" height="1" alt="" style="display:none" />`

// numbered maps link i to https://api.test/v1/t/c/<i> and records its calls.
func numbered(calls *[]string) func(int, string) string {
	return func(i int, u string) string {
		*calls = append(*calls, u)
		return "https://api.test/v1/t/c/" + strconv.Itoa(i)
	}
}

func TestTrack(t *testing.T) {
	tests := []struct {
		name, html, want string
		links            []string
	}{
		{"double quotes",
			`<a href="https://x.test/a">a</a>`,
			`<a href="https://api.test/v1/t/c/0">a</a>`, []string{"https://x.test/a"}},
		{"single quotes",
			`<a href='https://x.test/a'>a</a>`,
			`<a href="https://api.test/v1/t/c/0">a</a>`, []string{"https://x.test/a"}},
		{"unquoted",
			`<a href=https://x.test/a>a</a>`,
			`<a href="https://api.test/v1/t/c/0">a</a>`, []string{"https://x.test/a"}},
		{"uppercase tag, attribute and scheme",
			`<A HREF="HTTPS://X.test/A">a</A>`,
			`<A href="https://api.test/v1/t/c/0">a</A>`, []string{"HTTPS://X.test/A"}},
		{"spaces around = and inside the value",
			"<a\nclass=\"b\"  href = \" https://x.test/a \" >a</a>",
			"<a\nclass=\"b\"  href=\"https://api.test/v1/t/c/0\" >a</a>", []string{"https://x.test/a"}},
		{"entities are decoded in the link and re-encoded in the href",
			`<a href="https://x.test/a?x=1&amp;y=2&#38;z=3">a</a>`,
			`<a href="https://api.test/v1/t/c/0">a</a>`, []string{"https://x.test/a?x=1&y=2&z=3"}},
		{"other attributes kept byte for byte",
			`<a style="color:red" href="http://x.test/" target="_blank" data-x='y>z'>a</a>`,
			`<a style="color:red" href="https://api.test/v1/t/c/0" target="_blank" data-x='y>z'>a</a>`, []string{"http://x.test/"}},
		{"a quoted > before the href",
			`<a title="1 > 0" href="https://x.test/">a</a>`,
			`<a title="1 > 0" href="https://api.test/v1/t/c/0">a</a>`, []string{"https://x.test/"}},
		{"repeated URL is one link",
			`<a href="https://x.test/a?x=1&amp;y=2">1</a><a href="https://x.test/b">2</a><a href='https://x.test/a?x=1&y=2'>3</a>`,
			`<a href="https://api.test/v1/t/c/0">1</a><a href="https://api.test/v1/t/c/1">2</a><a href="https://api.test/v1/t/c/0">3</a>`,
			[]string{"https://x.test/a?x=1&y=2", "https://x.test/b"}},
		{"first href wins",
			`<a href="https://x.test/1" href="https://x.test/2">a</a>`,
			`<a href="https://api.test/v1/t/c/0" href="https://x.test/2">a</a>`, []string{"https://x.test/1"}},
		{"untouched schemes and relative links",
			`<a href="mailto:a@x.test">m</a><a href="tel:+1555">t</a><a href="#top">h</a><a href="/rel">r</a><a href="javascript:x()">j</a><a href="ftp://x.test/">f</a><a href="//x.test/">p</a><a>none</a><a href="">e</a>`,
			`<a href="mailto:a@x.test">m</a><a href="tel:+1555">t</a><a href="#top">h</a><a href="/rel">r</a><a href="javascript:x()">j</a><a href="ftp://x.test/">f</a><a href="//x.test/">p</a><a>none</a><a href="">e</a>`,
			nil},
		{"notrack attribute",
			`<a data-hogsend-notrack href="https://x.test/keep">k</a><a href="https://x.test/keep" DATA-HOGSEND-NOTRACK="">K</a>`,
			`<a data-hogsend-notrack href="https://x.test/keep">k</a><a href="https://x.test/keep" DATA-HOGSEND-NOTRACK="">K</a>`,
			nil},
		{"unsubscribe and preference pages",
			`<a href="https://api.test/v1/email/unsubscribe?token=t">u</a><a href="https://api.test/v1/email/preferences?token=t">p</a>`,
			`<a href="https://api.test/v1/email/unsubscribe?token=t">u</a><a href="https://api.test/v1/email/preferences?token=t">p</a>`,
			nil},
		{"only <a> hrefs",
			`<abbr href="https://x.test/1">x</abbr><link href="https://x.test/2"><area href="https://x.test/3"><a data-href="https://x.test/4">d</a><v:roundrect href="https://x.test/5">`,
			`<abbr href="https://x.test/1">x</abbr><link href="https://x.test/2"><area href="https://x.test/3"><a data-href="https://x.test/4">d</a><v:roundrect href="https://x.test/5">`,
			nil},
		{"tag at the very end",
			`<p>x</p><a`, `<p>x</p><a`, nil},
		{"unterminated tag",
			`<a href="https://x.test/1">1</a><a href="https://x.test/2`,
			`<a href="https://api.test/v1/t/c/0">1</a><a href="https://x.test/2`, []string{"https://x.test/1"}},
		{"inside a conditional comment",
			`<!--[if mso]><a href="https://x.test/m">m</a><![endif]-->`,
			`<!--[if mso]><a href="https://api.test/v1/t/c/0">m</a><![endif]-->`, []string{"https://x.test/m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			got, links := templates.Track(tt.html, numbered(&calls), "")
			if got != tt.want {
				t.Errorf("html\n got: %s\nwant: %s", got, tt.want)
			}
			var urls []string
			for i, l := range links {
				if l.Index != i {
					t.Errorf("links[%d].Index = %d", i, l.Index)
				}
				urls = append(urls, l.URL)
			}
			if !slices.Equal(urls, tt.links) {
				t.Errorf("links = %q, want %q", urls, tt.links)
			}
			if !slices.Equal(calls, tt.links) {
				t.Errorf("linkURL calls = %q, want one per distinct link", calls)
			}
		})
	}
}

func TestTrackPixel(t *testing.T) {
	link := func(i int, _ string) string { return "https://api.test/v1/t/c/" + strconv.Itoa(i) }
	tests := []struct {
		name, html, want string
	}{
		{"before </body>", `<html><body><p>x</p></body></html>`, `<html><body><p>x</p>` + pixel + `</body></html>`},
		{"any case", `<BODY>x</BODY>`, `<BODY>x` + pixel + `</BODY>`},
		{"the last </body>", `<body><p>&lt;/body&gt;</body>x</body>`, `<body><p>&lt;/body&gt;</body>x` + pixel + `</body>`},
		{"appended without </body>", `<p>x</p>`, `<p>x</p>` + pixel},
		{"with rewritten links", `<body><a href="https://x.test/">a</a></body>`, `<body><a href="https://api.test/v1/t/c/0">a</a>` + pixel + `</body>`},
		{"</body> inside a rewritten attribute", `<a href="https://x.test/</body>">a</a>`, `<a href="https://api.test/v1/t/c/0">a</a>` + pixel},
		{"links after </body>", `<body>x</body><a href="https://x.test/">a</a>`, `<body>x` + pixel + `</body><a href="https://api.test/v1/t/c/0">a</a>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := templates.Track(tt.html, link, "https://api.test/v1/t/o/send-1")
			if got != tt.want {
				t.Errorf("\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}

	got, _ := templates.Track(`<body></body>`, nil, `https://api.test/o?a=1&b="2"`)
	if want := `<body><img src="https://api.test/o?a=1&amp;b=&#34;2&#34;" width="1" height="1" alt="" style="display:none" /></body>`; got != want {
		t.Errorf("pixel URL not escaped:\n got: %s\nwant: %s", got, want)
	}
}

func TestTrackCallbacks(t *testing.T) {
	src := `<a href="https://x.test/a">a</a><a href="https://x.test/b">b</a><a href="https://x.test/a">a</a>`

	t.Run("nil linkURL lists without rewriting", func(t *testing.T) {
		got, links := templates.Track(src, nil, "")
		if got != src {
			t.Errorf("html changed: %s", got)
		}
		if len(links) != 2 || links[0].URL != "https://x.test/a" || links[1].URL != "https://x.test/b" {
			t.Errorf("links = %+v", links)
		}
	})
	t.Run("empty replacement leaves the link", func(t *testing.T) {
		got, links := templates.Track(src, func(i int, u string) string {
			if strings.HasSuffix(u, "/a") {
				return ""
			}
			return "https://t.test/" + strconv.Itoa(i)
		}, "")
		want := `<a href="https://x.test/a">a</a><a href="https://t.test/0">b</a><a href="https://x.test/a">a</a>`
		if got != want {
			t.Errorf("\n got: %s\nwant: %s", got, want)
		}
		if len(links) != 1 || links[0] != (templates.Link{Index: 0, URL: "https://x.test/b"}) {
			t.Errorf("links = %+v", links)
		}
	})
	t.Run("replacement is entity-encoded", func(t *testing.T) {
		got, _ := templates.Track(`<a href="https://x.test/">a</a>`, func(int, string) string { return `https://t.test/c?id=1&sig="x"` }, "")
		if want := `<a href="https://t.test/c?id=1&amp;sig=&#34;x&#34;">a</a>`; got != want {
			t.Errorf("\n got: %s\nwant: %s", got, want)
		}
	})
	t.Run("nothing to do returns the input", func(t *testing.T) {
		in := `<p>no links</p>`
		if got, links := templates.Track(in, nil, ""); got != in || links != nil {
			t.Errorf("got %q, %v", got, links)
		}
	})
}

// TestTrackRenderedStock runs Track over a rendered stock email: the body's
// links are tracked, the footer's are not, and nothing else changes.
func TestTrackRenderedStock(t *testing.T) {
	r := stockRegistry(t)
	for _, def := range r.All() {
		out, err := r.Render(def.Key, def.ExampleProps, goldenOptions)
		if err != nil {
			t.Fatal(err)
		}
		tracked, links := templates.Track(out.HTML, func(i int, _ string) string {
			return "https://api.test/v1/t/c/" + strconv.Itoa(i)
		}, "https://api.test/v1/t/o/send-1")
		if len(links) == 0 {
			t.Errorf("%s: no tracked links", def.Key)
		}
		for _, l := range links {
			if strings.Contains(l.URL, "/v1/email/") || strings.Contains(l.URL, "&amp;") {
				t.Errorf("%s: tracked %s", def.Key, l.URL)
			}
		}
		for _, keep := range []string{goldenOptions.UnsubscribeURL, goldenOptions.PreferencesURL} {
			if !strings.Contains(tracked, `data-hogsend-notrack href="`+keep+`"`) {
				t.Errorf("%s: footer link %s was rewritten", def.Key, keep)
			}
		}
		if !strings.HasSuffix(tracked, pixel+"</body>\n</html>\n") {
			t.Errorf("%s: pixel not right before </body>", def.Key)
		}
		if strings.Count(tracked, "https://api.test/v1/t/c/") < len(links) {
			t.Errorf("%s: fewer rewritten hrefs than links", def.Key)
		}
	}
}
