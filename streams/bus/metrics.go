package bus

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome label values of hogsend_consumer_handled_total.
const (
	outcomeAck        = "ack"
	outcomeRetry      = "retry"
	outcomeDeadLetter = "dead_letter"
)

// Metrics are the bus's Prometheus collectors. Build one per registry with
// NewMetrics and share it between runners; a nil *Metrics records nothing.
type Metrics struct {
	handled     *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	pending     *prometheus.GaugeVec
	redelivered *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	published   *prometheus.CounterVec
}

// NewMetrics registers the bus collectors on reg. Calling it twice with the
// same registry returns collectors bound to the ones already registered, so
// two runners built independently share them; different registries (tests,
// several embedded engines) get independent collectors. A nil reg gives nil
// (no metrics).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogsend_consumer_handled_total",
			Help: "Messages handled by a consumer, by outcome (ack, retry, dead_letter).",
		}, []string{"consumer", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hogsend_consumer_handler_seconds",
			Help:    "Duration of one handler call (a batch on ordered consumers).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"consumer"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hogsend_consumer_pending",
			Help: "Messages not yet delivered to a consumer, as last seen.",
		}, []string{"consumer"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogsend_consumer_redeliveries_total",
			Help: "Messages received again after an earlier delivery.",
		}, []string{"consumer"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogsend_dead_letters_total",
			Help: "Messages a consumer gave up on and recorded as dead letters.",
		}, []string{"consumer"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogsend_published_total",
			Help: "Messages published to JetStream, by stream and outcome (stored, duplicate, error).",
		}, []string{"stream", "outcome"}),
	}
	var err error
	m.handled = register(reg, m.handled, &err)
	m.seconds = register(reg, m.seconds, &err)
	m.pending = register(reg, m.pending, &err)
	m.redelivered = register(reg, m.redelivered, &err)
	m.deadLetters = register(reg, m.deadLetters, &err)
	m.published = register(reg, m.published, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c or, when an identical collector is already
// registered, returns that one.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		*errp = errors.Join(*errp, err)
	}
	return c
}

func (m *Metrics) handledAdd(consumer, outcome string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.handled.WithLabelValues(consumer, outcome).Add(float64(n))
}

func (m *Metrics) observe(consumer string, d time.Duration) {
	if m == nil {
		return
	}
	m.seconds.WithLabelValues(consumer).Observe(d.Seconds())
}

func (m *Metrics) setPending(consumer string, n uint64) {
	if m == nil {
		return
	}
	m.pending.WithLabelValues(consumer).Set(float64(n))
}

func (m *Metrics) redelivery(consumer string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.redelivered.WithLabelValues(consumer).Add(float64(n))
}

func (m *Metrics) deadLetter(consumer string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(consumer).Inc()
}

func (m *Metrics) publishedAdd(stream, outcome string) {
	if m == nil {
		return
	}
	if stream == "" {
		stream = "unknown"
	}
	m.published.WithLabelValues(stream, outcome).Inc()
}
