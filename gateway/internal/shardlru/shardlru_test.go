package shardlru

import (
	"crypto/sha256"
	"strconv"
	"sync"
	"testing"
)

type sum = [32]byte

func key(i int) sum { return sha256.Sum256([]byte(strconv.Itoa(i))) }

// keysInShard returns n distinct keys that all fall in shard 0.
func keysInShard(n int) []sum {
	var out []sum
	for i := 0; len(out) < n; i++ {
		if k := key(i); k[0]%Shards == 0 {
			out = append(out, k)
		}
	}
	return out
}

func TestBoundedAndLeastRecentlyUsedFirst(t *testing.T) {
	t.Parallel()
	c := New[sum, int](Shards * 2) // two entries per shard
	ks := keysInShard(3)
	c.Add(&ks[0], 0)
	c.Add(&ks[1], 1)
	if _, ok := c.Get(&ks[0]); !ok { // ks[1] is now the oldest
		t.Fatal("first key missing")
	}
	c.Add(&ks[2], 2)
	if _, ok := c.Peek(&ks[1]); ok {
		t.Fatal("least recently used key kept in a full shard")
	}
	for _, i := range []int{0, 2} {
		if v, ok := c.Peek(&ks[i]); !ok || v != i {
			t.Fatalf("key %d: got %d %v", i, v, ok)
		}
	}
	for i := 0; i < 10*Shards; i++ {
		k := key(1000 + i)
		c.Add(&k, i)
	}
	if n := c.Len(); n > Shards*2 {
		t.Fatalf("%d entries in a cache of %d", n, Shards*2)
	}
}

func TestRemoveVariants(t *testing.T) {
	t.Parallel()
	c := New[sum, int](1024)
	for i := 0; i < 100; i++ {
		k := key(i)
		c.Add(&k, i)
	}
	k5 := key(5)
	c.Remove(&k5)
	if _, ok := c.Get(&k5); ok {
		t.Fatal("removed key still cached")
	}
	k6 := key(6)
	c.RemoveIf(&k6, func(v int) bool { return v != 6 })
	if _, ok := c.Get(&k6); !ok {
		t.Fatal("RemoveIf removed a key whose value did not match")
	}
	c.RemoveIf(&k6, func(v int) bool { return v == 6 })
	if _, ok := c.Get(&k6); ok {
		t.Fatal("RemoveIf kept a matching key")
	}
	c.RemoveWhere(func(v int) bool { return v%2 == 0 })
	for i := 0; i < 100; i++ {
		k := key(i)
		_, ok := c.Peek(&k)
		if want := i%2 == 1 && i != 5; ok != want {
			t.Fatalf("key %d cached=%v, want %v", i, ok, want)
		}
	}
	c.Purge()
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries after Purge", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c := New[sum, int](64)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := key(g*10000 + i%100)
				c.Add(&k, i)
				c.Get(&k)
				if i%500 == 0 {
					c.RemoveWhere(func(v int) bool { return v%3 == 0 })
				}
			}
		}(g)
	}
	wg.Wait()
	if n := c.Len(); n > 64+Shards {
		t.Fatalf("%d entries in a cache of 64", n)
	}
}

// A hit allocates nothing: it is on every keyed request.
func TestHitAllocatesNothing(t *testing.T) {
	c := New[sum, *int](128)
	k := key(1)
	v := 1
	c.Add(&k, &v)
	if n := testing.AllocsPerRun(100, func() { c.Get(&k) }); n != 0 {
		t.Fatalf("Get allocates %v times", n)
	}
}

func BenchmarkGetParallel(b *testing.B) {
	c := New[sum, *int](4096)
	ks := make([]sum, 1024)
	for i := range ks {
		ks[i] = key(i)
		v := i
		c.Add(&ks[i], &v)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(&ks[i%len(ks)])
			i++
		}
	})
}
