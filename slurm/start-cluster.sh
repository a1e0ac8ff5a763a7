#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (munged + slurmctld + slurmd), for
# development and CI. Idempotent: if the recorded daemons are alive and answer, it does nothing.
#
#   slurm/start-cluster.sh [STATE_DIR]      (default /var/tmp/hdmod-slurm; must run as root)
#
# Writes /etc/slurm/slurm.conf (where Debian's sbatch/squeue/... look, so no SLURM_CONF is
# needed), keeps state, spool and logs under STATE_DIR, and records the daemons' PIDs in
# STATE_DIR/pids ("name pid" per line) for slurm/stop-cluster.sh. See slurm/README.md.
set -euo pipefail

STATE_DIR=${1:-/var/tmp/hdmod-slurm}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF=/etc/slurm/slurm.conf
PIDS="$STATE_DIR/pids"
LOG="$STATE_DIR/log"
WAIT_SECONDS=${HDMOD_SLURM_START_TIMEOUT:-30}

if [[ $(id -u) -ne 0 ]]; then
    echo "start-cluster.sh: must run as root (installs packages, writes $CONF)" >&2
    exit 1
fi

mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)   # absolute: it ends up in slurm.conf
PIDS="$STATE_DIR/pids"
LOG="$STATE_DIR/log"

# One start at a time (e.g. several pytest workers calling ensure_cluster at once).
# The daemons are started with this descriptor closed, so they do not hold the lock.
exec 9>"$STATE_DIR/.lock"
flock 9

# True if PID is alive (not a zombie) and is the program NAME (guards against a recycled PID).
pid_is() {
    local name=$1 pid=$2 stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # /proc/PID/stat is "PID (COMM) STATE ...".
    [[ $stat == "$pid ($name) "* && $stat != "$pid ($name) Z"* ]]
}

# True if every PID in the pid file is alive, slurmctld and slurmd are among them, and
# the controller answers.
cluster_running() {
    [[ -s $PIDS ]] || return 1
    local name pid seen=""
    while read -r name pid; do
        [[ -n $name ]] || continue
        pid_is "$name" "$pid" || return 1
        seen+=" $name"
    done <"$PIDS"
    [[ $seen == *" slurmctld"* && $seen == *" slurmd"* ]] || return 1
    timeout 10 sinfo -h >/dev/null 2>&1
}

if command -v sinfo >/dev/null && cluster_running; then
    echo "Slurm cluster already running (state dir $STATE_DIR):"
    cat "$PIDS"
    sinfo -N
    exit 0
fi

# Leftovers of a half-dead cluster (some recorded daemons gone): stop the rest first.
if [[ -e $PIDS ]]; then
    echo "Stale or partial cluster recorded in $PIDS; stopping it first."
    "$HERE/stop-cluster.sh" "$STATE_DIR"
fi

# --- packages -------------------------------------------------------------------------
need_install=0
for cmd in munged mungekey slurmctld slurmd sbatch sinfo; do
    command -v "$cmd" >/dev/null || need_install=1
done
if ((need_install)); then
    echo "Installing munge and Slurm with apt ..."
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when apt does not know the packages yet.
    if ! apt-cache show slurmctld >/dev/null 2>&1; then
        apt-get update -qq
    fi
    # The packages' maintainer scripts try to start the services through invoke-rc.d;
    # without an init system that is refused or fails harmlessly. We start them ourselves.
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client
fi

# --- munge ----------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    echo "Creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
# /run is a tmpfs on a real machine; munged wants its socket directory to exist.
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge

mkdir -p "$LOG" "$STATE_DIR/ctld" "$STATE_DIR/spool/slurmd"
: >"$PIDS.new"

# Start "$@" in its own session, detached from our stdin/stdout/stderr and lock, and
# record its PID. setsid execs directly (we are not a process group leader), so $! is the
# daemon's own PID.
start_daemon() {
    local name=$1 out=$2
    shift 2
    setsid "$@" </dev/null >>"$out" 2>&1 9>&- &
    local pid=$!
    echo "$name $pid" >>"$PIDS.new"
    echo "started $name (pid $pid)"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

if munge_works; then
    # A munged we did not start (e.g. the system's) is already serving; use it and leave it
    # alone: stop-cluster.sh only stops what is recorded here.
    echo "munged already running; using it"
else
    # --force: take over a stale socket/lock left by a munged that was killed.
    # --origin: munged otherwise tries to resolve the hostname for the credential origin.
    start_daemon munged "$LOG/munged.out" \
        setpriv --reuid=munge --regid=munge --init-groups \
        munged -F --force --origin=127.0.0.1
    for _ in $(seq 50); do
        munge_works && break
        sleep 0.1
    done
    if ! munge_works; then
        echo "munged did not come up:" >&2
        tail -n 20 "$LOG/munged.out" /var/log/munge/munged.log >&2 || true
        mv "$PIDS.new" "$PIDS"
        "$HERE/stop-cluster.sh" "$STATE_DIR" >&2 || true
        exit 1
    fi
fi

# --- slurm.conf -----------------------------------------------------------------------
NODE=$(hostname -s)
# The node line exactly as slurmd detects this machine (CPUs, sockets, cores, memory),
# minus its trailing UpTime=... field, which is not a slurm.conf option.
NODE_LINE=$(slurmd -C | grep '^NodeName=' | sed 's/ UpTime=.*//')

mkdir -p /etc/slurm
cat >"$CONF.new" <<EOF
# Written by slurm/start-cluster.sh for a one-node development/CI cluster.
# Edit the script, not this file: it is rewritten on every start.
ClusterName=hdmod
# Both daemons on this machine, talking over loopback.
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
# The daemons run as root: no extra ownership to manage on STATE_DIR.
SlurmUser=root
SlurmdUser=root

StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups in containers/CI: track job processes through /proc, and bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# No slurmdbd: no accounting, no sacct. Finished jobs stay visible to squeue -t all and
# scontrol for MinJobAge seconds instead.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
# Never try to send mail.
MailProg=/bin/true

# Schedule per core, so several 1-CPU jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Start batch jobs as soon as they are eligible (default waits to batch submissions).
SchedulerParameters=batch_sched_delay=0
# Reject at submit time a job that no partition could ever run (e.g. -c 64 on 2 CPUs),
# instead of leaving it pending forever.
EnforcePartLimits=ALL
# A node that was DOWN (e.g. after a restart) becomes usable as soon as slurmd registers.
ReturnToService=2
# Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KillWait=5

$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.new" "$CONF"

# --- slurmctld, slurmd ----------------------------------------------------------------
start_daemon slurmctld "$LOG/slurmctld.out" slurmctld -D -f "$CONF"
start_daemon slurmd "$LOG/slurmd.out" slurmd -D -f "$CONF" -N "$NODE"
mv "$PIDS.new" "$PIDS"

# --- wait for the node ----------------------------------------------------------------
node_state() { timeout 5 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }

deadline=$((SECONDS + WAIT_SECONDS))
state=""
dead=""
while ((SECONDS < deadline)); do
    state=$(node_state || true)
    case $state in
        idle | mixed | allocated | completing) break ;;
    esac
    # A daemon that died will not come back: fail now rather than at the deadline.
    dead=""
    while read -r name pid; do
        pid_is "$name" "$pid" || dead+=" $name"
    done <"$PIDS"
    [[ -z $dead ]] || break
    sleep 0.2
done

case $state in
    idle | mixed | allocated | completing)
        echo "Slurm cluster up: node $NODE is $state (state dir $STATE_DIR)"
        sinfo -N
        exit 0
        ;;
esac

echo "Slurm cluster did not come up (node state: '${state:-no answer}'${dead:+, died:$dead})" >&2
for f in "$LOG/munged.out" "$LOG/slurmctld.out" "$LOG/slurmctld.log" \
    "$LOG/slurmd.out" "$LOG/slurmd.log"; do
    [[ -s $f ]] || continue
    echo "--- tail $f" >&2
    tail -n 25 "$f" >&2
done
"$HERE/stop-cluster.sh" "$STATE_DIR" >&2 || true
exit 1
