// Package logging builds the root zerolog logger of a service: JSON lines,
// or human console output when stderr is a terminal.
package logging

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Config is the logging section of every service's configuration.
type Config struct {
	// Level: trace, debug, info, warn, error.
	Level string `yaml:"level"`
	// Format: json, console, or auto (console on a terminal, else json).
	Format string `yaml:"format"`
}

// Validate reports a bad level or format, with paths relative to the
// section (level, format): services merge them under "log".
func (c Config) Validate() validation.Errors {
	var errs validation.Errors
	switch c.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs.Add("level", "%q is not one of trace, debug, info, warn, error", c.Level)
	}
	switch c.Format {
	case "json", "console", "auto":
	default:
		errs.Add("format", "%q is not one of json, console, auto", c.Format)
	}
	return errs
}

var timeFormat sync.Once

// Default is info level, auto format.
func Default() Config { return Config{Level: "info", Format: "auto"} }

// New returns the root logger writing to w (os.Stderr when nil), with a
// service field.
func New(c Config, w io.Writer, service string) zerolog.Logger {
	if w == nil {
		w = os.Stderr
	}
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		lvl = zerolog.InfoLevel
	}
	console := c.Format == "console"
	if c.Format == "auto" || c.Format == "" {
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				console = true
			}
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	timeFormat.Do(func() { zerolog.TimeFieldFormat = time.RFC3339Nano }) // a global: set once
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", service).Logger()
}
