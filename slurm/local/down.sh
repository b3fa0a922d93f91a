#!/usr/bin/env bash
# Stops the Slurm that up.sh started in LONGSEQ_SLURM_DIR: its jobs, then slurmd, slurmctld and
# munged, by the process ids in their pid files only.
set -uo pipefail
dir=${LONGSEQ_SLURM_DIR:?set LONGSEQ_SLURM_DIR}
export SLURM_CONF=$dir/etc/slurm.conf
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if running "$dir/run/slurmctld.pid"; then
  timeout 10 scancel --full --state=PENDING,RUNNING 2>/dev/null || true
fi
pids=()
for daemon in slurmd slurmctld munged; do
  if running "$dir/run/$daemon.pid"; then
    pid=$(cat "$dir/run/$daemon.pid")
    pids+=("$pid")
    kill -TERM "$pid"
  fi
done
for _ in $(seq 1 100); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"; done
# Job steps whose slurmstepd outlived slurmd: only those of this folder's cluster.
for pid in $(pgrep -x slurmstepd 2>/dev/null); do
  grep -qa -- "$dir" "/proc/$pid/environ" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done
rm -f "$dir"/run/*.pid
exit 0
