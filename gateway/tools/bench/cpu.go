package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on
// Linux on every architecture Go supports).
const clockTicks = 100

// CPU is the CPU time (user + system) each process of the benchmark used
// during a scenario's measured interval, in seconds. Harness includes the
// embedded NATS server, the churn and the Go load generator or the latency
// probe.
type CPU struct {
	Gateway  float64 `json:"gateway"`
	Hop      float64 `json:"bare_hop"`
	Upstream float64 `json:"upstream"`
	Redis    float64 `json:"redis"`
	Harness  float64 `json:"harness"`
	Wrk      float64 `json:"wrk,omitempty"`
	// Machine is the CPU time every process on the machine used (from
	// /proc/stat), and Steal the time the hypervisor gave to other guests:
	// Machine minus the benchmark's own processes is other work on a
	// shared machine, competing for the same cores.
	Machine float64 `json:"machine"`
	Steal   float64 `json:"steal"`
}

// Others is the CPU time of processes outside the benchmark.
func (c CPU) Others() float64 {
	return max(0, c.Machine-(c.Gateway+c.Hop+c.Upstream+c.Redis+c.Harness+c.Wrk))
}

func (c CPU) sub(b CPU) CPU {
	return CPU{Gateway: c.Gateway - b.Gateway, Hop: c.Hop - b.Hop, Upstream: c.Upstream - b.Upstream,
		Redis: c.Redis - b.Redis, Harness: c.Harness - b.Harness, Wrk: c.Wrk - b.Wrk,
		Machine: c.Machine - b.Machine, Steal: c.Steal - b.Steal}
}

// cpuNow reads the CPU time of every process the harness started and of
// itself.
func (r *run) cpuNow() CPU {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c := CPU{
		Gateway: procCPU(r.active.process()), Hop: procCPU(r.procs.hop), Upstream: procCPU(r.procs.upstream),
		Redis: procCPU(r.procs.redis), Harness: tv(ru.Utime) + tv(ru.Stime),
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		c.Machine, c.Steal = parseProcStat(b)
	}
	return c
}

// parseProcStat reads the busy time (user, nice, system, irq, softirq) and
// the steal time of all CPUs from /proc/stat's first line, in seconds.
func parseProcStat(b []byte) (busy, steal float64) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, 0
	}
	v := make([]int64, 8)
	for i := range v {
		v[i], _ = strconv.ParseInt(string(f[i+1]), 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	return float64(v[0]+v[1]+v[2]+v[5]+v[6]) / clockTicks, float64(v[7]) / clockTicks
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// procCPU is utime + stime of a running child, 0 when it is not running.
func procCPU(p *process) float64 {
	if p == nil || p.exited() {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	return parseProcStatCPU(b)
}

// parseProcStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line; the command name (field 2) may hold spaces, so
// fields are counted after its closing parenthesis.
func parseProcStatCPU(b []byte) float64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return float64(ut+st) / clockTicks
}

// writeCPU prints each scenario's CPU per request by process.
func writeCPU(w io.Writer, results []*Result) {
	fmt.Fprintln(w, "\nCPU per request (µs) by process during the measured interval (user + system):")
	row := "%-26s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n"
	fmt.Fprintf(w, row, "scenario", "gateway", "hop", "upstream", "redis", "harness", "wrk", "total", "others", "steal")
	us := func(s float64, n int64) string { return fmt.Sprintf("%.1f", s/float64(n)*1e6) }
	for _, r := range results {
		if r.Skipped != "" || r.CPU == nil || r.Requests == 0 {
			continue
		}
		c, n := r.CPU, r.Requests
		total := c.Gateway + c.Hop + c.Upstream + c.Redis + c.Harness + c.Wrk
		fmt.Fprintf(w, row, r.Name, us(c.Gateway, n), us(c.Hop, n), us(c.Upstream, n), us(c.Redis, n),
			us(c.Harness, n), us(c.Wrk, n), us(total, n), us(c.Others(), n), us(c.Steal, n))
	}
	fmt.Fprintln(w, "others: CPU time of processes outside the benchmark (a shared machine's other work); steal: time the\n"+
		"hypervisor ran other guests. Both take cores the benchmark's processes would otherwise have had.")
}
