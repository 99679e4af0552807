package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

func runWait(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wait", "[--timeout 30s] [--quiet] ADDRESS...\n\n"+
		"ADDRESS is host:port (or tcp://host:port) for a TCP connect, or an http:// URL\n"+
		"that must answer 2xx. Exits 0 when every address answers, 1 on timeout.", stderr)
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait in all")
	quiet := fs.Bool("quiet", false, "print nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("no address given")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for _, addr := range fs.Args() {
		if err := waitFor(ctx, addr); err != nil {
			return fmt.Errorf("%s did not answer within %v: %w", addr, *timeout, err)
		}
		if !*quiet {
			fmt.Fprintf(stdout, "wait: %s answers\n", addr)
		}
	}
	return nil
}

// waitFor probes addr every 100ms until it answers or ctx ends.
func waitFor(ctx context.Context, addr string) error {
	probe := probeTCP
	if strings.HasPrefix(addr, "http://") {
		probe = probeHTTP
	}
	addr = strings.TrimPrefix(addr, "tcp://")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := probe(ctx, addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

func probeTCP(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func probeHTTP(_ context.Context, url string) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	if err := fasthttp.DoTimeout(req, resp, time.Second); err != nil {
		return err
	}
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return fmt.Errorf("status %d", c)
	}
	return nil
}
