package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Component is a part of a service with a start and a stop. Shutdown stops
// what Start started and releases what the constructor holds; it must be
// safe to call when Start was never called or failed, and it honours ctx.
// A Group calls each at most once.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Funcs makes a Component of two functions; either may be nil.
func Funcs(start func(context.Context) error, shutdown func(context.Context) error) Component {
	return funcs{start, shutdown}
}

type funcs struct{ start, shutdown func(context.Context) error }

func (f funcs) Start(ctx context.Context) error {
	if f.start == nil {
		return nil
	}
	return f.start(ctx)
}

func (f funcs) Shutdown(ctx context.Context) error {
	if f.shutdown == nil {
		return nil
	}
	return f.shutdown(ctx)
}

// Group is a service under construction, then running: the components
// and resources it was built from, in start order. Start starts the
// components in that order; Shutdown stops and releases everything in the
// reverse order, whether it was started or not, each entry once. A
// constructor adds each part as soon as it is built, and on a later
// failure calls Shutdown: nothing it built leaks.
//
// The zero Group is ready to use. It is not safe for concurrent use,
// except Fail and Failed.
type Group struct {
	entries []entry
	done    int // entries already shut down, counted from the end

	failMu sync.Mutex
	failed chan error
}

type entry struct {
	name string
	c    Component
}

// Add appends a component: started after every part added before it,
// stopped before them.
func (g *Group) Add(name string, c Component) { g.entries = append(g.entries, entry{name, c}) }

// Closer appends a resource with nothing to start, released by close when
// the group shuts down (a connection, a client).
func (g *Group) Closer(name string, close func() error) {
	g.Add(name, Funcs(nil, func(context.Context) error { return close() }))
}

// Start starts the components in order and stops at the first failure,
// returning it with the component's name. The caller then calls Shutdown.
func (g *Group) Start(ctx context.Context) error {
	for _, e := range g.entries {
		if err := e.c.Start(ctx); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return nil
}

// Shutdown stops and releases every part in reverse order, started or
// not, each once, and returns every failure, each with its part's name.
// Every part gets its turn even when ctx has ended (most return at once
// then).
func (g *Group) Shutdown(ctx context.Context) error {
	var errs []error
	for len(g.entries)-g.done > 0 {
		e := g.entries[len(g.entries)-1-g.done]
		g.done++
		if err := e.c.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
		}
	}
	return errors.Join(errs...)
}

// Names lists the parts in start order.
func (g *Group) Names() []string {
	out := make([]string, len(g.entries))
	for i, e := range g.entries {
		out[i] = e.name
	}
	return out
}

// Fail reports that a running part failed for good (a listener stopped
// serving): Run then shuts the service down and exits ExitFailure. Only
// the first failure is kept. Safe for concurrent use.
func (g *Group) Fail(err error) {
	ch := g.failChan()
	select {
	case ch <- err:
	default: // one failure is enough to stop
	}
}

// Failed returns the channel Fail sends on. Safe for concurrent use.
func (g *Group) Failed() <-chan error { return g.failChan() }

func (g *Group) failChan() chan error {
	g.failMu.Lock()
	defer g.failMu.Unlock()
	if g.failed == nil {
		g.failed = make(chan error, 1)
	}
	return g.failed
}
