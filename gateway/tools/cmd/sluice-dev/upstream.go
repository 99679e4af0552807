package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// maxSlow bounds /slow?ms= so a typo cannot park a connection for hours.
const maxSlow = 60 * time.Second

func runUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("upstream", "[--listen 127.0.0.1:8000]", stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := &fasthttp.Server{Handler: upstreamHandler, Name: "sluice-demo-upstream"}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe(*listen) }()
	fmt.Fprintf(stdout, "upstream: listening on http://%s\n", *listen)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Shutdown()
	}
}

// echo is what the demo upstream answers: the request as it arrived.
type echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Headers map[string][]string `json:"headers"`
	Body    int                 `json:"body_bytes"`
	SlowMS  int64               `json:"slow_ms,omitempty"`
}

// upstreamHandler echoes the request as JSON. A path ending in /slow waits
// ?ms= milliseconds first; a path ending in /status/<code> answers <code>.
// Both work with or without the API's listen path in front.
func upstreamHandler(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	status := fasthttp.StatusOK
	e := echo{
		Method:  string(ctx.Method()),
		Path:    path,
		Query:   string(ctx.URI().QueryString()),
		Headers: map[string][]string{},
		Body:    len(ctx.Request.Body()),
	}
	for k, v := range ctx.Request.Header.All() {
		e.Headers[string(k)] = append(e.Headers[string(k)], string(v))
	}
	if i := strings.LastIndex(path, "/status/"); i >= 0 {
		code, err := strconv.Atoi(path[i+len("/status/"):])
		if err != nil || code < 200 || code > 599 {
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"error":{"code":"bad_status","message":"/status/<code> needs a code from 200 to 599"}}`)
			return
		}
		status = code
	}
	if strings.HasSuffix(path, "/slow") {
		ms, _ := strconv.ParseInt(string(ctx.QueryArgs().Peek("ms")), 10, 64)
		d := min(max(time.Duration(ms)*time.Millisecond, 0), maxSlow)
		time.Sleep(d)
		e.SlowMS = d.Milliseconds()
	}
	body, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		ctx.Error(`{"error":{"code":"internal","message":"encode"}}`, fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
