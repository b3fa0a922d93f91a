#!/usr/bin/env bash
# Starts a private single-node Slurm on this machine (munged, slurmctld, slurmd as the current
# user, no systemd, no cgroups), with its key, configuration, state and logs in one folder, for
# the end-to-end tests. Listens on 127.0.0.1 only.
#   LONGSEQ_SLURM_DIR   the folder (required; created)
#   LONGSEQ_SLURM_PORT  slurmctld's port; slurmd takes the next one (default 16817)
#   LONGSEQ_SLURM_CPUS  CPUs the node advertises (default 8: 4-task jobs fit on 2 real cores)
# Prints "export SLURM_CONF=..." for the clients; stop everything with down.sh.
set -euo pipefail
dir=${LONGSEQ_SLURM_DIR:?set LONGSEQ_SLURM_DIR}
port=${LONGSEQ_SLURM_PORT:-16817}
cpus=${LONGSEQ_SLURM_CPUS:-8}
host=$(hostname -s)  # slurmctld insists that SlurmctldHost is this machine's short name
user=$(id -un)
mkdir -p "$dir"/{etc,munge,run,log,state,spool}
chmod 0700 "$dir/munge"
export SLURM_CONF=$dir/etc/slurm.conf
socket=$dir/munge/socket

[ -s "$dir/munge/key" ] || head -c 1024 /dev/urandom > "$dir/munge/key"
chmod 0400 "$dir/munge/key"
munged --force --key-file="$dir/munge/key" --socket="$socket" --pid-file="$dir/run/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"

cat > "$SLURM_CONF" <<CONF
ClusterName=longseq-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
EnforcePartLimits=ALL
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=600
KillWait=5
InactiveLimit=0
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=8192 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

slurmctld -i
slurmd -N "$host"
state=unknown
for _ in $(seq 1 150); do
  state=$(timeout 5 sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
  case $state in idle | mix | alloc) break ;; esac
  sleep 0.2
done
case $state in
  idle | mix | alloc) ;;
  *)
    echo "slurm up: the node is '$state' after 30 s" >&2
    tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    exit 1
    ;;
esac
echo "export SLURM_CONF=$SLURM_CONF"
