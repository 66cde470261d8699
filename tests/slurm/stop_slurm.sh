#!/usr/bin/env bash
# Stop the single-node SLURM started by start_slurm.sh: by the PIDs it recorded, never by name.
# Order matters: slurmd first (it may ignore SIGTERM while slurmctld is gone), then slurmctld,
# then munged (only if start_slurm.sh started it). Jobs still queued or running are cancelled
# first. Logs and state stay in $LESIONFLOW_SLURM_DIR for inspection. Always exits 0 unless a
# daemon survives SIGKILL.
set -uo pipefail

BASE=${LESIONFLOW_SLURM_DIR:-/tmp/lesionflow-slurm}
PIDS="$BASE/pids"
status=0

alive() {
  local f=$1 name=$2 pid
  [[ -s "$f" ]] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]]
}

# cancel leftover jobs so that no job processes outlive the cluster
if alive "$PIDS/slurmctld.pid" slurmctld; then
  if [[ -n "$(timeout 5 squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null)" ]]; then
    echo "stop_slurm.sh: cancelling leftover jobs"
    timeout 10 scancel --quiet --state=PENDING 2>/dev/null || true
    timeout 10 scancel --quiet --state=RUNNING 2>/dev/null || true
    for _ in $(seq 1 30); do
      [[ -z "$(timeout 5 squeue -h -t RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
fi

for d in slurmd slurmctld munged; do
  f="$PIDS/$d.pid"
  [[ -f "$f" ]] || continue
  if alive "$f" "$d"; then
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      sleep 0.5
      if kill -0 "$pid" 2>/dev/null; then
        echo "stop_slurm.sh: ERROR: $d ($pid) survives SIGKILL" >&2
        status=1
        continue
      fi
      echo "stop_slurm.sh: killed -9 $d ($pid): it did not stop within 10 s"
    else
      echo "stop_slurm.sh: stopped $d ($pid)"
    fi
  fi
  rm -f "$f"
done
exit $status
