package templates_test

import (
	"strconv"
	"testing"

	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
)

// BenchmarkRenderAndTrack is the mailer's per-send template work: render
// the welcome template with its example props, then rewrite its links and
// add the open pixel.
func BenchmarkRenderAndTrack(b *testing.B) {
	r := stockRegistry(b)
	def, _ := r.Get("welcome")
	linkURL := func(i int, _ string) string { return "https://api.test/v1/t/c/" + strconv.Itoa(i) }
	b.ReportAllocs()
	var size int
	for b.Loop() {
		out, err := r.Render("welcome", def.ExampleProps, goldenOptions)
		if err != nil {
			b.Fatal(err)
		}
		html, links := templates.Track(out.HTML, linkURL, "https://api.test/v1/t/o/0198c3d2-7a40-7e6b-9a51-3f1c2b4d5e6f")
		if len(links) == 0 {
			b.Fatal("no links")
		}
		size = len(html) + len(out.Text)
	}
	b.SetBytes(int64(size))
}

// BenchmarkTrack is the tracking rewrite alone.
func BenchmarkTrack(b *testing.B) {
	r := stockRegistry(b)
	def, _ := r.Get("nps")
	out, err := r.Render("nps", def.ExampleProps, goldenOptions)
	if err != nil {
		b.Fatal(err)
	}
	linkURL := func(i int, _ string) string { return "https://api.test/v1/t/c/" + strconv.Itoa(i) }
	b.ReportAllocs()
	b.SetBytes(int64(len(out.HTML)))
	for b.Loop() {
		templates.Track(out.HTML, linkURL, "https://api.test/v1/t/o/0198c3d2-7a40-7e6b-9a51-3f1c2b4d5e6f")
	}
}
