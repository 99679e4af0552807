//go:build chaos

package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// faults is the scenarios in the order they run.
func faults(tm timing) []fault {
	return []fault{
		{name: "nats-leader-kill", victimGateway: -1, inject: killStreamLeader, heal: restartStreamLeader, check: checkLeaderMoved},
		{name: "redis-primary-kill", victimGateway: -1, inject: killRedisPrimary, heal: restartRedisNode, check: checkPromoted},
		{name: "redis-primary-freeze", victimGateway: -1, inject: freezeRedisPrimary, heal: resumeRedisPrimary, check: checkFailClosed},
		{name: "gateway-kill", victimGateway: 1, inject: killGateway, heal: restartGateway, check: checkGatewayBack},
		{name: "analytics-worker-kill", victimGateway: -1, inject: killWorker, heal: restartWorker, check: checkWorkerBack},
		{name: "syncer-kill-mid-apply", victimGateway: -1, inject: killSyncerMidApply, heal: restartSyncer, check: checkAdminWrites},
	}
}

// --- NATS: kill -9 the usage stream's leader, then restart it.

func killStreamLeader(t *testing.T, tp *topology, st *faultState) {
	// A replica may lag a moment under load: wait for all to be current,
	// so the kill leaves a full quorum behind.
	var leader *natsNode
	testutil.WaitFor(t, 20*time.Second, func() (err error) { leader, err = tp.nats.streamLeader(); return err })
	st.natsVictim = leader
	leader.Kill()
	st.note("killed %s, the leader of %s (SIGKILL)", leader.Name, usageStream)
	// A new leader is elected among the two left; the fault is held
	// until then, and at least tm.fault.
	start := time.Now()
	testutil.WaitFor(t, 30*time.Second, func() error {
		info, err := tp.nats.streamInfo()
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == leader.Name {
			return fmt.Errorf("no new leader yet")
		}
		st.newLeader = info.Cluster.Leader
		return nil
	})
	st.note("new leader %s elected %v after the kill", st.newLeader, time.Since(start).Round(10*time.Millisecond))
	hold(max(0, st.tm.fault-time.Since(start)))
}

func restartStreamLeader(t *testing.T, tp *topology, st *faultState) {
	if err := st.natsVictim.Restart(); err != nil {
		t.Fatal(err)
	}
}

func checkLeaderMoved(t *testing.T, tp *topology, st *faultState, r *result) {
	if st.newLeader == "" || st.newLeader == st.natsVictim.Name {
		t.Errorf("the usage stream's leader did not move off %s: the fault did not happen", st.natsVictim.Name)
	}
	testutil.WaitFor(t, 30*time.Second, func() error { _, err := tp.nats.streamLeader(); return err })
	st.note("%s back: stream has 3 current replicas", st.natsVictim.Name)
}

// --- Redis: kill -9 the primary serving both APIs' counters; a replica is
// promoted; the old primary comes back as a replica.

// countersPrimary is the index of the node serving the APIs' counters.
func countersPrimary(t *testing.T, tp *topology) int {
	addr, err := tp.redis.PrimaryFor((store.Layout{}).CounterPrefix(openAPI))
	if err != nil {
		t.Fatal(err)
	}
	i := tp.redis.NodeIndex(addr)
	if i < 0 {
		t.Fatalf("primary %s is not a node of the cluster", addr)
	}
	return i
}

func killRedisPrimary(t *testing.T, tp *topology, st *faultState) {
	st.redisNode = countersPrimary(t, tp)
	old := tp.redis.NodeAddr(st.redisNode)
	tp.redis.KillNode(st.redisNode)
	st.note("killed Redis primary %s (SIGKILL)", old)
	start := time.Now()
	testutil.WaitFor(t, 60*time.Second, func() error {
		addr, err := tp.redis.PrimaryFor((store.Layout{}).CounterPrefix(openAPI))
		if err != nil {
			return err
		}
		if addr == old {
			return fmt.Errorf("no replica promoted yet")
		}
		st.after = addr
		return nil
	})
	st.note("replica %s promoted %v after the kill", st.after, time.Since(start).Round(10*time.Millisecond))
	hold(max(0, st.tm.fault-time.Since(start)))
}

func restartRedisNode(t *testing.T, tp *topology, st *faultState) {
	if err := tp.redis.RestartNode(st.redisNode); err != nil {
		t.Fatal(err)
	}
}

func checkPromoted(t *testing.T, tp *topology, st *faultState, r *result) {
	testutil.WaitFor(t, 60*time.Second, func() error { return tp.redis.NodeHealthy(st.redisNode) })
	role, err := tp.redis.NodeRole(st.redisNode)
	if err != nil {
		t.Fatal(err)
	}
	if role != "slave" {
		t.Errorf("the killed primary came back as %s, want a replica of the promoted node", role)
	}
	over := r.maxDuring - (hammerRate + hammerBurst)
	st.note("over-admission of the hammered key: %d requests above %d in its worst second", max(0, over), hammerRate+hammerBurst)
}

// --- Redis: freeze the counters' primary (SIGSTOP), then resume it.

func freezeRedisPrimary(t *testing.T, tp *topology, st *faultState) {
	st.redisNode = countersPrimary(t, tp)
	tp.redis.PauseNode(st.redisNode)
	st.note("froze Redis primary %s (SIGSTOP) for %v", tp.redis.NodeAddr(st.redisNode), st.tm.freeze)
	hold(st.tm.freeze)
}

func resumeRedisPrimary(t *testing.T, tp *topology, st *faultState) {
	tp.redis.ResumeNode(st.redisNode)
}

func checkFailClosed(t *testing.T, tp *topology, st *faultState, r *result) {
	if r.unavailable == 0 {
		t.Errorf("no 503 on the fail-closed API while its Redis primary was frozen: the fault or the guard is absent")
	}
	testutil.WaitFor(t, 60*time.Second, func() error { return tp.redis.NodeHealthy(st.redisNode) })
	role, err := tp.redis.NodeRole(st.redisNode)
	if err == nil {
		st.note("the frozen node is a %s after the freeze", role)
	}
}

// --- Gateway: kill -9 one under load, restart it.

func killGateway(t *testing.T, tp *topology, st *faultState) {
	g := tp.gateways[1]
	g.Kill()
	st.note("killed %s (SIGKILL)", g.Name)
	hold(st.tm.fault)
}

func restartGateway(t *testing.T, tp *topology, st *faultState) {
	g := tp.gateways[1]
	if err := g.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := g.WaitReady(t.Context(), "http://"+g.ops+"/ready", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func checkGatewayBack(t *testing.T, tp *topology, st *faultState, r *result) {
	if r.noAnswer == 0 {
		t.Errorf("no request to the killed gateway went unanswered: the fault did not happen")
	}
	st.note("%d requests to the dead gateway got no answer (connection refused)", r.noAnswer)
	st.note("usage events lost with the killed gateway: %d (bound: the %d requests it answered in the 1.02s before its death)", r.lost, r.lostMax)
}

// --- Analytics: kill -9 one worker, restart it.

func killWorker(t *testing.T, tp *topology, st *faultState) {
	info, err := tp.nats.consumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	st.before = int64(info.Delivered.Consumer) - int64(info.Delivered.Stream)
	w := tp.workers[1]
	st.killed = w.Kill()
	st.note("killed %s (%s)", w.Name, st.killed)
	hold(st.tm.fault)
}

func restartWorker(t *testing.T, tp *topology, st *faultState) {
	w := tp.workers[1]
	if err := w.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitReady(t.Context(), "http://"+w.addr+"/ready", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

func checkWorkerBack(t *testing.T, tp *topology, st *faultState, r *result) {
	if st.killed != "signal: killed" {
		t.Errorf("%s ended with %q, not by SIGKILL: the fault did not happen", tp.workers[1].Name, st.killed)
	}
	info, err := tp.nats.consumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	redelivered := int64(info.Delivered.Consumer) - int64(info.Delivered.Stream) - st.before.(int64)
	st.note("%d deliveries were redeliveries (batches the killed worker held)", redelivered)
}

// --- Slow link: the last gateway's link to Redis gets slowDelay each way.

// slowDelay is longer than the gateways' 500ms store deadline.
const slowDelay = 700 * time.Millisecond

var slowLinkFault = fault{name: "redis-slow-link", victimGateway: -1, inject: slowLink, heal: fastLink, check: checkSlowLink}

func slowLink(t *testing.T, tp *topology, st *faultState) {
	tp.proxy.SetDelay(slowDelay)
	st.note("%v added each way between %s and Redis for %v", slowDelay, tp.gateways[2].Name, st.tm.fault)
	hold(st.tm.fault)
}

func fastLink(t *testing.T, tp *topology, st *faultState) { tp.proxy.SetDelay(0) }

// checkSlowLink: the slow gateway's fail-closed API answered 503, no
// other gateway's did, and the slow gateway answered within its deadline
// (plus a second of scheduling slack on a loaded machine) instead of
// waiting for the link.
func checkSlowLink(t *testing.T, tp *topology, st *faultState, r *result) {
	if r.unavailableVia[2] == 0 {
		t.Errorf("no 503 from %s on the fail-closed API while its Redis link was slow: the fault or the guard is absent", tp.gateways[2].Name)
	}
	for gw, n := range r.unavailableVia {
		if gw != 2 {
			t.Errorf("%s answered %d 503s though its link to Redis was fast", tp.gateways[gw].Name, n)
		}
	}
	for gw := range tp.gateways {
		st.note("%s: slowest answer during the fault %v", tp.gateways[gw].Name, r.slowest[gw].Round(time.Millisecond))
	}
	if d := r.slowest[2]; d > 500*time.Millisecond+time.Second {
		t.Errorf("%s took %v to answer with a 500ms store deadline", tp.gateways[2].Name, d)
	}
}

// --- Sentinel: kill -9 the primary; the sentinels promote the replica;
// the old primary comes back and is made a replica.

var sentinelKillFault = fault{name: "sentinel-primary-kill", victimGateway: -1, inject: killSentinelPrimary, heal: restartSentinelPrimary, check: checkSentinelFailover}

func killSentinelPrimary(t *testing.T, tp *topology, st *faultState) {
	s := tp.sentinel
	s.Primary.Kill()
	st.note("killed Redis primary %s (SIGKILL)", s.Primary.Addr())
	start := time.Now()
	testutil.WaitFor(t, 60*time.Second, func() error {
		addr, err := s.PrimaryAddr(t.Context(), t)
		if err != nil {
			return err
		}
		if addr != s.Replica.Addr() {
			return fmt.Errorf("the sentinels still name %s", addr)
		}
		return nil
	})
	st.note("the sentinels promoted %s %v after the kill", s.Replica.Addr(), time.Since(start).Round(10*time.Millisecond))
	hold(max(0, st.tm.fault-time.Since(start)))
}

func restartSentinelPrimary(t *testing.T, tp *topology, st *faultState) {
	tp.sentinel.Primary.Start()
}

func checkSentinelFailover(t *testing.T, tp *topology, st *faultState, r *result) {
	s := tp.sentinel
	testutil.WaitFor(t, 60*time.Second, func() error {
		role, err := s.Primary.Role(t.Context())
		if err != nil {
			return err
		}
		if role != "slave" {
			return fmt.Errorf("the old primary is a %s", role)
		}
		return nil
	})
	if r.unavailable == 0 {
		t.Errorf("no 503 on the fail-closed API while the primary was down: the fault or the guard is absent")
	}
	over := r.maxDuring - (hammerRate + hammerBurst)
	st.note("over-admission of the hammered key: %d requests above %d in its worst second", max(0, over), hammerRate+hammerBurst)
	// Swap the roles so a further run starts from a primary again.
	s.Primary, s.Replica = s.Replica, s.Primary
}
