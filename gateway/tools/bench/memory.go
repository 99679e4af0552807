package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident memory, from /proc/<pid>/status.
type Memory struct {
	// RSSMiB is the resident set size when read (VmRSS).
	RSSMiB float64 `json:"rss_mib"`
	// PeakMiB is the largest it has been since the process started (VmHWM).
	PeakMiB float64 `json:"peak_rss_mib"`
}

// gatewayMemory reads the active gateway's memory, nil when it does not run.
func (r *run) gatewayMemory() *Memory {
	p := r.active.process()
	if p == nil || p.exited() {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return nil
	}
	m, ok := parseProcStatus(b)
	if !ok {
		return nil
	}
	return &m
}

// parseProcStatus reads VmRSS and VmHWM (in kB) from /proc/<pid>/status;
// ok is false when either is missing.
func parseProcStatus(b []byte) (m Memory, ok bool) {
	var rss, hwm bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, found := strings.Cut(sc.Text(), ":")
		if !found || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			m.RSSMiB, rss = float64(kb)/1024, true
		} else {
			m.PeakMiB, hwm = float64(kb)/1024, true
		}
	}
	return m, rss && hwm
}
