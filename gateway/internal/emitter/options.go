package emitter

import (
	"time"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Options size the buffer and the batches. They sit under `usage:` in the
// gateway config.
type Options struct {
	// BufferSize bounds the events a node holds, queued or in unacknowledged
	// batches (default 65536). Past it, new events are dropped and counted.
	BufferSize int `yaml:"buffer_size"`
	// BatchSize is the most events in one NATS message (default 512).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits for its batch to fill
	// (default 100ms).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxInFlight bounds the batches published and not yet acknowledged
	// (default 16).
	MaxInFlight int `yaml:"max_in_flight"`
	// AckTimeout is how long a batch waits for JetStream's acknowledgement
	// before it is sent again with the same message id (default 2s).
	AckTimeout time.Duration `yaml:"ack_timeout"`

	// Names are the subjects and stream of the environment (its
	// nats.namespace), set by the node, not by the usage: section (zero:
	// the default namespace).
	Names bus.Names `yaml:"-"`
}

// Defaults.
const (
	DefaultBufferSize    = 65536
	DefaultBatchSize     = 512
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultMaxInFlight   = 16
	DefaultAckTimeout    = 2 * time.Second
)

// WithDefaults returns o with every unset field at its default.
func (o Options) WithDefaults() Options {
	if o.BufferSize == 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	return o
}

// Validate returns every problem with the options (unset fields are fine).
func (o Options) Validate() validation.Errors {
	var errs validation.Errors
	if o.BufferSize < 0 {
		errs.Add("buffer_size", "must not be negative")
	}
	if o.BatchSize < 0 || o.BatchSize > 100000 {
		errs.Add("batch_size", "must be between 1 and 100000")
	}
	if o.FlushInterval < 0 {
		errs.Add("flush_interval", "must not be negative")
	}
	if o.MaxInFlight < 0 || o.MaxInFlight > 4096 {
		errs.Add("max_in_flight", "must be between 1 and 4096")
	}
	if o.AckTimeout < 0 {
		errs.Add("ack_timeout", "must not be negative")
	}
	return errs
}
