package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// setting is one `key = value` line of sysctl/relay.conf with the comment
// block right above it.
type setting struct {
	Key, Value, Rule string
	Optional         bool     // written `-key = value`
	Comment          []string // the block's lines other than `# check:`
	Line             int
}

var (
	settingLine = regexp.MustCompile(`^(-?)([a-z][a-z0-9_.-]*)\s*=\s*(.+)$`)
	checkLine   = regexp.MustCompile(`^#\s*check:\s*([a-z]+)$`)
)

// readConf parses relay.conf the way tune.sh does.
func readConf(t *testing.T) []setting {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("sysctl", "relay.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []setting
		comment []string
		rule    string
	)
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			comment, rule = nil, ""
		case checkLine.MatchString(line):
			rule = checkLine.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "#"):
			comment = append(comment, line)
		default:
			m := settingLine.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("relay.conf:%d: not a setting: %q", i+1, line)
			}
			out = append(out, setting{Key: m[2], Value: strings.Join(strings.Fields(m[3]), " "),
				Rule: rule, Optional: m[1] == "-", Comment: comment, Line: i + 1})
			comment, rule = nil, ""
		}
	}
	if len(out) == 0 {
		t.Fatal("relay.conf holds no settings")
	}
	return out
}

// row is one entry of `tune.sh check --json`.
type row struct {
	Key     string `json:"key"`
	Current string `json:"current"`
	Wanted  string `json:"wanted"`
	OK      bool   `json:"ok"`
	Rule    string `json:"rule"`
	Status  string `json:"status"`
}

// tune runs tune.sh with args and the given environment on top of ours
// (without any RELAY_* variable of ours that steers the script). It
// returns stdout and the exit code; stderr goes to the test log.
func tune(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"tune.sh"}, args...)...)
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "RELAY_PROC_SYS", "RELAY_SYSCTL_DIR", "RELAY_NOFILE":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stderr.Len() > 0 {
		t.Logf("tune.sh %s stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), exit.ExitCode()
	default:
		t.Fatalf("tune.sh %s: %v", strings.Join(args, " "), err)
		return "", -1
	}
}

func parseRows(t *testing.T, out string) map[string]row {
	t.Helper()
	var rows []row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("check --json is not JSON: %v\n%s", err, out)
	}
	byKey := make(map[string]row, len(rows))
	for _, r := range rows {
		if _, dup := byKey[r.Key]; dup {
			t.Errorf("check --json lists %s twice", r.Key)
		}
		byKey[r.Key] = r
	}
	return byKey
}

// fakeProcSys writes a sysctl tree holding every key of relay.conf at its
// wanted value, with the overrides applied (an empty value leaves the key
// out, as if absent on this kernel). It returns the tree's root.
func fakeProcSys(t *testing.T, conf []setting, override map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, s := range conf {
		v, ok := override[s.Key]
		if !ok {
			v = s.Value
		}
		if v == "" {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(strings.ReplaceAll(s.Key, ".", "/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(v, " ", "\t")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readTree(t *testing.T, root string, conf []setting) map[string]string {
	t.Helper()
	vals := make(map[string]string, len(conf))
	for _, s := range conf {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(strings.ReplaceAll(s.Key, ".", "/"))))
		if err == nil {
			vals[s.Key] = strings.Join(strings.Fields(string(b)), " ")
		}
	}
	return vals
}

func TestScriptsParse(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	scripts, err := filepath.Glob("*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
}

func TestConfEverySettingExplained(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range readConf(t) {
		if seen[s.Key] {
			t.Errorf("relay.conf:%d: %s set twice", s.Line, s.Key)
		}
		seen[s.Key] = true
		if len(s.Comment) == 0 {
			t.Errorf("relay.conf:%d: %s has no comment block right above it", s.Line, s.Key)
		}
		switch s.Rule {
		case "min", "max", "exact", "range", "buf":
		default:
			t.Errorf("relay.conf:%d: %s: rule %q, want a '# check:' line with min, max, exact, range or buf", s.Line, s.Key, s.Rule)
		}
	}
	for _, key := range []string{"fs.file-max", "fs.nr_open", "net.ipv4.ip_local_port_range", "net.core.somaxconn",
		"net.ipv4.tcp_max_syn_backlog", "net.core.netdev_max_backlog", "net.ipv4.tcp_mem", "net.ipv4.tcp_rmem",
		"net.ipv4.tcp_wmem", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_tw_buckets",
		"net.netfilter.nf_conntrack_max", "net.ipv4.tcp_max_orphans", "net.core.rmem_max", "net.core.wmem_max"} {
		if !seen[key] {
			t.Errorf("relay.conf does not set %s", key)
		}
	}
}

func TestCheckJSONListsEveryKey(t *testing.T) {
	conf := readConf(t)
	out, code := tune(t, nil, "check", "--json")
	if code != 0 && code != 1 {
		t.Fatalf("check --json exited %d, want 0 or 1", code)
	}
	rows := parseRows(t, out)
	short := false
	for _, s := range conf {
		r, ok := rows[s.Key]
		if !ok {
			t.Errorf("check --json does not list %s", s.Key)
			continue
		}
		if r.Wanted != s.Value || r.Rule != s.Rule {
			t.Errorf("%s: wanted %q rule %q, relay.conf has %q %q", s.Key, r.Wanted, r.Rule, s.Value, s.Rule)
		}
	}
	for _, key := range []string{"nofile.hard", "nofile.soft", "nofile.systemd.relay"} {
		if _, ok := rows[key]; !ok {
			t.Errorf("check --json does not list %s", key)
		}
	}
	for _, r := range rows {
		if r.OK != (r.Status != "SHORT") {
			t.Errorf("%s: ok %v with status %s", r.Key, r.OK, r.Status)
		}
		if (r.Current == "absent") != (r.Status == "absent") {
			t.Errorf("%s: current %q with status %s", r.Key, r.Current, r.Status)
		}
		short = short || !r.OK
	}
	if short != (code == 1) {
		t.Errorf("exit code %d, but short settings: %v", code, short)
	}
}

// TestCheckRules pins which way each rule may differ from relay.conf.
func TestCheckRules(t *testing.T) {
	conf := readConf(t)
	for _, tc := range []struct {
		key, value, status string
	}{
		{"fs.file-max", "9223372036854775807", "OK"},
		{"fs.file-max", "4194303", "SHORT"},
		{"fs.file-max", "many", "SHORT"},
		{"net.ipv4.ip_local_port_range", "1024 65535", "OK"},
		{"net.ipv4.ip_local_port_range", "5000 60295", "OK"},
		{"net.ipv4.ip_local_port_range", "32768 60999", "SHORT"},
		{"net.ipv4.tcp_mem", "900000 1100000 2000000", "OK"},
		{"net.ipv4.tcp_mem", "786432 1048575 1572864", "SHORT"},
		{"net.ipv4.tcp_rmem", "4096 4096 6291456", "OK"},
		{"net.ipv4.tcp_rmem", "4096 131072 33554432", "SHORT"},
		{"net.ipv4.tcp_wmem", "8192 4096 4194304", "SHORT"},
		{"net.ipv4.tcp_wmem", "4096 16384 4194304", "SHORT"},
		{"net.ipv4.tcp_fin_timeout", "10", "OK"},
		{"net.ipv4.tcp_fin_timeout", "60", "SHORT"},
		{"net.ipv4.tcp_tw_reuse", "2", "SHORT"},
		{"net.ipv4.tcp_tw_reuse", "0", "SHORT"},
		{"net.netfilter.nf_conntrack_max", "", "absent"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			root := fakeProcSys(t, conf, map[string]string{tc.key: tc.value})
			out, code := tune(t, []string{"RELAY_PROC_SYS=" + root, "RELAY_NOFILE=1"}, "check", "--json")
			r := parseRows(t, out)[tc.key]
			if r.Status != tc.status {
				t.Errorf("status %s, want %s (%+v)", r.Status, tc.status, r)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.status == "SHORT"]; code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
		})
	}
}

// TestApplyDryRun runs against the real kernel: it must change nothing
// there and write the file only where RELAY_SYSCTL_DIR points.
func TestApplyDryRun(t *testing.T) {
	conf := readConf(t)
	before := readTree(t, "/proc/sys", conf)
	dir := t.TempDir()
	out, code := tune(t, []string{"RELAY_SYSCTL_DIR=" + dir}, "apply", "--dry-run")
	if code != 0 {
		t.Fatalf("apply --dry-run exited %d:\n%s", code, out)
	}
	installed, err := os.ReadFile(filepath.Join(dir, "90-relay.conf"))
	if err != nil {
		t.Fatalf("apply --dry-run wrote no file to RELAY_SYSCTL_DIR: %v\n%s", err, out)
	}
	for _, s := range conf {
		if !strings.Contains(out, s.Key) {
			t.Errorf("apply --dry-run does not mention %s:\n%s", s.Key, out)
		}
		if !strings.Contains(string(installed), s.Key+" = ") {
			t.Errorf("installed file does not set %s", s.Key)
		}
	}
	after := readTree(t, "/proc/sys", conf)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("apply --dry-run changed %s: %q -> %q", k, v, after[k])
		}
	}
}

// TestApplyIdempotent applies to a copy of a sysctl tree: short values are
// set, values that already pass are kept (and so written into the
// installed file), absent keys are skipped, and a second run changes
// nothing.
func TestApplyIdempotent(t *testing.T) {
	conf := readConf(t)
	root := fakeProcSys(t, conf, map[string]string{
		"fs.file-max":                        "9223372036854775807",
		"net.core.somaxconn":                 "4096",
		"net.ipv4.tcp_rmem":                  "4096 131072 33554432",
		"net.ipv4.ip_local_port_range":       "32768 60999",
		"net.netfilter.nf_conntrack_buckets": "",
	})
	dir := t.TempDir()
	env := []string{"RELAY_PROC_SYS=" + root, "RELAY_SYSCTL_DIR=" + dir, "RELAY_NOFILE=1"}

	out, code := tune(t, env, "apply")
	if code != 0 {
		t.Fatalf("apply exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		"changed   net.core.somaxconn: 4096 -> 65535",
		"kept      fs.file-max = 9223372036854775807",
		"skip      net.netfilter.nf_conntrack_buckets",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	vals := readTree(t, root, conf)
	if vals["fs.file-max"] != "9223372036854775807" || vals["net.ipv4.tcp_rmem"] != "4096 4096 33554432" {
		t.Errorf("after apply: %v", vals)
	}
	dest := filepath.Join(dir, "90-relay.conf")
	first, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "\nfs.file-max = 9223372036854775807\n") {
		t.Errorf("installed file does not keep fs.file-max:\n%s", first)
	}

	out, code = tune(t, env, "apply")
	if code != 0 || regexp.MustCompile(`(?m)^changed `).MatchString(out) || !strings.Contains(out, "unchanged "+dest) {
		t.Errorf("second apply (exit %d) changed something:\n%s", code, out)
	}
	if second, _ := os.ReadFile(dest); !bytes.Equal(first, second) {
		t.Error("second apply rewrote the installed file differently")
	}
	if out, code := tune(t, env, "check"); code != 0 {
		t.Errorf("check after apply exited %d:\n%s", code, out)
	}
}

// TestUnitAgrees keeps the unit, tune.sh, relay.conf, the env example and
// `relay serve` in step.
func TestUnitAgrees(t *testing.T) {
	unit := readFile(t, filepath.Join("systemd", "relay.service"))
	script := readFile(t, "tune.sh")
	serve := readFile(t, filepath.Join("..", "cmd", "relay", "serve.go"))
	envExample := readFile(t, "relay.env.example")

	limit := directive(t, unit, "LimitNOFILE")
	if m := regexp.MustCompile(`RELAY_NOFILE:-(\d+)`).FindStringSubmatch(script); m == nil || m[1] != limit {
		t.Errorf("tune.sh wants %v open files, the unit sets LimitNOFILE=%s", m, limit)
	}
	for _, s := range readConf(t) {
		if s.Key == "fs.nr_open" && atoi(t, s.Value) < atoi(t, limit) {
			t.Errorf("fs.nr_open %s is below LimitNOFILE=%s: the unit would not start", s.Value, limit)
		}
	}

	stop, err := time.ParseDuration(directive(t, unit, "TimeoutStopSec"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"shutdown-grace", (\d+)\*time\.Second`).FindStringSubmatch(serve)
	if m == nil {
		t.Fatal("cannot find the -shutdown-grace default in cmd/relay/serve.go")
	}
	if grace := time.Duration(atoi(t, m[1])) * time.Second; stop <= grace {
		t.Errorf("TimeoutStopSec=%v is not above the -shutdown-grace default %v", stop, grace)
	}

	for _, env := range regexp.MustCompile(`"(RELAY_[A-Z_]+)"`).FindAllStringSubmatch(serve, -1) {
		if !strings.Contains(envExample, "#"+env[1]+"=") {
			t.Errorf("relay.env.example does not show %s", env[1])
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// directive returns the value of an uncommented `Name=value` line.
func directive(t *testing.T, unit, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `=(\S+)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatalf("relay.service has no %s=", name)
	}
	return m[1]
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
