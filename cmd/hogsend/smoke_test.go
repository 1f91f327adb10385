package main

import (
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	start := time.Now()
	_, c := startApp(t)
	t.Logf("boot %s", time.Since(start))
	waitCaughtUp(t, c)
	t.Logf("ready %s", time.Since(start))
}
