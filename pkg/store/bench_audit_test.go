package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// BenchmarkApply measures one admin write (policy put) through the Apply
// script, which also appends the audit entry.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	s := newStoreB(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.ApplyAs(ctx, "bench", policyChange(fmt.Sprintf("p%d", i%100), `{"id":"p"}`, "")); err != nil {
			b.Fatal(err)
		}
	}
}

func newStoreB(b *testing.B) *store.Store {
	b.Helper()
	return store.New(testutil.StartRedis(b).Client(b), 0)
}
