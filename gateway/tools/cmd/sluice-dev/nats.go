package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func runNATS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("nats", "[--host 127.0.0.1] [--port 4222] [--store DIR]", stderr)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 4222, "client port")
	store := fs.String("store", ".run/nats", "JetStream store folder")
	verbose := fs.Bool("log", false, "print the server's log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := &server.Options{
		ServerName: "sluice-dev",
		Host:       *host,
		Port:       *port,
		JetStream:  true,
		StoreDir:   *store,
		NoSigs:     true,
		NoLog:      !*verbose,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	if *verbose {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("nats server on %s:%d not ready after 10s", *host, *port)
	}
	fmt.Fprintf(stdout, "nats: listening on nats://%s:%d (JetStream store %s)\n", *host, *port, *store)
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
