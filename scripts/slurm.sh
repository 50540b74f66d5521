#!/usr/bin/env bash
# A real single-node SLURM cluster from Debian's slurm-wlm and munge, for the SLURM launcher's
# tests and for trying `mode run --launcher slurm` on one machine:
#
#   bash scripts/slurm.sh start DIR   # munged, slurmctld and slurmd under DIR; prints the env
#   export SLURM_CONF=DIR/slurm.conf  # what sbatch, scontrol and scancel need
#   bash scripts/slurm.sh stop DIR    # stops the daemons it started, by their PIDs
#
# Everything lives under DIR (config, munge key and socket, state, spool, logs); ports are free
# ones on 127.0.0.1; ProctrackType=proctrack/linuxproc and no cgroups, no accounting (scontrol
# show job works without it). Measured here: it starts in about a second.
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: bash scripts/slurm.sh start|stop DIR" >&2; exit 2; }
say() { printf '[slurm] %s\n' "$*" >&2; }

stop() {
  local pids=()
  for f in slurmd slurmctld munged; do
    [ -f "$dir/$f.pid" ] && pids+=("$(cat "$dir/$f.pid")")
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Wait for them to go (slurmd also ends the job steps it runs), then make sure.
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -f "$dir"/{slurmd,slurmctld,munged}.pid
}

case "$cmd" in
stop)
  stop
  say "stopped (daemons of $dir)"
  exit 0
  ;;
start) ;;
*)
  echo "usage: bash scripts/slurm.sh start|stop DIR" >&2
  exit 2
  ;;
esac

for b in munged slurmctld slurmd sbatch scontrol; do
  command -v "$b" >/dev/null || { echo "slurm.sh: no $b. Fix: bash scripts/setup.sh (installs slurm-wlm and munge)" >&2; exit 1; }
done
mkdir -p "$dir"/{state,spool,munge,log}
dir=$(cd "$dir" && pwd)
[ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null && { echo "slurm.sh: a cluster already runs in $dir (stop it first)" >&2; exit 1; }

# munge: a key of our own, its socket in DIR (slurm.conf's AuthInfo points the clients there).
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || { dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" status=none; chmod 400 "$dir/munge/munge.key"; }
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

# Two free ports on 127.0.0.1 (asked of the kernel, then released).
read -r ctld_port slurmd_port < <(node -e '
const net = require("node:net");
const get = () => new Promise((r) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => r(p)); }); });
(async () => console.log(await get(), await get()))();')
host=$(hostname -s)
cpus=$(nproc)
mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
user=$(id -un)
cat >"$dir/slurm.conf" <<EOF
ClusterName=mode
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
# Jobs share the node: each gets memory per CPU, not the whole node's.
DefMemPerCPU=$((mem / cpus))
SchedulerParameters=sched_interval=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF="$dir/slurm.conf"
# -c: a clean start (no jobs from an earlier cluster in this folder).
slurmctld -c -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
  state=$(scontrol show node "$host" 2>/dev/null | sed -n 's/.*State=\([A-Z+]*\).*/\1/p' | head -1)
  case "$state" in IDLE* | MIXED* | ALLOCATED*) break ;; esac
  sleep 0.1
done
case "$state" in
IDLE* | MIXED* | ALLOCATED*) ;;
*)
  echo "slurm.sh: the node did not come up (state ${state:-unknown}); logs in $dir/log" >&2
  tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  stop
  exit 1
  ;;
esac
say "up: node $host ($cpus CPUs, $mem MiB), slurmctld on 127.0.0.1:$ctld_port"
echo "export SLURM_CONF=$SLURM_CONF"
