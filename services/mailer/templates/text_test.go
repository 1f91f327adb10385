package templates_test

import (
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name, html, want string
	}{
		{"empty", "", ""},
		{"plain text", "Hello   world", "Hello world"},
		{"paragraphs", "<p>One\n  two</p>\n\n<p>Three</p>", "One two\n\nThree"},
		{"blocks never stack blank lines", "<div><p>A</p></div>\n<div>\n<p>B</p>\n</div>", "A\n\nB"},
		{"headings", "<h1>Title</h1><p>Body</p>", "Title\n\nBody"},
		{"br", "a<br>b<br/>c<BR />d", "a\nb\nc\nd"},
		{"double br is a blank line", "a<br><br>b", "a\n\nb"},
		{"inline tags", "<p>Hi <strong>Ada</strong>, <em>welcome</em>!</p>", "Hi Ada, welcome!"},
		{"uppercase tags", "<P>A</P><UL><LI>x</LI></UL>", "A\n\n- x"},
		{"list", "<p>Steps:</p><ul>\n<li>One</li>\n<li>Two <b>bold</b></li>\n</ul><p>After</p>", "Steps:\n\n- One\n- Two bold\n\nAfter"},
		{"ordered list", "<ol><li>a</li><li>b</li></ol>", "- a\n- b"},
		{"nested list", "<ul><li>a<ul><li>a1</li><li>a2</li></ul></li><li>b</li></ul>", "- a\n\n  - a1\n  - a2\n\n- b"},
		{"li with paragraph", "<ul><li><p>a</p></li><li><p>b</p></li></ul>", "- a\n\n- b"},
		{"link", `<p>Read <a href="https://x.test/a">the guide</a> now.</p>`, "Read the guide (https://x.test/a) now."},
		{"link entities decoded once", `<a href="https://x.test/?a=1&amp;copy=2&amp;b=&lt;">go</a>`, "go (https://x.test/?a=1&copy=2&b=<)"},
		{"link text is the url", `<a href="https://x.test/">https://x.test/</a>`, "https://x.test/"},
		{"link without text", `<a href="https://x.test/"></a>`, "https://x.test/"},
		{"image link", `<a href="https://x.test/"><img src="logo.png" alt="Acme logo"></a>`, "Acme logo (https://x.test/)"},
		{"image link, relative", `<a href="/home"><img src="logo.png" alt="Acme"></a>`, "Acme"},
		{"image outside a link", `<p><img src="hero.png" alt="Hero">Text</p>`, "Text"},
		{"mailto", `Write to <a href="mailto:help@x.test?subject=Hi">support</a>.`, "Write to support (help@x.test)."},
		{"mailto shown as the address", `<a href="mailto:help@x.test">help@x.test</a>`, "help@x.test"},
		{"tel and anchors keep their text", `<a href="tel:+15551234">Call us</a> or <a href="#faq">read</a>`, "Call us or read"},
		{"single-quoted and unquoted href", `<a href='https://x.test/1'>one</a> <A HREF=https://x.test/2>two</A>`, "one (https://x.test/1) two (https://x.test/2)"},
		{"quoted > in an attribute", `<a title="a > b" href="https://x.test/">x</a>`, "x (https://x.test/)"},
		{"entities", "<p>Fish &amp; chips &lt;3 &quot;yes&quot; &#8212; caf&eacute;</p>", `Fish & chips <3 "yes" — café`},
		{"nbsp", "a&nbsp;b", "a b"},
		{"invisible padding dropped", "Hi&#847;&zwnj;&#8203;&#65279; there", "Hi there"},
		{"comments and conditionals", "<p>a<!-- hidden <p>x</p> --></p><!--[if mso]><p>mso</p><![endif]--><p>b</p>", "a\n\nb"},
		{"head style script dropped", "<html><head><title>T</title><style>p{color:red}</style></head><body><script>var a='<p>';</script><p>Body</p></body></html>", "Body"},
		{"doctype", "<!DOCTYPE html><p>x</p>", "x"},
		{"hr", "<p>a</p><hr><p>b</p>", "a\n\n----\n\nb"},
		{"table cells", "<table><tr><td>Name</td><td>Ada</td></tr><tr><td>Plan</td><td>Pro</td></tr></table><p>x</p>", "Name Ada\nPlan Pro\n\nx"},
		{"button table", `<table role="presentation"><tr><td bgcolor="#000"><a href="https://x.test/go" style="a:b">Get started</a></td></tr></table>`, "Get started (https://x.test/go)"},
		{"stray less-than", "<p>1 < 2 and 3 <> 4</p>", "1 < 2 and 3 <> 4"},
		{"unterminated tag", "<p>ok</p><a href=\"https://x.test", "ok"},
		{"unterminated comment", "<p>ok</p><!-- never closed <p>x</p>", "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := templates.HTMLToText(tt.html); got != tt.want {
				t.Errorf("HTMLToText(%q)\n got: %q\nwant: %q", tt.html, got, tt.want)
			}
		})
	}
}
