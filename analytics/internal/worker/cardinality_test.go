package worker

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/query"
	"github.com/sluicegw/sluice/pkg/bus"
	tu "github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// The shape of BenchmarkCardinality's traffic; the defaults are the
// cardinality it is meant to measure.
var (
	cardKeys      = flag.Int("cardinality.keys", 100_000, "BenchmarkCardinality: distinct keys per minute")
	cardAPIs      = flag.Int("cardinality.apis", 100, "BenchmarkCardinality: APIs (each key calls one)")
	cardEndpoints = flag.Int("cardinality.endpoints", 1_000, "BenchmarkCardinality: endpoints, spread evenly over the APIs")
	cardPerKey    = flag.Int("cardinality.per-key", 3, "BenchmarkCardinality: requests of each key in each minute")
	cardQueries   = flag.Int("cardinality.queries", 20, "BenchmarkCardinality: calls of each query timed")
	cardKeyMin    = flag.Int("cardinality.key-minute-min", 0, "BenchmarkCardinality: aggregation.key_minute_min_requests")
)

// cardMaxEvents bounds a run, whatever -benchtime asks.
const cardMaxEvents = 6_000_000

// BenchmarkCardinality measures one worker at a realistic cardinality:
// every minute of event time holds -cardinality.keys distinct keys (each
// calling one of -cardinality.apis APIs, -cardinality.per-key times) and
// -cardinality.endpoints endpoints. b.N is the number of events (whole
// minutes of them); run it with a count, e.g.
//
//	go test -run '^$' -bench BenchmarkCardinality -benchtime 1200000x ./analytics/internal/worker/
//
// It pre-publishes the events to JetStream, then times the worker's real
// path (fetch, decode, pre-sum, one script per API, ack) with its clock
// frozen before the first minute ends, so every increment lands in open
// buckets; then it closes every minute (the close script, as the worker
// runs it) and reads what it cost from a fresh redis-server:
//
//	events/s            ingest rate of the worker
//	cmds/event          Redis commands per event while ingesting (INFO commandstats, scripts' inner calls included)
//	redis_cpu_us/event  Redis CPU per event while ingesting (INFO cpu, user + system)
//	close_cmds/keymin   Redis commands per key-minute to close the minutes
//	B/keymin_run        Redis memory per key-minute of the run once closed (INFO memory used_memory delta / key-minutes):
//	                    mostly new streams' first nodes and the open hour's bucket
//	B/keyhour_run       the same per key for closing the hour (its bucket freed, the hourly streams created)
//	B/keymin            a key-minute entry in a day-long stream (a sample key's entries replayed 1,440 times, MEMORY USAGE)
//	B/keyhour           a key-hour entry in a month-long hourly stream (the same, 720 times)
//	GB/day              B/keymin x 1440 x keys: a day of minutes of every key
//	GB/day_hourly       B/keyhour x 24 x keys: a day of hours of every key
//	usage_key_p50/p99_ms GET /v1/usage?key=<one key>&from=-1h
//	top24h_p50/p99_ms   GET /v1/usage/top?by=key&from=-24h (whole hours: the run's hour, closed)
func BenchmarkCardinality(b *testing.B) {
	keys, apis, perKey := *cardKeys, *cardAPIs, *cardPerKey
	perMinute := keys * perKey
	minutes := (min(b.N, cardMaxEvents) + perMinute - 1) / perMinute
	events := minutes * perMinute
	rd, ns := tu.StartRedis(b), tu.StartNATS(b)
	nc := ns.Conn(b)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := bus.CreateUsageStream(ctx, js, bus.Names{}, bus.StreamOptions{MaxAge: 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	// Minutes start at an hour so that the first ones are whole hours of
	// the layout; the clock is frozen in the first minute while ingesting.
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	rdb := rd.Client(b)
	st := aggregates.New(rdb, time.Hour, 48*time.Hour).WithHourlyRetention(90 * 24 * time.Hour).WithKeyMinuteMin(*cardKeyMin)
	if err := st.Load(ctx); err != nil {
		b.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(base.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	w, err := New(zerolog.Nop(), nc, st, Options{
		Durable: "cardinality", AckWait: time.Minute, MaxAckPending: 2000, FetchBatch: 200,
		FetchWait: 100 * time.Millisecond, Grace: 10 * time.Second, CloseInterval: time.Hour, Now: now,
	}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	// Two phases when there are two minutes or more: the second one's
	// memory is what a key-minute adds to streams that exist already.
	// Each phase publishes its minutes (untimed), lets the worker take
	// them with its clock frozen in their first minute (timed), then
	// closes them.
	phases := [][2]int{{0, minutes}}
	if minutes >= 2 {
		phases = [][2]int{{0, minutes / 2}, {minutes / 2, minutes}}
	}
	b.StopTimer()
	b.ResetTimer()
	mem := []int64{redisInfoInt(b, rdb, "memory", "used_memory")}
	var ingestCmds, closeCmds int64
	var ingestCPU float64
	var closeTime time.Duration
	msgs := 0
	for i, ph := range phases {
		msgs += publishCardinality(b, js, base, ph[0], ph[1], msgs)
		clock.Store(base.Add(time.Duration(ph[0]) * time.Minute).UnixNano())
		resetStats(b, rdb)
		cpu0 := redisCPU(b, rdb)
		b.StartTimer()
		if i == 0 {
			if err := w.Start(ctx); err != nil {
				b.Fatal(err)
			}
		}
		waitConsumed(b, w)
		b.StopTimer()
		ingestCPU += redisCPU(b, rdb) - cpu0
		ingestCmds += commandCalls(b, rdb)
		resetStats(b, rdb)
		clock.Store(base.Add(time.Duration(ph[1]) * time.Minute).Add(w.opts.Grace).UnixNano()) // cutoff: the phase's last minute
		closeStart := time.Now()
		// One pass is bounded by the worker's Redis timeout; the worker
		// goes on at its next tick, as this does.
		for pass := 0; openMinutes(b, rdb, st, apis) > 0; pass++ {
			if pass == 20 {
				b.Fatal("minutes still open after 20 passes of closing")
			}
			w.closeMinutes(ctx)
		}
		closeTime += time.Since(closeStart)
		closeCmds += commandCalls(b, rdb)
		mem = append(mem, redisInfoInt(b, rdb, "memory", "used_memory"))
	}
	ingest := b.Elapsed()
	_ = w.Shutdown(ctx)
	// Close the hour (its minutes are all closed): its bucket becomes one
	// entry per key in the hourly streams.
	hourBucket := hourBucketBytes(b, rdb, st, apis, base)
	clock.Store(base.Add(time.Hour + time.Minute).Add(w.opts.Grace).UnixNano())
	for pass := 0; hourOpen(b, rdb, st, apis) > 0; pass++ {
		if pass == 20 {
			b.Fatal("hour still open after 20 passes of closing")
		}
		w.closeMinutes(ctx)
	}
	memHour := redisInfoInt(b, rdb, "memory", "used_memory")
	perKeyHour := float64(memHour-mem[len(mem)-1]+hourBucket) / float64(keys)
	keyMinutes := float64(keys * minutes)
	perKeyMin := float64(mem[len(mem)-1]-mem[0]) / keyMinutes
	// A stream's first entry allocates a node of stream-node-max-bytes
	// that the next entries fill, so a run of a few minutes says little of
	// an entry's cost in a day-long stream: replay the entries of a sample
	// of keys into scratch streams of a day's length and measure those.
	sample := fmt.Sprintf("%064x", keys/3)
	entryMin := steadyEntryBytes(b, rdb, st.Layout().StreamKey("api"+strconv.Itoa((keys/3)%apis), aggregates.DimKey, sample), 1440)
	entryHour := steadyEntryBytes(b, rdb, st.Layout().HourStreamKey("api"+strconv.Itoa((keys/3)%apis), aggregates.DimKey, sample), 24*30)

	h := query.New(zerolog.Nop(), st, now)
	mux := http.NewServeMux()
	h.Register(mux)
	key := fmt.Sprintf("%064x", keys/2)
	usageP50, usageP99 := timeQuery(b, mux, "/v1/usage?from=-1h&key="+key, *cardQueries)
	topP50, topP99 := timeQuery(b, mux, "/v1/usage/top?by=key&from=-24h", max(*cardQueries/4, 3))

	b.ReportMetric(float64(events)/ingest.Seconds(), "events/s")
	b.ReportMetric(float64(ingestCmds)/float64(events), "cmds/event")
	b.ReportMetric(ingestCPU*1e6/float64(events), "redis_cpu_us/event")
	b.ReportMetric(float64(closeCmds)/keyMinutes, "close_cmds/keymin")
	b.ReportMetric(closeTime.Seconds()/float64(minutes), "close_s/min")
	b.ReportMetric(perKeyMin, "B/keymin_run")
	b.ReportMetric(perKeyHour, "B/keyhour_run")
	b.ReportMetric(entryMin, "B/keymin")
	b.ReportMetric(entryHour, "B/keyhour")
	b.ReportMetric(entryMin*1440*float64(keys)/1e9, "GB/day")
	b.ReportMetric(entryHour*24*float64(keys)/1e9, "GB/day_hourly")
	b.ReportMetric(usageP50, "usage_key_p50_ms")
	b.ReportMetric(usageP99, "usage_key_p99_ms")
	b.ReportMetric(topP50, "top24h_p50_ms")
	b.ReportMetric(topP99, "top24h_p99_ms")
	b.Logf("%d events in %d messages: %d minutes x %d keys x %d requests, %d APIs, %d endpoints; ingest %v, close %v",
		events, msgs, minutes, keys, perKey, apis, *cardEndpoints, ingest.Round(time.Millisecond), closeTime.Round(time.Millisecond))
	b.Logf("used_memory after each phase: %v; after closing the hour %d (its bucket held %d)", mem, memHour, hourBucket)
}

// publishCardinality publishes the run's events, minute by minute, in
// batches of benchPerMsg events of one API, and returns how many messages.
func publishCardinality(b *testing.B, js jetstream.JetStream, base time.Time, from, to, seqMsg int) int {
	keys, apis, perKey := *cardKeys, *cardAPIs, *cardPerKey
	epsPerAPI := max(*cardEndpoints/apis, 1)
	statuses := []int{200, 200, 200, 201, 404, 429, 500}
	msgs := 0
	pending := make([][]byte, apis)
	counts := make([]int, apis)
	flush := func(api int) {
		m := nats.NewMsg(bus.Names{}.UsageSubject("api" + strconv.Itoa(api)))
		m.Data = pending[api]
		m.Header.Set(usage.HeaderVersion, usage.Version)
		m.Header.Set(usage.HeaderMsgID, "card-"+strconv.Itoa(seqMsg+msgs))
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		msgs++
		pending[api], counts[api] = nil, 0
		if msgs%256 == 0 {
			<-js.PublishAsyncComplete()
		}
	}
	seq := from * keys * perKey
	for m := from; m < to; m++ {
		t0 := base.Add(time.Duration(m) * time.Minute)
		for r := 0; r < perKey; r++ {
			for k := 0; k < keys; k++ {
				key := (k*7919 + r) % keys // every key once per round, in a shuffled order
				api := key % apis
				st := statuses[seq%len(statuses)]
				ev := usage.Event{ID: "c-" + strconv.Itoa(seq), Time: t0.Add(time.Duration(seq%60_000) * time.Millisecond).UnixNano(),
					Node: "n1", API: "api" + strconv.Itoa(api), KeyHash: fmt.Sprintf("%064x", key), KeyID: "key-" + strconv.Itoa(key),
					Method: "GET", Path: "/p", Endpoint: "/e" + strconv.Itoa(seq%epsPerAPI), Status: st,
					Latency: int64(200 + seq%20_000), BytesIn: 10, BytesOut: 300}
				if st == 429 {
					ev.Limited = "rate"
				}
				pending[api] = usage.AppendJSON(pending[api], &ev)
				seq++
				if counts[api]++; counts[api] == benchPerMsg {
					flush(api)
				}
			}
		}
		for api := range pending {
			if counts[api] > 0 {
				flush(api)
			}
		}
	}
	<-js.PublishAsyncComplete()
	return msgs
}

func waitConsumed(b *testing.B, w *Worker) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		info, err := w.cons.Info(context.Background())
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("the worker did not take every event within 10 minutes")
}

func resetStats(b *testing.B, rdb *redis.Client) {
	if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
}

// commandCalls sums the calls of every command in INFO commandstats, less
// the INFO and CONFIG calls that read them.
func commandCalls(b *testing.B, rdb *redis.Client) int64 {
	s, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok || strings.HasSuffix(name, "_info") || strings.HasPrefix(name, "cmdstat_config") {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		c, _ := strconv.ParseInt(calls, 10, 64)
		n += c
	}
	return n
}

// redisCPU is the CPU seconds redis-server has used (user + system).
func redisCPU(b *testing.B, rdb *redis.Client) float64 {
	s, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(s, "\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), f); ok {
				x, _ := strconv.ParseFloat(v, 64)
				sum += x
			}
		}
	}
	return sum
}

func redisInfoInt(b *testing.B, rdb *redis.Client, section, field string) int64 {
	s, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatalf("INFO %s has no %s", section, field)
	return 0
}

func openMinutes(b *testing.B, rdb *redis.Client, st *aggregates.Store, apis int) int64 {
	var n int64
	for a := 0; a < apis; a++ {
		c, err := rdb.ZCard(context.Background(), st.Layout().Prefix("api"+strconv.Itoa(a))+"open").Result()
		if err != nil {
			b.Fatal(err)
		}
		n += c
	}
	return n
}

// hourBucketBytes is the memory of the open hour buckets of base's hour.
func hourBucketBytes(b *testing.B, rdb *redis.Client, st *aggregates.Store, apis int, base time.Time) int64 {
	var n int64
	for a := 0; a < apis; a++ {
		v, err := rdb.MemoryUsage(context.Background(), st.Layout().Prefix("api"+strconv.Itoa(a))+"hm:"+strconv.FormatInt(base.UnixMilli(), 10), 0).Result()
		if err != nil && err != redis.Nil {
			b.Fatal(err)
		}
		n += v
	}
	return n
}

func hourOpen(b *testing.B, rdb *redis.Client, st *aggregates.Store, apis int) int64 {
	var n int64
	for a := 0; a < apis; a++ {
		c, err := rdb.ZCard(context.Background(), st.Layout().Prefix("api"+strconv.Itoa(a))+"hopen").Result()
		if err != nil {
			b.Fatal(err)
		}
		n += c
	}
	return n
}

// steadyEntryBytes replays the entries of stream src (cycling through
// them) n times into a scratch stream and returns its memory per entry
// (MEMORY USAGE, every node counted); 0 when src is empty (a key without
// minutes of its own).
func steadyEntryBytes(b *testing.B, rdb *redis.Client, src string, n int) float64 {
	ctx := context.Background()
	entries, err := rdb.XRange(ctx, src, "-", "+").Result()
	if err != nil {
		b.Fatal(err)
	}
	if len(entries) == 0 {
		return 0
	}
	dst := src + ":replay"
	pipe := rdb.Pipeline()
	for i := 0; i < n; i++ {
		e := entries[i%len(entries)]
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: dst, ID: strconv.Itoa(i+1) + "-0", Values: e.Values})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	v, err := rdb.MemoryUsage(ctx, dst, 0).Result()
	if err != nil {
		b.Fatal(err)
	}
	_ = rdb.Del(ctx, dst)
	return float64(v) / float64(n)
}

// timeQuery calls path n times through the query handler and returns the
// p50 and p99 latency in milliseconds.
func timeQuery(b *testing.B, h http.Handler, path string, n int) (float64, float64) {
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		lat = append(lat, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)])
}
