#!/usr/bin/env bash
# Checks and applies the kernel settings a C1M relay node needs
# (deploy/sysctl/relay.conf) and reports the open-file limits.
#
#   tune.sh check [--quiet] [--json]   compare this machine with relay.conf
#   tune.sh apply [--dry-run]          set what is short, install relay.conf
#
# check prints, for every setting of relay.conf and for the open-file
# limits, the key, the current and wanted values, the rule that compares
# them (the `# check:` line above the setting in relay.conf; see there) and
# a status: OK; SHORT, the value fails its rule; absent, the key does not
# exist on this kernel (a module not loaded), not counted; LOW, an
# informational row below the wanted value, not counted. It exits 1 if
# anything is SHORT, 2 on a usage error. --quiet prints only the SHORT
# rows. --json prints the rows as
#   [{"key","current","wanted","ok","rule","status"}, ...]
# with every value a string, current "absent" for absent keys, and ok false
# exactly for SHORT rows; `relay bench` reads it to warn about what caps a
# run.
#
# apply (as root) writes every setting that fails its rule, keeps the ones
# that pass it even when they differ (a bigger fs.file-max stays), installs
# relay.conf with those kept values as $RELAY_SYSCTL_DIR/90-relay.conf so
# that boots agree, and says what sysctl cannot do. A second run changes
# nothing. --dry-run prints the `sysctl -w` commands instead of running
# them, and writes the file only if RELAY_SYSCTL_DIR is set.
#
# Environment:
#   RELAY_SYSCTL_DIR  where apply installs the file (default /etc/sysctl.d)
#   RELAY_NOFILE      open files wanted per process (default 1100000, the
#                     unit's LimitNOFILE)
#   RELAY_PROC_SYS    the sysctl tree read and written (default /proc/sys;
#                     tests point it at a copy)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conf="$here/sysctl/relay.conf"
proc_sys="${RELAY_PROC_SYS:-/proc/sys}"
nofile_wanted="${RELAY_NOFILE:-1100000}"
installed_name=90-relay.conf

usage() {
  echo "usage: tune.sh check [--quiet] [--json] | tune.sh apply [--dry-run]"
}

die() {
  echo "tune.sh: $*" >&2
  exit 2
}

# --- relay.conf ----------------------------------------------------------

# Parallel arrays, one entry per setting of relay.conf, in file order.
keys=() wants=() rules=() optional=()

# load_conf parses relay.conf: a `# check: RULE` line must sit in the
# comment block right above each `key = value` line; a leading `-` marks a
# key that may be absent or refused.
load_conf() {
  local line rule="" n=0 opt key
  local -a f
  [ -r "$conf" ] || die "cannot read $conf"
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    if [ -z "$line" ]; then
      rule=""
      continue
    fi
    if [[ $line =~ ^#[[:space:]]*check:[[:space:]]*([a-z]+)$ ]]; then
      rule="${BASH_REMATCH[1]}"
      continue
    fi
    [[ $line == \#* ]] && continue
    [[ $line =~ ^(-?)([a-z][a-z0-9_.-]*)[[:space:]]*=[[:space:]]*(.+)$ ]] ||
      die "$conf:$n: not a setting: $line"
    opt="${BASH_REMATCH[1]}" key="${BASH_REMATCH[2]}"
    read -ra f <<<"${BASH_REMATCH[3]}"
    case "$rule" in
      min | max | exact | range | buf) ;;
      "") die "$conf:$n: $key has no '# check: RULE' line right above it" ;;
      *) die "$conf:$n: $key: unknown rule '$rule'" ;;
    esac
    keys+=("$key") wants+=("${f[*]}") rules+=("$rule") optional+=("${opt:+yes}")
    rule=""
  done <"$conf"
  [ ${#keys[@]} -gt 0 ] || die "$conf holds no settings"
}

# --- values and rules ----------------------------------------------------

sys_path() {
  printf '%s/%s' "$proc_sys" "${1//.//}"
}

# read_current KEY prints the key's value with single spaces between
# fields; it fails if the key does not exist on this kernel.
read_current() {
  local p
  local -a f
  p=$(sys_path "$1")
  [ -r "$p" ] || return 1
  read -ra f <"$p" || true
  printf '%s' "${f[*]}"
}

# write_value KEY VALUE is `sysctl -w KEY=VALUE` on $proc_sys.
write_value() {
  local p
  p=$(sys_path "$1")
  { printf '%s\n' "$2" >"$p"; } 2>/dev/null
}

# num_ge A B: A >= B for decimal strings of any length (fs.file-max may be
# 2^63-1, beyond what shell arithmetic compares safely after conversion).
num_ge() {
  if [ ${#1} -ne ${#2} ]; then
    [ ${#1} -gt ${#2} ]
    return
  fi
  [[ ! $1 < $2 ]]
}

# passes RULE CURRENT WANTED: whether CURRENT is good enough (see the rules
# at the top of relay.conf).
passes() {
  local rule=$1 i
  local -a c w
  if [ "$rule" = exact ]; then
    [ "$2" = "$3" ]
    return
  fi
  read -ra c <<<"$2"
  read -ra w <<<"$3"
  [ ${#c[@]} -eq ${#w[@]} ] || return 1
  for i in "${!c[@]}"; do
    [[ ${c[i]} =~ ^[0-9]+$ && ${w[i]} =~ ^[0-9]+$ ]] || return 1
  done
  case "$rule" in
    min | info)
      for i in "${!c[@]}"; do num_ge "${c[i]}" "${w[i]}" || return 1; done
      ;;
    max)
      for i in "${!c[@]}"; do num_ge "${w[i]}" "${c[i]}" || return 1; done
      ;;
    range)
      [ ${#c[@]} -eq 2 ] && ((c[1] - c[0] >= w[1] - w[0]))
      ;;
    buf)
      [ ${#c[@]} -eq 3 ] && num_ge "${w[0]}" "${c[0]}" && num_ge "${w[1]}" "${c[1]}"
      ;;
    *) return 1 ;;
  esac
}

# --- check ---------------------------------------------------------------

# Rows of the report, parallel arrays.
r_key=() r_cur=() r_want=() r_rule=() r_status=()

add_row() { # KEY CURRENT WANTED RULE [STATUS]
  local status=${5:-}
  if [ -z "$status" ]; then
    if passes "$4" "$2" "$3"; then
      status=OK
    elif [ "$4" = info ]; then
      status=LOW
    else
      status=SHORT
    fi
  fi
  r_key+=("$1") r_cur+=("$2") r_want+=("$3") r_rule+=("$4") r_status+=("$status")
}

# nofile_value turns a limit as ulimit or systemctl prints it into digits.
nofile_value() {
  case "$1" in
    unlimited | infinity) echo 9223372036854775807 ;;
    *) echo "$1" ;;
  esac
}

collect_rows() {
  local i cur load
  for i in "${!keys[@]}"; do
    if cur=$(read_current "${keys[i]}"); then
      add_row "${keys[i]}" "$cur" "${wants[i]}" "${rules[i]}"
    else
      add_row "${keys[i]}" absent "${wants[i]}" "${rules[i]}" absent
    fi
  done
  # Go programs (the relay, relay bench) raise their soft limit to the hard
  # one at start, so only the hard limit caps them: the soft row is info.
  add_row nofile.hard "$(nofile_value "$(ulimit -Hn)")" "$nofile_wanted" min
  add_row nofile.soft "$(nofile_value "$(ulimit -Sn)")" "$nofile_wanted" info
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    load=$(systemctl show -p LoadState --value relay.service 2>/dev/null || true)
    if [ "$load" = loaded ]; then
      cur=$(systemctl show -p LimitNOFILE --value relay.service 2>/dev/null || echo 0)
      add_row nofile.systemd.relay "$(nofile_value "$cur")" "$nofile_wanted" min
    else
      add_row nofile.systemd.relay absent "$nofile_wanted" min absent
    fi
    cur=$(systemctl show -p DefaultLimitNOFILE --value 2>/dev/null || echo 0)
    add_row nofile.systemd.default "$(nofile_value "$cur")" "$nofile_wanted" info
  else
    add_row nofile.systemd.relay absent "$nofile_wanted" min absent
    add_row nofile.systemd.default absent "$nofile_wanted" info absent
  fi
}

print_row() {
  printf '%-36s %-24s %-24s %-6s %s\n' "$@"
}

json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

check() {
  local quiet=no json=no i sep="" short=() low=()
  for arg in "$@"; do
    case "$arg" in
      --quiet | -q) quiet=yes ;;
      --json) json=yes ;;
      *) usage >&2 && exit 2 ;;
    esac
  done
  load_conf
  collect_rows
  for i in "${!r_key[@]}"; do
    [ "${r_status[i]}" = SHORT ] && short+=("${r_key[i]}")
    [ "${r_status[i]}" = LOW ] && low+=("${r_key[i]}")
  done

  if [ $json = yes ]; then
    printf '['
    for i in "${!r_key[@]}"; do
      [ $quiet = yes ] && [ "${r_status[i]}" != SHORT ] && continue
      printf '%s\n  {"key":%s,"current":%s,"wanted":%s,"ok":%s,"rule":%s,"status":%s}' "$sep" \
        "$(json_str "${r_key[i]}")" "$(json_str "${r_cur[i]}")" "$(json_str "${r_want[i]}")" \
        "$([ "${r_status[i]}" = SHORT ] && echo false || echo true)" \
        "$(json_str "${r_rule[i]}")" "$(json_str "${r_status[i]}")"
      sep=,
    done
    [ -n "$sep" ] && printf '\n'
    printf ']\n'
  else
    [ $quiet = yes ] || print_row KEY CURRENT WANTED RULE STATUS
    for i in "${!r_key[@]}"; do
      [ $quiet = yes ] && [ "${r_status[i]}" != SHORT ] && continue
      print_row "${r_key[i]}" "${r_cur[i]}" "${r_want[i]}" "${r_rule[i]}" "${r_status[i]}"
    done
    if [ $quiet = no ]; then
      echo
      if [ ${#short[@]} -gt 0 ]; then
        echo "${#short[@]} short: ${short[*]}"
        echo "  kernel settings: sudo $here/tune.sh apply; open files: LimitNOFILE in the unit or limits.conf (deploy/README.md)"
      else
        echo "nothing short"
      fi
      if [ ${#low[@]} -gt 0 ]; then
        echo "LOW, not counted: ${low[*]} (Go programs such as relay and relay bench raise the soft limit to the hard one; relay.service sets its own limit, not systemd's default)"
      fi
    fi
  fi
  [ ${#short[@]} -eq 0 ]
}

# --- apply ---------------------------------------------------------------

declare -A kept=()

# render_conf prints relay.conf as installed: values that apply kept
# replace the wanted ones, so that a boot does not weaken them.
render_conf() {
  local line key
  echo "# Installed by deploy/tune.sh apply from deploy/sysctl/relay.conf; change that file and run apply again."
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^(-?)([a-z][a-z0-9_.-]*)[[:space:]]*= ]] && [ -n "${kept[${BASH_REMATCH[2]}]+x}" ]; then
      key="${BASH_REMATCH[2]}"
      echo "# tune.sh apply kept this machine's value, which passes the rule above; relay.conf has: ${line#-}"
      echo "${BASH_REMATCH[1]}$key = ${kept[$key]}"
    else
      printf '%s\n' "$line"
    fi
  done <"$conf"
}

install_conf() { # DRY
  local dir="${RELAY_SYSCTL_DIR:-/etc/sysctl.d}" tmp
  local dest="$dir/$installed_name"
  if [ "$1" = yes ] && [ -z "${RELAY_SYSCTL_DIR:-}" ]; then
    echo "would install relay.conf as $dest (set RELAY_SYSCTL_DIR to write it elsewhere)"
    return
  fi
  mkdir -p "$dir"
  tmp=$(mktemp "$dir/.$installed_name.XXXXXX")
  render_conf >"$tmp"
  chmod 0644 "$tmp"
  if cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    echo "unchanged $dest"
  else
    mv -f "$tmp" "$dest"
    echo "installed $dest (applied at every boot by systemd-sysctl)"
  fi
}

apply_notes() {
  cat <<EOF

Not done by sysctl:
  * Open files per process ($nofile_wanted wanted; hard limit here: $(ulimit -Hn)).
    The relay's unit sets it with LimitNOFILE (deploy/systemd/relay.service),
    which fs.nr_open must not be below. For login shells (load generators),
    add to /etc/security/limits.conf and log in again:
      *     soft  nofile  $nofile_wanted
      *     hard  nofile  $nofile_wanted
      root  soft  nofile  $nofile_wanted
      root  hard  nofile  $nofile_wanted
    (the * lines do not cover root).
  * nf_conntrack is optional. Loaded, its keys are set above; not loaded,
    they were skipped and nothing is needed. If a firewall loads it later,
    run apply again, or exempt the relay's port with a raw-table notrack
    rule (see relay.conf).
  * Restart the relay and load generators: the listen backlog and the
    socket buffer defaults apply to sockets opened after the change.
  * net.* settings belong to a network namespace: for a relay in a
    container, apply them in that container's namespace.
EOF
}

apply() {
  local dry=no i key want cur failed=()
  for arg in "$@"; do
    case "$arg" in
      --dry-run | -n) dry=yes ;;
      *) usage >&2 && exit 2 ;;
    esac
  done
  if [ $dry = no ] && [ -z "${RELAY_PROC_SYS:-}" ] && [ "$(id -u)" != 0 ]; then
    die "apply changes kernel settings: run it as root (or with --dry-run)"
  fi
  load_conf
  for i in "${!keys[@]}"; do
    key=${keys[i]} want=${wants[i]}
    if ! cur=$(read_current "$key"); then
      echo "skip      $key: absent on this kernel"
      continue
    fi
    if [ "$cur" = "$want" ]; then
      echo "unchanged $key = $cur"
    elif passes "${rules[i]}" "$cur" "$want"; then
      kept[$key]=$cur
      echo "kept      $key = $cur (passes '${rules[i]}' against $want)"
    elif [ $dry = yes ]; then
      echo "sysctl -w $key='$want'   # now $cur"
    elif write_value "$key" "$want" && [ "$(read_current "$key")" = "$want" ]; then
      echo "changed   $key: $cur -> $want"
    elif [ -n "${optional[i]}" ]; then
      echo "skip      $key: the kernel refused $want (optional; still $cur)"
    else
      echo "FAILED    $key: the kernel refused $want (still $cur)" >&2
      failed+=("$key")
    fi
  done
  install_conf "$dry"
  apply_notes
  if [ ${#failed[@]} -gt 0 ]; then
    echo "tune.sh: not applied: ${failed[*]}" >&2
    exit 1
  fi
}

case "${1:-}" in
  check) shift && check "$@" ;;
  apply) shift && apply "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2 && exit 2 ;;
esac
