#!/usr/bin/env bash
# Start a real single-node SLURM cluster for lesionflow's tests (Debian 12, slurm-wlm 22.05).
#
# What it sets up (everything on 127.0.0.1, no systemd, no slurmdbd):
#   * munged   (reused if one already answers; only a munged started here is recorded)
#   * slurmctld + slurmd, one node, one partition (default name: main)
#   * one fake GPU (gres/gpu backed by a character device with /dev/null's numbers):
#     jobs asking for a GPU get CUDA_VISIBLE_DEVICES=0 and queue one after the other
#   * DefMemPerCPU + RealMemory, so several small 1-CPU jobs run side by side
#
# Must run as root. Installs the Debian packages (slurmctld slurmd slurm-client munge) when
# they are missing. Idempotent: when the cluster from an earlier call is still up with the
# same configuration it is left alone; otherwise it is (re)started from a clean state.
#
# Environment:
#   LESIONFLOW_SLURM_DIR        base dir for state, logs, pids   (default /tmp/lesionflow-slurm)
#   LESIONFLOW_SLURM_PARTITION  partition name                   (default main)
#   LESIONFLOW_SLURM_CPUS       CPUs the node advertises         (default max(nproc, 4))
#   LESIONFLOW_SLURM_MEM_MB     RealMemory of the node in MB     (default 80% of MemTotal)
#   LESIONFLOW_SLURM_SMOKE=0    skip the final srun smoke test
#
# Exit status: 0 cluster up; 1 it failed to start (the tail of the daemon logs is printed);
#              3 the packages cannot be installed here (not root, no apt-get, apt-get failed).
# PIDs of the daemons started here are in $LESIONFLOW_SLURM_DIR/pids/*.pid; stop with
# stop_slurm.sh (same environment).
set -euo pipefail

BASE=${LESIONFLOW_SLURM_DIR:-/tmp/lesionflow-slurm}
PARTITION=${LESIONFLOW_SLURM_PARTITION:-main}
NCPU=$(nproc)
CPUS=${LESIONFLOW_SLURM_CPUS:-$(( NCPU > 4 ? NCPU : 4 ))}
MEM_MB=${LESIONFLOW_SLURM_MEM_MB:-$(( $(awk '/^MemTotal:/{print $2}' /proc/meminfo) / 1024 * 80 / 100 ))}
SMOKE=${LESIONFLOW_SLURM_SMOKE:-1}
NODE=$(hostname -s 2>/dev/null || hostname)
NODE=${NODE:-localhost}
CONF_DIR=/etc/slurm
MARKER="# managed-by: lesionflow tests/slurm/start_slurm.sh"
EXIT_CANNOT_INSTALL=3

PIDS="$BASE/pids"
LOGS="$BASE/log"

log() { echo "start_slurm.sh: $*"; }

show_logs() {
  local f
  for f in "$LOGS"/munged.out "$LOGS"/slurmctld.out "$LOGS"/slurmctld.log "$LOGS"/slurmd.out "$LOGS"/slurmd.log; do
    [[ -s "$f" ]] || continue
    echo "----- tail -n 30 $f" >&2
    tail -n 30 "$f" >&2 || true
  done
}

STARTED=()   # daemons started by this invocation, stopped again if it fails
die() {
  echo "start_slurm.sh: ERROR: $*" >&2
  show_logs
  local i
  for (( i=${#STARTED[@]}-1; i>=0; i-- )); do stop_one "${STARTED[i]}"; done
  exit 1
}

cannot_install() {
  echo "start_slurm.sh: CANNOT INSTALL SLURM: $*" >&2
  exit "$EXIT_CANNOT_INSTALL"
}

# is the pid in file $1 alive and still the program named $2?
alive() {
  local f=$1 name=$2 pid
  [[ -s "$f" ]] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]]
}

# is process $1 alive and running the program named $2?
is_named() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null \
    && [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]]
}

# launch NAME PIDFILE CMD...: start a daemon in the foreground (-D/--foreground) in its own
# session, its output in $LOGS/NAME.out; records the launcher's pid (the daemon's own pid once
# it has exec'd) in $PIDS/NAME.pid. Until the exec, /proc/PID/comm still names setsid: use
# daemon_alive, not alive, while the daemon starts.
launch() {
  local name=$1 pidfile=$2; shift 2
  rm -f "$pidfile"
  setsid "$@" </dev/null >"$LOGS/$name.out" 2>&1 &
  echo $! > "$PIDS/$name.pid"
  STARTED+=("$name")
}

# daemon_alive NAME PIDFILE: still starting or running (launcher alive, or its own pidfile
# names a live NAME); on success, the daemon's pid is recorded in $PIDS/NAME.pid
daemon_alive() {
  local name=$1 pidfile=$2 p l
  l=$(cat "$PIDS/$name.pid" 2>/dev/null || true)
  if [[ -s "$pidfile" ]]; then
    p=$(cat "$pidfile")
    if is_named "$p" "$name"; then
      [[ "$p" == "$l" ]] || echo "$p" > "$PIDS/$name.pid"
      return 0
    fi
  fi
  [[ "$l" =~ ^[0-9]+$ ]] && kill -0 "$l" 2>/dev/null
}

# stop the daemon recorded in $PIDS/$1.pid (only ours, by PID)
stop_one() {
  local name=$1 f="$PIDS/$1.pid" pid
  if alive "$f" "$name"; then
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

[[ "$CPUS" =~ ^[1-9][0-9]*$ ]] || { echo "start_slurm.sh: ERROR: LESIONFLOW_SLURM_CPUS='$CPUS' is not a positive integer" >&2; exit 1; }
[[ "$MEM_MB" =~ ^[1-9][0-9]*$ ]] || { echo "start_slurm.sh: ERROR: LESIONFLOW_SLURM_MEM_MB='$MEM_MB' is not a positive integer" >&2; exit 1; }
[[ "$PARTITION" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "start_slurm.sh: ERROR: bad partition name '$PARTITION'" >&2; exit 1; }

# ------------------------------------------------------------------ root + packages
[[ $EUID -eq 0 ]] || cannot_install "must run as root (uid is $EUID)"

need_pkgs="slurmctld slurmd slurm-client munge"
missing=""
for p in $need_pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [[ -n "$missing" ]]; then
  command -v apt-get >/dev/null || cannot_install "packages missing ($missing) and there is no apt-get"
  log "installing$missing (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # keep apt from starting the daemons itself (no systemd; we start them by hand)
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  rc=0
  timeout 600 apt-get -o DPkg::Lock::Timeout=300 update -qq || rc=$?
  if [[ $rc -eq 0 ]]; then
    # shellcheck disable=SC2086
    timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing \
      || rc=$?
  fi
  [[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
  [[ $rc -eq 0 ]] || cannot_install "apt-get failed (exit $rc) installing:$missing"
fi
for b in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/munged /usr/bin/sinfo /usr/bin/sbatch; do
  [[ -x "$b" ]] || die "$b missing after installing the packages"
done

mkdir -p "$PIDS" "$LOGS" "$BASE/dev" "$BASE/run"

# ------------------------------------------------------------------ configuration
# Fake GPU: slurm 22.05 drops a GPU without File= ("Removing file-less GPU") and rejects a
# regular file; a char device with /dev/null's numbers works. The trailing 0 of the name
# gives CUDA_VISIBLE_DEVICES=0 in jobs.
GPU_DEV="$BASE/dev/nvidia0"
if [[ ! -c "$GPU_DEV" ]]; then
  rm -f "$GPU_DEV"
  mknod -m 666 "$GPU_DEV" c 1 3 2>/dev/null || ln -s /dev/null "$GPU_DEV"
fi
[[ -c "$GPU_DEV" ]] || die "could not create the fake GPU device $GPU_DEV"

NEW_CONF="$BASE/slurm.conf.new"
NEW_GRES="$BASE/gres.conf.new"
cat > "$NEW_CONF" <<EOF
$MARKER
# Single-node test cluster; regenerate with start_slurm.sh, do not edit.
ClusterName=lesionflow
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups: no cgroup.conf needed, works in containers
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without DefMemPerCPU every job without --mem takes the whole node => jobs serialise
DefMemPerCPU=500
SchedulerType=sched/backfill
# The main scheduler stops at the first job of a partition that must wait (e.g. for the
# GPU); jobs behind it start only at the next backfill cycle (default every 30 s).
SchedulerParameters=bf_interval=1
ReturnToService=2
# the node advertises the CPUs/memory below even on a smaller machine (no DRAIN)
SlurmdParameters=config_overrides
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/state/slurmctld
SlurmdSpoolDir=$BASE/state/slurmd
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# finished jobs stay visible to squeue/scontrol for 300 s: the snakemake plugin's
# 'squeue' status command needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
JobCompType=jobcomp/none
# no slurmdbd (AccountingStorageTRES=gres/gpu would make slurmctld refuse to start)
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
cat > "$NEW_GRES" <<EOF
$MARKER
AutoDetect=off
NodeName=${NODE} Name=gpu Count=1 File=${GPU_DEV}
EOF

same_config=0
if cmp -s "$NEW_CONF" "$CONF_DIR/slurm.conf" && cmp -s "$NEW_GRES" "$CONF_DIR/gres.conf"; then
  same_config=1
fi

# ------------------------------------------------------------------ already up? (idempotent)
node_state() { timeout 5 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true; }
if [[ $same_config == 1 ]] && alive "$PIDS/slurmctld.pid" slurmctld && alive "$PIDS/slurmd.pid" slurmd \
   && timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
  case "$(node_state)" in
    idle|mixed|allocated|completing)
      log "already running (node $NODE, partition $PARTITION, base $BASE)"
      exit 0 ;;
  esac
fi

# ------------------------------------------------------------------ (re)start from scratch
stop_one slurmd
stop_one slurmctld

# never overwrite the configuration of a real SLURM installation
for f in slurm.conf gres.conf; do
  if [[ -e "$CONF_DIR/$f" ]] && ! grep -qF "$MARKER" "$CONF_DIR/$f"; then
    if timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; then
      die "$CONF_DIR/$f belongs to a SLURM installation whose slurmctld is running; not touching it"
    fi
    log "moving foreign $CONF_DIR/$f aside to $CONF_DIR/$f.before-lesionflow"
    mv -f "$CONF_DIR/$f" "$CONF_DIR/$f.before-lesionflow"
  fi
done
mkdir -p "$CONF_DIR"
install -m 0644 "$NEW_CONF" "$CONF_DIR/slurm.conf"
install -m 0644 "$NEW_GRES" "$CONF_DIR/gres.conf"

# clean state: no jobs, no DRAIN, job ids from 1
rm -rf "$BASE/state"
install -d -o slurm -g slurm -m 0755 "$BASE/state/slurmctld"
install -d -m 0755 "$BASE/state/slurmd"
chown slurm:slurm "$LOGS" "$BASE/run"
rm -f "$LOGS"/slurmctld.* "$LOGS"/slurmd.*

# ------------------------------------------------------------------ munge
munge_ok() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  stop_one munged
  install -d -o munge -g munge -m 0755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/mungekey --create \
      || die "could not create /etc/munge/munge.key"
  fi
  launch munged /run/munge/munged.pid \
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
  for _ in $(seq 1 50); do
    munge_ok && break
    daemon_alive munged /run/munge/munged.pid || { sleep 0.3; daemon_alive munged /run/munge/munged.pid; } \
      || die "munged exited during start-up"
    sleep 0.2
  done
  munge_ok || die "munged does not answer within 10 s"
  daemon_alive munged /run/munge/munged.pid || true
  alive "$PIDS/munged.pid" munged || die "munged answers, but its pid is unknown"
fi

# ------------------------------------------------------------------ slurmctld
CTLD_PIDFILE="$BASE/run/slurmctld.pid"
launch slurmctld "$CTLD_PIDFILE" /usr/sbin/slurmctld -D
up=0
for _ in $(seq 1 120); do
  if timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; then up=1; break; fi
  daemon_alive slurmctld "$CTLD_PIDFILE" || { sleep 0.3; daemon_alive slurmctld "$CTLD_PIDFILE"; } \
    || die "slurmctld exited during start-up"
  sleep 0.25
done
[[ $up == 1 ]] || die "slurmctld did not answer 'scontrol ping' within 30 s"
daemon_alive slurmctld "$CTLD_PIDFILE" || true
alive "$PIDS/slurmctld.pid" slurmctld || die "slurmctld answers, but its pid is unknown"

# ------------------------------------------------------------------ slurmd
SLURMD_PIDFILE="$BASE/run/slurmd.pid"
launch slurmd "$SLURMD_PIDFILE" /usr/sbin/slurmd -D -N "$NODE"
ready=0
for _ in $(seq 1 120); do
  daemon_alive slurmd "$SLURMD_PIDFILE" || { sleep 0.3; daemon_alive slurmd "$SLURMD_PIDFILE"; } \
    || die "slurmd exited during start-up"
  st=$(node_state)
  case "$st" in
    idle|mixed|allocated) ready=1; break ;;
    drain*|drained*|inval*|down*)
      timeout 5 scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.25
done
if [[ $ready != 1 ]]; then
  timeout 5 scontrol show node "$NODE" >&2 || true
  die "node $NODE not idle within 30 s (state: '${st:-none}')"
fi
daemon_alive slurmd "$SLURMD_PIDFILE" || true
alive "$PIDS/slurmd.pid" slurmd || die "slurmd runs, but its pid is unknown"
timeout 5 scontrol show node "$NODE" 2>/dev/null | grep -q 'Gres=gpu:1' \
  || die "node $NODE does not offer the fake GPU (Gres=gpu:1)"

# ------------------------------------------------------------------ smoke test
if [[ $SMOKE != 0 ]]; then
  out=$(cd /tmp && timeout 60 srun -p "$PARTITION" -n1 -t 1 --mem=50 --gpus=1 \
        printenv CUDA_VISIBLE_DEVICES 2>&1) || die "smoke test srun failed: $out"
  [[ "$out" == "0" ]] || die "smoke test: GPU job saw CUDA_VISIBLE_DEVICES='$out', expected 0"
fi

timeout 5 sinfo -N -o '%N %P %T %c %m %G' || true
log "SLURM up: node $NODE, partition $PARTITION, $CPUS CPUs, ${MEM_MB} MB, 1 fake GPU; base $BASE"
