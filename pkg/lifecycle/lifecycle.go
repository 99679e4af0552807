// Package lifecycle is the one skeleton every Sluice service binary runs
// on: construct → start → ready → drain → stop, with whatever was built
// released on any failure, the same signals, the same shutdown timeout
// semantics and the same exit codes in sluice-gateway, sluice-syncer and
// sluice-analytics.
//
//   - Construct: a service's constructor adds what it builds to a Group,
//     in start order. A constructor that fails at step k calls
//     Group.Shutdown, which releases steps k-1..1 (caddy's
//     Provision/Cleanup, without the half-built leftovers).
//   - Start: Run starts the Group's components in order; when one fails,
//     Run shuts down the whole Group (started or not) and exits ExitStart.
//   - Ready: each service answers /ready (docs/operations.md).
//   - Drain and stop: on SIGINT or SIGTERM Run cancels the context the
//     components were started with and shuts the Group down in reverse
//     order, bounded by the shutdown timeout; a second signal, or the
//     timeout passing, exits at once with ExitFailure.
//
// The command line is parsed, and the configuration loaded and checked, by
// CLI: every problem is printed on its own line as "field.path: cause".
package lifecycle

// Exit codes of every Sluice service binary (docs/operations.md).
const (
	// ExitOK: a clean stop (after SIGINT/SIGTERM, every component
	// drained within the shutdown timeout), --help, --version, or
	// --check-config finding nothing wrong.
	ExitOK = 0
	// ExitFailure: the service failed while running, or its shutdown did
	// not finish (the shutdown timeout passed, a component failed to
	// stop, or a second signal forced the exit).
	ExitFailure = 1
	// ExitUsage: bad command line (unknown flag, bad flag value, an
	// argument where none is taken).
	ExitUsage = 2
	// ExitConfig: the configuration is invalid: the file cannot be read
	// or parsed, an environment variable cannot be parsed, or a value is
	// refused by the checks --check-config runs.
	ExitConfig = 3
	// ExitStart: the service could not start: a dependency refused it at
	// start (Redis or NATS credentials or TLS, NATS unreachable with
	// nats.retry_on_failed_connect: false), a listen address could not be
	// bound, or a file the configuration names could not be used.
	ExitStart = 4
)

// ExitCodes is the table printed by every binary's --help.
const ExitCodes = `Exit codes:
  0  stopped cleanly (SIGINT/SIGTERM, drained within shutdown_timeout), --help, --version, --check-config ok
  1  failed while running, or shutdown incomplete (shutdown_timeout passed, a component failed to stop, second signal)
  2  bad command line
  3  invalid configuration (every problem printed, one per line: field.path: cause)
  4  could not start (a dependency refused or is unreachable at start, a listen address is taken, a file cannot be used)
`
