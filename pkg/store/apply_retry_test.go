package store

import (
	"context"
	"testing"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestApplySentTwiceWritesOnce: the apply script sent again with the same
// call id (as go-redis does when the answer of a long script times out
// though Redis ran it) answers the version the first run wrote and writes
// nothing; without the id the second run is refused by its preconditions.
func TestApplySentTwiceWritesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := New(testutil.StartRedis(t).Client(t), 0)
	l := s.Layout()
	keys := []string{l.Version(), l.Changelog(), l.APIs(), l.Policies(), l.Keys(), l.KeyIDs(), l.Routes(), l.APIRoutes(), l.Audit()}
	run := func(aid string) (int64, error) {
		args, err := applyArgs(s.changelogLen, []Change{{Kind: KindPolicy, Op: OpPut, ID: "p-" + aid, Body: []byte(`{"id":"p","access":[]}`), Create: true}})
		if err != nil {
			t.Fatal(err)
		}
		return applyScript.Run(ctx, s.rdb, keys, append(args, "test", s.auditLen, aid)...).Int64()
	}
	v1, err := run("call-1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := run("call-1")
	if err != nil || v2 != v1 {
		t.Fatalf("second send: version %d, %v; want %d", v2, err, v1)
	}
	if cur, _ := s.Version(ctx); cur != v1 {
		t.Fatalf("version %d after the same call twice, want %d", cur, v1)
	}
	if _, err := run(""); err != nil {
		t.Fatal(err)
	}
	if _, err := run(""); err == nil {
		t.Fatal("an apply without id ran twice: the precondition should refuse it")
	}
}
