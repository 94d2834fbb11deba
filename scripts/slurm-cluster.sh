#!/usr/bin/env bash
# Start or stop a single-node SLURM cluster on this machine, for testing the slurm profile.
#
#   scripts/slurm-cluster.sh start STATE_DIR   install slurm-wlm and munge if missing (Debian, root),
#                                             start munged, slurmctld and slurmd, wait for the node
#   scripts/slurm-cluster.sh stop STATE_DIR    cancel every job and stop the daemons by their PIDs
#
# Every listener binds to the address the host name resolves to, which must be loopback. There
# is no accounting database: run Snakemake with --slurm-status-command squeue (MinJobAge below
# is long enough for the executor plugin to trust squeue).
set -euo pipefail

action=${1:?usage: slurm-cluster.sh start|stop STATE_DIR}
state=$(realpath -m "${2:?usage: slurm-cluster.sh start|stop STATE_DIR}")
conf=/etc/slurm/slurm.conf

fail() { echo "slurm-cluster: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || fail "slurm-wlm and munge are missing and installing them needs root"
    echo "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
}

start_munge() {
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then
        return   # a munge daemon is already running: use it, and leave it running at stop
    fi
    runuser -u munge -- munged
    for _ in $(seq 20); do
        munge -n >/dev/null 2>&1 && break
        sleep 0.5
    done
    # munged forks into the background: record the daemon, the newest munged process.
    pgrep -n -u munge -x munged > "$state/munged.daemon" || fail "munged did not start"
}

write_config() {
    local host cpus memory
    host=$(hostname -s)
    getent hosts "$host" | awk '{print $1}' | grep -q '^127\.' \
        || fail "host name $host does not resolve to a loopback address; the cluster would listen on the network"
    cpus=$(nproc)
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    memory=$((memory * 9 / 10))
    cat > "$state/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    install_packages
    # A link left by a cluster whose state folder is gone is stale: remove it.
    if [ -L "$conf" ] && [ ! -e "$conf" ]; then
        rm -f "$conf"
    fi
    if [ -e "$conf" ] && [ "$(readlink -f "$conf")" != "$state/slurm.conf" ]; then
        fail "$conf exists and belongs to another cluster; not touching it"
    fi
    mkdir -p "$state/state" "$state/spool" "$state/log" /etc/slurm
    write_config
    ln -sf "$state/slurm.conf" "$conf"
    start_munge
    slurmctld -D -f "$conf" >"$state/log/slurmctld.out" 2>&1 &
    echo $! > "$state/slurmctld.daemon"
    slurmd -D -f "$conf" >"$state/log/slurmd.out" 2>&1 &
    echo $! > "$state/slurmd.daemon"
    for _ in $(seq 60); do
        if sinfo -h -o %t 2>/dev/null | grep -q idle; then
            echo "slurm-cluster: node $(hostname -s) idle in partition debug"
            return
        fi
        sleep 1
    done
    fail "the node did not become idle within 60 s; see $state/log"
}

stop() {
    scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
    for name in slurmd slurmctld; do
        [ -f "$state/$name.daemon" ] && kill "$(cat "$state/$name.daemon")" 2>/dev/null || true
    done
    [ -f "$state/munged.daemon" ] && kill "$(cat "$state/munged.daemon")" 2>/dev/null || true
    [ "$(readlink -f "$conf" 2>/dev/null)" = "$state/slurm.conf" ] && rm -f "$conf"
    echo "slurm-cluster: stopped"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) fail "unknown action '$action'; use start or stop" ;;
esac
