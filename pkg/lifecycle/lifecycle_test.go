package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/validation"
)

// part is a component that records what happened to it.
type part struct {
	name     string
	log      *[]string
	mu       *sync.Mutex
	startErr error
	stop     func(ctx context.Context) error
	started  context.Context
}

func (p *part) Start(ctx context.Context) error {
	p.mu.Lock()
	*p.log = append(*p.log, "start "+p.name)
	p.mu.Unlock()
	p.started = ctx
	return p.startErr
}

func (p *part) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	*p.log = append(*p.log, "stop "+p.name)
	p.mu.Unlock()
	if p.stop != nil {
		return p.stop(ctx)
	}
	return nil
}

func TestGroupStopsEverythingBuiltInReverseOnce(t *testing.T) {
	t.Parallel()
	var log []string
	var mu sync.Mutex
	var g Group
	closed := 0
	g.Closer("conn", func() error { closed++; return nil })
	g.Add("a", &part{name: "a", log: &log, mu: &mu})
	g.Add("b", &part{name: "b", log: &log, mu: &mu, startErr: errors.New("port taken")})
	g.Add("c", &part{name: "c", log: &log, mu: &mu})
	err := g.Start(context.Background())
	if err == nil || err.Error() != "b: port taken" {
		t.Fatalf("start error %v, want the part's name and cause", err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "start a,start b,stop c,stop b,stop a"
	if got := strings.Join(log, ","); got != want || closed != 1 {
		t.Fatalf("got %s (closed %d times), want %s (closed once)", got, closed, want)
	}
}

func TestGroupShutdownJoinsFailuresWithNames(t *testing.T) {
	t.Parallel()
	var g Group
	g.Closer("redis", func() error { return errors.New("already closed") })
	g.Add("server", Funcs(nil, func(context.Context) error { return context.DeadlineExceeded }))
	err := g.Shutdown(context.Background())
	if err == nil || !strings.Contains(err.Error(), "server: context deadline exceeded") || !strings.Contains(err.Error(), "redis: already closed") {
		t.Fatalf("error %v", err)
	}
}

func runOpts(sigs chan os.Signal, timeout time.Duration, buf *bytes.Buffer) RunOptions {
	return RunOptions{Log: zerolog.New(buf), ShutdownTimeout: timeout, Signals: sigs}
}

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	block := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	ignore := func(context.Context) error { select {} }
	cases := []struct {
		name     string
		startErr error
		stop     func(context.Context) error
		signals  int
		fail     error
		want     int
	}{
		{"clean stop", nil, nil, 1, nil, ExitOK},
		{"start fails", errors.New("listen: address in use"), nil, 0, nil, ExitStart},
		{"shutdown fails", nil, func(context.Context) error { return errors.New("flush failed") }, 1, nil, ExitFailure},
		{"shutdown past the timeout", nil, block, 1, nil, ExitFailure},
		{"shutdown ignoring its deadline", nil, ignore, 1, nil, ExitFailure},
		{"second signal", nil, ignore, 2, nil, ExitFailure},
		{"failure while running", nil, nil, 0, errors.New("listener stopped"), ExitFailure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log []string
			var mu sync.Mutex
			p := &part{name: "p", log: &log, mu: &mu, startErr: tc.startErr, stop: tc.stop}
			var g Group
			g.Add("p", p)
			sigs := make(chan os.Signal, 2)
			for range tc.signals {
				sigs <- syscall.SIGTERM
			}
			if tc.fail != nil {
				g.Fail(tc.fail)
				g.Fail(errors.New("second failure, dropped"))
			}
			var buf bytes.Buffer
			if code := Run(&g, runOpts(sigs, 50*time.Millisecond, &buf)); code != tc.want {
				t.Fatalf("exit %d, want %d; log:\n%s", code, tc.want, buf.String())
			}
			mu.Lock()
			defer mu.Unlock()
			// After a second signal Run returns at once: the drain may not
			// even have begun.
			if tc.signals < 2 && (len(log) < 2 || log[len(log)-1] != "stop p") {
				t.Fatalf("the part was not shut down: %v", log)
			}
			if p.started.Err() == nil {
				t.Error("the context given to Start was not cancelled at shutdown")
			}
		})
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args     []string
		check    error
		wantCode int
		wantExit bool
		wantOut  string
		wantErr  string
	}{
		{[]string{"--help"}, nil, ExitOK, true, "Exit codes:", ""},
		{[]string{"--version"}, nil, ExitOK, true, "svc ", ""},
		{[]string{"--nope"}, nil, ExitUsage, true, "", "flag provided but not defined"},
		{[]string{"extra"}, nil, ExitUsage, true, "", `unexpected argument "extra"`},
		{[]string{"--check-config"}, nil, ExitOK, true, "configuration ok", ""},
		{nil, nil, ExitOK, false, "", ""},
		{nil, validation.Errors{{Field: "a.b", Message: "bad"}, {Field: "c", Message: "two\nlines"}}, ExitConfig, true, "", "a.b: bad\nc: two lines\n"},
		{nil, errors.Join(errors.New("plain"), validation.Errors{{Field: "x", Message: "y"}}), ExitConfig, true, "", "plain\nx: y\n"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		c := NewCLI("svc", "does things", nil)
		code, exit := c.Parse(tc.args, &out, &errb)
		if !exit {
			code, exit = c.Check(tc.check)
		}
		if code != tc.wantCode || exit != tc.wantExit || !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errb.String(), tc.wantErr) {
			t.Errorf("%v %v: exit %d %v, stdout %q, stderr %q", tc.args, tc.check, code, exit, out.String(), errb.String())
		}
	}
}
