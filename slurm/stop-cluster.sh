#!/usr/bin/env bash
# Stop the one-node Slurm cluster started by slurm/start-cluster.sh.
#
#   slurm/stop-cluster.sh [STATE_DIR]       (default /var/tmp/hdmod-slurm)
#
# Stops exactly the PIDs recorded in STATE_DIR/pids (never by process name): SIGTERM, wait
# up to 10 s, then SIGKILL. A recorded PID that now belongs to another program is left
# alone. Removes the pid file. Idempotent: no pid file, nothing to do.
# Job processes (slurmstepd and the job's own) are not daemons and are not stopped: as on a
# real cluster, they keep running and slurmd picks them up again on the next start.
set -euo pipefail

STATE_DIR=${1:-/var/tmp/hdmod-slurm}
PIDS="$STATE_DIR/pids"
GRACE_SECONDS=10

if [[ ! -e $PIDS ]]; then
    echo "No Slurm cluster recorded in $STATE_DIR (no pid file); nothing to stop."
    exit 0
fi

# True if PID is alive (not a zombie) and is the program NAME (guards against a recycled PID).
pid_is() {
    local name=$1 pid=$2 stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # /proc/PID/stat is "PID (COMM) STATE ...".
    [[ $stat == "$pid ($name) "* && $stat != "$pid ($name) Z"* ]]
}

# Stop in reverse start order (slurmd, slurmctld, then munged, which the others use).
mapfile -t entries < <(tac "$PIDS")
live=()
for entry in "${entries[@]}"; do
    read -r name pid <<<"$entry"
    [[ -n ${name:-} && -n ${pid:-} ]] || continue
    if pid_is "$name" "$pid"; then
        echo "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        live+=("$name $pid")
    else
        echo "$name (pid $pid) is not running"
    fi
done

deadline=$((SECONDS + GRACE_SECONDS))
for entry in "${live[@]}"; do
    read -r name pid <<<"$entry"
    while pid_is "$name" "$pid" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if pid_is "$name" "$pid"; then
        echo "$name (pid $pid) ignored SIGTERM for ${GRACE_SECONDS}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
done

rm -f "$PIDS"
echo "Slurm cluster in $STATE_DIR stopped."
