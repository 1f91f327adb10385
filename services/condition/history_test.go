package condition_test

import (
	"context"
	"sync"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/condition"
)

// memHistory is an in-memory condition.History for tests. It also counts the
// lookups so that tests can assert short-circuiting.
type memHistory struct {
	mu      sync.Mutex
	events  []memEvent
	sends   []memSend
	lookups int
	err     error // returned by every lookup when set
}

type memEvent struct {
	key, name string
	at        time.Time
}

type memSend struct {
	email, template string
	createdAt       time.Time
	opened, clicked bool
}

var _ condition.History = (*memHistory)(nil)

func (h *memHistory) addEvent(key, name string, at time.Time) *memHistory {
	h.events = append(h.events, memEvent{key: key, name: name, at: at})
	return h
}

func (h *memHistory) addSend(email, template string, createdAt time.Time, opened, clicked bool) *memHistory {
	h.sends = append(h.sends, memSend{email: email, template: template, createdAt: createdAt, opened: opened, clicked: clicked})
	return h
}

func (h *memHistory) CountEvents(_ context.Context, key, eventName string, since *time.Time) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups++
	if h.err != nil {
		return 0, h.err
	}
	var n int64
	for _, e := range h.events {
		if e.key == key && e.name == eventName && (since == nil || !e.at.Before(*since)) {
			n++
		}
	}
	return n, nil
}

func (h *memHistory) LatestEmail(_ context.Context, email, templateKey string) (condition.EmailState, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups++
	if h.err != nil {
		return condition.EmailState{}, h.err
	}
	var latest *memSend
	for i, s := range h.sends {
		if s.email == email && s.template == templateKey && (latest == nil || s.createdAt.After(latest.createdAt)) {
			latest = &h.sends[i]
		}
	}
	if latest == nil {
		return condition.EmailState{}, nil
	}
	return condition.EmailState{Found: true, Opened: latest.opened, Clicked: latest.clicked}, nil
}
