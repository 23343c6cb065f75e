#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing `isonb sweep submit` against a real scheduler.
#
#   tools/slurm_cluster.sh start   # configure + start munged, slurmctld, slurmd (as root); prints the env to use
#   tools/slurm_cluster.sh env     # print `export SLURM_CONF=...` for a running cluster
#   tools/slurm_cluster.sh status  # are the daemons we started alive? (exit 1 if not)
#   tools/slurm_cluster.sh stop    # cancel this cluster's jobs, then kill exactly the pids `start` recorded
#
# It installs nothing: the Debian packages `slurm-wlm munge` must be there (.ci/install_system_deps.sh).
# Everything lives under $ISONB_SLURM_DIR (default /tmp/isonb-slurm): its own munge key and socket,
# slurm.conf, state, spool, logs and pid files, so the system's /etc/slurm and /etc/munge are not touched.
# Clients (sbatch, squeue, sacct, scontrol) find this cluster through SLURM_CONF=$ISONB_SLURM_DIR/slurm.conf.
# Accounting is off (no slurmdbd), so `sacct` answers with an error here; isonb falls back to squeue + markers.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"   # the daemons live in sbin, which a non-login PATH may lack
DIR="${ISONB_SLURM_DIR:-/tmp/isonb-slurm}"
CONF="$DIR/slurm.conf"
PIDS="$DIR/pids"
CTLD_PORT="${ISONB_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${ISONB_SLURMD_PORT:-6818}"

die() { echo "slurm_cluster: $*" >&2; exit 1; }

alive() {  # pids recorded by start that are still running
  [ -f "$PIDS" ] || return 0
  while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then echo "$name $pid"; fi
  done < "$PIDS"
}

write_conf() {
  local host node mem
  host="$(hostname -s)"
  # the node as slurmd sees the hardware (CPUs, sockets, cores, threads); not nproc, which follows OMP_NUM_THREADS
  node="$(slurmd -C | grep -m1 '^NodeName=')"
  mem="$(echo "$node" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
  mem=$(( mem * 9 / 10 ))   # leave headroom: slurmd drains a node that reports less memory than configured
  node="$(echo "$node" | sed "s/^NodeName=[^ ]*/NodeName=$host/; s/RealMemory=[0-9]*/RealMemory=$mem/")"
  cat > "$CONF" <<EOF
# one-node test cluster written by tools/slurm_cluster.sh
ClusterName=isonb
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2,sched_interval=2,sched_min_interval=0,bf_continue
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
MinJobAge=600
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  [ "$(id -u)" = 0 ] || die "start needs root (slurmd runs jobs as their users)"
  for b in munged slurmctld slurmd sbatch squeue scontrol; do
    command -v "$b" >/dev/null || die "$b not found: install the Debian packages 'slurm-wlm munge' (.ci/install_system_deps.sh)"
  done
  if [ -n "$(alive)" ]; then
    echo "slurm_cluster: already running under $DIR:"; alive; echo "export SLURM_CONF=$CONF"; return 0
  fi
  mkdir -p "$DIR"/{munge,state,spool,log}
  chmod 711 "$DIR" "$DIR/munge"
  rm -f "$PIDS"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
  fi
  write_conf
  munged -F --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log" > "$DIR/log/munged.out" 2>&1 &
  echo "munged $!" >> "$PIDS"
  for _ in $(seq 50); do [ -S "$DIR/munge/munge.socket" ] && break; sleep 0.1; done
  [ -S "$DIR/munge/munge.socket" ] || { cat "$DIR/log/munged.log" >&2 || true; stop; die "munged did not start"; }
  slurmctld -D -i -f "$CONF" > "$DIR/log/slurmctld.out" 2>&1 &
  echo "slurmctld $!" >> "$PIDS"
  slurmd -D -f "$CONF" > "$DIR/log/slurmd.out" 2>&1 &
  echo "slurmd $!" >> "$PIDS"
  export SLURM_CONF="$CONF"
  for _ in $(seq 60); do   # up to 30 s for the node to register as idle
    if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then break; fi
    sleep 0.5
  done
  if ! sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "--- sinfo:" >&2; sinfo >&2 || true
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" "$DIR/log/"*.out >&2 || true
    stop; die "the node did not come up (logs above, under $DIR/log)"
  fi
  echo "slurm_cluster: up ($(sinfo -h -o '%P %D nodes %c cpus %t'))"
  echo "export SLURM_CONF=$CONF"
}

stop() {
  [ -f "$PIDS" ] || { echo "slurm_cluster: nothing recorded under $DIR"; return 0; }
  if [ -f "$CONF" ] && [ -n "$(alive)" ]; then   # end this cluster's jobs first, so no job outlives its slurmd
    SLURM_CONF="$CONF" scancel --full --quiet --partition=debug 2>/dev/null || true
    SLURM_CONF="$CONF" scancel --quiet --partition=debug 2>/dev/null || true
    for _ in $(seq 20); do
      [ -z "$(SLURM_CONF="$CONF" squeue -h 2>/dev/null)" ] && break; sleep 0.5
    done
  fi
  # reverse start order: slurmd, slurmctld, munged
  tac "$PIDS" | while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
      echo "slurm_cluster: stopped $name ($pid)"
    fi
  done
  rm -f "$PIDS"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  status) if [ -n "$(alive)" ]; then alive; else echo "slurm_cluster: not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status|env   (state under \$ISONB_SLURM_DIR, default /tmp/isonb-slurm)" >&2; exit 2 ;;
esac
