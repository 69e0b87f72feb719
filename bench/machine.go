package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// checkTuning runs `deploy/tune.sh check --json` and turns every short
// setting into a warning: they cap the run.
func checkTuning(cfg Config, warnings []string) ([]TuneCheck, []string) {
	script := cfg.TuneScript
	if script == "" {
		script = findTuneScript(cfg.RelayBin)
	}
	if script == "" {
		return []TuneCheck{}, append(warnings, "deploy/tune.sh not found (run from the repository, or pass -tune-script): kernel settings not checked")
	}
	out, _ := exec.Command("bash", script, "check", "--json").Output() // exits 1 when something is short
	var rows []TuneCheck
	var raw []map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		return []TuneCheck{}, append(warnings, fmt.Sprintf("%s check --json gave no JSON: %v", script, err))
	}
	var short []string
	for _, m := range raw {
		tc := TuneCheck{Key: fmt.Sprint(m["key"]), Current: fmt.Sprint(m["current"]), Wanted: fmt.Sprint(m["wanted"])}
		tc.OK, _ = m["ok"].(bool)
		rows = append(rows, tc)
		switch {
		case tc.OK || tc.Current == "absent":
		case strings.HasPrefix(tc.Key, "nofile"):
			warnings = append(warnings, fmt.Sprintf("open-file limit %s is %s, wanted %s: connections per process are capped by it, so the run spreads over more processes (LimitNOFILE or limits.conf; see deploy/README.md)", tc.Key, tc.Current, tc.Wanted))
		default:
			short = append(short, tc.Key)
		}
	}
	if len(short) > 0 {
		warnings = append(warnings, fmt.Sprintf("%d kernel settings are short of deploy/sysctl/relay.conf and can cap the run: %s (sudo deploy/tune.sh apply; details in the report)", len(short), strings.Join(short, ", ")))
	}
	if rows == nil {
		rows = []TuneCheck{}
	}
	return rows, warnings
}

// findTuneScript looks in the working directory, then next to the binary
// (bin/relay -> deploy/tune.sh).
func findTuneScript(bin string) string {
	cands := []string{"deploy/tune.sh"}
	if bin != "" {
		cands = append(cands, filepath.Join(filepath.Dir(bin), "..", "deploy", "tune.sh"))
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c
		}
	}
	return ""
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotal() uint64 { return meminfo("MemTotal:") }

// slabBytes is the kernel's slab memory, where socket structures live.
func slabBytes() uint64 { return meminfo("Slab:") }

// meminfo reads one /proc/meminfo figure, in bytes.
func meminfo(key string) uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
