package templates_test

import (
	"fmt"
	"strconv"

	"github.com/seed-eeb360f6/hogsend/services/mailer/templates"
)

func Example() {
	reg, err := templates.NewRegistry(templates.Template{
		Key:      "receipt",
		Category: "transactional",
		Subject:  `Your receipt{{with .orderId}} for order {{.}}{{end}}`,
		HTML: `<p>Hi {{or .name "there"}}, thanks for your order.</p>
{{with .orderUrl}}{{template "button" (button "View your order" .)}}{{end}}`,
		ExampleProps: map[string]any{"name": "Ada", "orderId": "A-1001", "orderUrl": "https://shop.example/orders/A-1001"},
	})
	if err != nil {
		panic(err)
	}
	out, err := reg.Render("receipt", map[string]any{"orderId": "A-1002", "orderUrl": "https://shop.example/orders/A-1002?x=1&y=2"},
		templates.RenderOptions{UnsubscribeURL: "https://api.example/v1/email/unsubscribe?token=t"})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Subject)
	fmt.Println(out.Text)

	_, links := templates.Track(out.HTML, func(i int, _ string) string {
		return "https://api.example/v1/t/c/" + strconv.Itoa(i)
	}, "https://api.example/v1/t/o/1")
	fmt.Printf("%+v\n", links)
	// Output:
	// Your receipt for order A-1002
	// Hi there, thanks for your order.
	//
	// View your order (https://shop.example/orders/A-1002?x=1&y=2)
	//
	// --
	// Unsubscribe: https://api.example/v1/email/unsubscribe?token=t
	// [{Index:0 URL:https://shop.example/orders/A-1002?x=1&y=2}]
}
