package lifecycle

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// ShutdownGrace is how long past the shutdown timeout Run still waits for
// Shutdown to return (components end their work when the timeout's
// context ends; this is the time to return from it) before it exits
// anyway.
const ShutdownGrace = time.Second

// RunOptions configure Run.
type RunOptions struct {
	// Log receives the lifecycle's lines (started, shutting down, stopped
	// or why not).
	Log zerolog.Logger
	// ShutdownTimeout bounds the drain: Shutdown's context ends when it
	// has passed since the first signal, and the process exits
	// ExitFailure if the drain has not finished by then.
	ShutdownTimeout time.Duration
	// Signals, when set, replaces SIGINT and SIGTERM from the operating
	// system (tests).
	Signals <-chan os.Signal
}

// Failer is a service that can fail while running (Group is one): Run
// shuts it down and exits ExitFailure when Failed delivers.
type Failer interface {
	Failed() <-chan error
}

// Run starts svc and runs it until SIGINT or SIGTERM (or a failure it
// reports, see Failer), then drains it and returns the exit code:
//
//   - Start fails: svc is shut down (releasing what it built), ExitStart.
//   - First signal: the context given to Start is cancelled and Shutdown
//     runs with a context ending after ShutdownTimeout. It returns nil:
//     ExitOK; an error, or no return by ShutdownTimeout+ShutdownGrace:
//     ExitFailure.
//   - A second signal while draining: ExitFailure at once (the caller
//     exits; what was not drained is lost, as with SIGKILL).
//   - A failure reported while running: shut down as for a signal, then
//     ExitFailure.
func Run(svc Component, opts RunOptions) int {
	log := opts.Log
	sigs := opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	var failed <-chan error
	if f, ok := svc.(Failer); ok {
		failed = f.Failed()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		log.Error().Err(err).Msg("cannot start")
		cancel()
		drain(svc, opts.ShutdownTimeout, sigs, log)
		return ExitStart
	}
	log.Info().Msg("started")
	code := ExitOK
	select {
	case sig := <-sigs:
		log.Info().Str("signal", sig.String()).Dur("shutdown_timeout", opts.ShutdownTimeout).
			Msg("shutting down: draining (a second signal exits at once)")
	case err := <-failed:
		log.Error().Err(err).Dur("shutdown_timeout", opts.ShutdownTimeout).Msg("failed: shutting down")
		code = ExitFailure
	}
	cancel()
	if !drain(svc, opts.ShutdownTimeout, sigs, log) {
		return ExitFailure
	}
	if code == ExitOK {
		log.Info().Msg("stopped")
	}
	return code
}

// drain runs svc.Shutdown bounded by timeout and reports whether it
// finished without error.
func drain(svc Component, timeout time.Duration, sigs <-chan os.Signal, log zerolog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Shutdown(ctx) }()
	backstop := time.NewTimer(timeout + ShutdownGrace)
	defer backstop.Stop()
	select {
	case err := <-done:
		if err != nil {
			log.Error().Err(err).Msg("shutdown incomplete")
			return false
		}
		return true
	case sig := <-sigs:
		log.Warn().Str("signal", sig.String()).Msg("second signal: exiting without finishing the drain")
		return false
	case <-backstop.C:
		log.Error().Dur("shutdown_timeout", timeout).Msg("shutdown did not finish within shutdown_timeout: exiting")
		return false
	}
}

// CannotStart logs why a service could not be built and returns
// ExitStart: the constructor has released what it built.
func CannotStart(log zerolog.Logger, err error) int {
	log.Error().Err(err).Msg("cannot start")
	return ExitStart
}
