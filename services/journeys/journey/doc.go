// Package journey is the public definition package for journeys (spec 10
// §5): the package a user imports to write a journey as a durable Go
// function, and the registry that selects the journeys of one process
// (ENABLED_JOURNEYS).
//
// It holds the definition side only: Meta and its validation, the Journey
// value with its trigger and exit matching, the Registry, and the pure entry
// guards of §5.2. It does no I/O and has no runtime; the durable runner that
// replays a journey's step log lives elsewhere and reaches a run through
// the Runtime interface behind Ctx.
//
// Following DESIGN §10 it imports nothing of the services but the shared
// leaves condition (where lists) and errcode (validation errors), plus the
// pure scheduler package services/journeys/schedule to validate send
// windows with the same parser ctx.When will use.
package journey
