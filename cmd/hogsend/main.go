// Command hogsend is the Hogsend engine with its stock definitions. A
// product that defines its own buckets writes the same few lines with its
// definitions in engine.Options (see package engine).
package main

import (
	"os"

	"github.com/seed-eeb360f6/hogsend/cmd/hogsend/engine"
)

func main() {
	os.Exit(engine.Execute(engine.Options{}))
}
