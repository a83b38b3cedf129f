#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, and the smoke preset run through it with
# profiles/slurm, every rule a SLURM job. Run by tests/test_cluster.py; by hand:
#   sudo .ci/slurm.sh [SNAKEMAKE]        (default: .venv/bin/snakemake of the repository)
# Needs root and Debian's apt-get. Installs slurm-wlm and munge when missing, starts munged,
# slurmdbd on a local MariaDB (accounting, as on real clusters: the plugin's default sacct status
# checks work), slurmctld and slurmd, gives the node two fake GPUs so
# that the training rules' `gpu` requests are really scheduled, runs the workflow to Figures 2
# and 5a under `timeout` (the Perceptron's training jobs as 2 SLURM tasks on 2 GPUs, started by
# srun, which talk through gloo since the fake GPUs have no CUDA; the Transformer's as 1 task on
# 1 GPU), checks the figures, the SLURM job ids, the GPU and task allocations, and stops
# every daemon it started by its PID on exit. About 2 minutes on 2 idle cores. The traps it avoids
# are in ../shared/notes/slurm-single-node.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SNAKEMAKE=${1:-$ROOT/.venv/bin/snakemake}
STORIES=$(realpath -m "$ROOT/../shared/data/tinystories/stories.parquet")
WORK=$(mktemp -d /tmp/slurm-ci.XXXXXX)
CONF=/etc/slurm/slurm.conf # the plugin's in-job srun finds the config only at this path
INIT_SECONDS=2             # --slurm-init-seconds-before-status-checks; MinJobAge >= 3x this

say() { echo "[slurm.sh $(date +%T)] $*"; }
fail() {
	echo "[slurm.sh] FAILED: $*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || fail "needs root (it installs packages and starts daemons)"
[[ -x $SNAKEMAKE ]] || fail "no snakemake at $SNAKEMAKE: pass its path as the first argument"
[[ -f $STORIES ]] || fail "the shared TinyStories copy is not at $STORIES"

# One cluster per machine at a time: the config path and the ports are fixed.
mkdir -p /run/lock
exec 9>/run/lock/pipeline-slurm-ci.lock
flock -w 900 9 || fail "another .ci/slurm.sh held /run/lock/pipeline-slurm-ci.lock for 15 minutes"

PIDS=() # daemons this script started, stopped in reverse order on exit
cleanup() {
	local status=$?
	if command -v squeue >/dev/null && [[ -L $CONF ]]; then
		squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
	fi
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	for link in "$CONF" /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf; do
		if [[ -L $link && $(readlink "$link") == "$WORK"/* ]]; then rm -f "$link"; fi
	done
	if ((status != 0)); then
		for log in "$WORK"/*.log; do
			[[ -f $log ]] && {
				echo "--- $log (last 30 lines)"
				tail -n 30 "$log"
			}
		done
	fi
	[[ -n ${SLURM_CI_KEEP:-} ]] || rm -rf "$WORK"
	say "stopped ${#PIDS[@]} daemons; exit $status"
}
trap cleanup EXIT

# 1. Packages (about 15 s; nothing to do when installed). Debian's policy-rc.d keeps apt from
# starting the daemons: this script starts its own.
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
	! command -v sbatch >/dev/null || ! command -v munged >/dev/null ||
	! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
	say "installing ${PACKAGES[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq || fail "apt-get update failed or took over 300 s"
	timeout 300 apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$WORK/apt.log" ||
		fail "apt-get install ${PACKAGES[*]} failed or took over 300 s (see $WORK/apt.log)"
fi

# 2. munged, as user munge, unless one already answers on the default socket.
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
	say "using the munged already running"
else
	[[ -f /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
	chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
	install -d -o munge -g munge -m 755 /run/munge
	runuser -u munge -- munged --foreground --force >"$WORK/munged.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
	munge -n | unmunge >/dev/null || fail "munged did not start (see $WORK/munged.log)"
fi

# 3. The cluster: this host, all its cores, its memory less 1 GiB, and two fake GPUs: GRES
# needs a character device per GPU, and /dev/null and /dev/zero stand in (no cgroup confines
# devices here; jobs run on the CPU, as device: auto finds no CUDA).
HOST=$(hostname -s)
# `nproc --all`: plain nproc honours an inherited OMP_NUM_THREADS (a job of the pipeline sets it
# to 1), and a 1-CPU node leaves the Perceptron's 2-task jobs pending forever (PartitionConfig).
CPUS=$(nproc --all)
((CPUS >= 2)) || fail "the Perceptron's jobs run as 2 SLURM tasks and need 2 cores; this machine has $CPUS"
MEM=$(($(free -m | awk '/^Mem:/ {print $2}') - 1024))
mkdir -p "$WORK/state" "$WORK/spool" /etc/slurm
cat >"$WORK/slurm.conf" <<EOF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
ReturnToService=2
MinJobAge=300
GresTypes=gpu
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
echo "NodeName=$HOST Name=gpu File=/dev/null,/dev/zero" >"$WORK/gres.conf"
if [[ -e $CONF || -L $CONF ]]; then
	[[ -L $CONF && ! -e $CONF ]] || fail "$CONF exists: this script only runs where no SLURM is set up"
	rm -f "$CONF" # a dangling link left by a killed run of this script
fi
ln -s "$WORK/slurm.conf" "$CONF"
[[ ! -e /etc/slurm/gres.conf || -L /etc/slurm/gres.conf ]] || fail "/etc/slurm/gres.conf exists"
ln -sf "$WORK/gres.conf" /etc/slurm/gres.conf

# 3b. Accounting: MariaDB on 127.0.0.1 (data and socket in the scratch directory, owned by
# mysql; no grant tables, nothing but slurmdbd uses it), then slurmdbd, whose config must lie
# beside slurm.conf (it has no -f flag) with mode 600.
chmod 755 "$WORK"
install -d -o mysql -g mysql "$WORK/mysql" "$WORK/mysql-run"
SOCKET=$WORK/mysql-run/mysqld.sock
mariadb-install-db --user=mysql --datadir="$WORK/mysql" --skip-test-db >"$WORK/mariadb-install.log" 2>&1 ||
	fail "mariadb-install-db failed (see $WORK/mariadb-install.log)"
DB_PORT=3306
mariadbd --user=mysql --datadir="$WORK/mysql" --socket="$SOCKET" \
	--pid-file="$WORK/mysql-run/mysqld.pid" --bind-address=127.0.0.1 --port=$DB_PORT \
	--skip-grant-tables --innodb-buffer-pool-size=64M >"$WORK/mariadb.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
	mariadb-admin --socket="$SOCKET" ping >/dev/null 2>&1 && break
	sleep 0.2
done
mariadb-admin --socket="$SOCKET" ping >/dev/null 2>&1 ||
	fail "MariaDB did not answer in 20 s (see $WORK/mariadb.log)"
cat >"$WORK/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$WORK/slurmdbd.pid
LogFile=$WORK/slurmdbd.log
EOF
chmod 600 "$WORK/slurmdbd.conf"
[[ ! -e /etc/slurm/slurmdbd.conf || -L /etc/slurm/slurmdbd.conf ]] || fail "/etc/slurm/slurmdbd.conf exists"
ln -sf "$WORK/slurmdbd.conf" /etc/slurm/slurmdbd.conf
say "starting slurmdbd on MariaDB"
slurmdbd -D >"$WORK/slurmdbd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
	sacctmgr -n list cluster >/dev/null 2>&1 && break
	sleep 0.2
done
sacctmgr -n list cluster >/dev/null 2>&1 || fail "slurmdbd did not answer in 20 s (see $WORK/slurmdbd.log)"

say "starting slurmctld and slurmd"
slurmctld -D -i >"$WORK/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D >"$WORK/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
	[[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && break
	sleep 0.2
done
[[ $(sinfo -h -o %T 2>/dev/null) == idle ]] || fail "the node did not become idle in 20 s"
sinfo

# 4. The smoke preset through profiles/slurm to Figures 2 (the Transformer's) and 5a (the
# Perceptron's): every stage, data to policy optimisation to evaluation to plots, 10 SLURM jobs
# (both data sets, both optimisations, all four evaluations, two figures; the local smoke test
# covers the other rules), with the shared TinyStories copy. The overrides are what a
# toy cluster needs: a quick first status check (by the plugin's default, sacct, through
# slurmdbd), no retries; and GPUs requested by the training rules: the Perceptron's jobs run
# data-parallel in 2 processes (resources.processes follows gpus), each a SLURM task with a GPU.
mkdir -p "$WORK/run"
# sbatch exports the caller's environment to the jobs; each job sets its own thread counts.
unset OMP_NUM_THREADS OMP_THREAD_LIMIT OMP_WAIT_POLICY MKL_NUM_THREADS OPENBLAS_NUM_THREADS \
	GOTO_NUM_THREADS VECLIB_MAXIMUM_THREADS NUMEXPR_NUM_THREADS
cat >"$WORK/ci.yaml" <<EOF
transformer: {data: {local_files: ["$STORIES"]}, resources: {gpus: 1}}
perceptron: {resources: {gpus: 2}}
EOF
say "running the smoke preset through SLURM"
START=$SECONDS
FIGURES=(figure2 figure5a)
# Snakemake waits for running jobs on SIGTERM: -k kills it 30 s later. --foreground keeps it in
# this script's process group: a SIGTERM to the group (tests/test_cluster.py stopping its
# background run) reaches it, and the EXIT trap then stops the daemons.
timeout --foreground -k 30 "${SLURM_CI_TIMEOUT:-420}" "$SNAKEMAKE" "${FIGURES[@]}" -s "$ROOT/Snakefile" \
	--directory "$WORK/run" --profile "$ROOT/profiles/slurm" \
	--configfile "$ROOT/workflow/presets/smoke.yaml" "$WORK/ci.yaml" \
	--slurm-init-seconds-before-status-checks "$INIT_SECONDS" \
	--slurm-logdir "$WORK/slurm-logs" --jobs 4 --retries 0 --latency-wait 5 \
	>"$WORK/snakemake.log" 2>&1 || {
	grep -A 25 -E "^Error in rule|Exception|Error:" "$WORK/snakemake.log" | head -n 120 || true
	tail -n 20 "$WORK/snakemake.log"
	find "$WORK/slurm-logs" -name '*.log' -exec tail -n 30 {} + 2>/dev/null || true
	fail "snakemake through SLURM failed or took over ${SLURM_CI_TIMEOUT:-420} s"
}
say "workflow done in $((SECONDS - START)) s"

# 5. Checks: the figures, the SLURM job ids, GPUs allocated to the training jobs only (2 GPUs and
# 2 tasks to the Perceptron's), and the Perceptron's policy optimisation run in 2 processes.
for figure in "${FIGURES[@]}"; do
	for ext in pdf png; do
		[[ -s $WORK/run/results/figures/$figure.$ext ]] || fail "missing results/figures/$figure.$ext"
	done
done
mapfile -t JOBIDS < <(grep -oP 'SLURM jobid \K[0-9]+' "$WORK/snakemake.log")
((${#JOBIDS[@]} > 0)) || fail "no SLURM job id in the snakemake log"
echo "SLURM job ids: ${JOBIDS[*]}"
GPU_JOBS=0
for id in "${JOBIDS[@]}"; do
	info=$(scontrol show job --details "$id") # kept for MinJobAge=300 s after the job ends
	comment=$(grep -oP 'Comment=rule_\K\S+' <<<"$info" || true) # <name>[_wildcards_...]
	name=${comment%%_wildcards_*}
	state=$(grep -oP 'JobState=\K\w+' <<<"$info")
	gres=$(grep -oP 'JOB_GRES=gpu:\K[0-9]+' <<<"$info" || true) # GPUs allocated
	tasks=$(grep -oP 'NumTasks=\K[0-9]+' <<<"$info" || true)
	echo "  job $id: ${name:-?} $state gpus=${gres:-0} tasks=${tasks:-?}"
	[[ $state == COMPLETED ]] || fail "SLURM job $id ended $state"
	if [[ $name == optimize_policy || $name == evaluate_policy ]]; then
		want=1
		[[ $comment == *perceptron* ]] && want=2
		[[ ${gres:-0} == "$want" ]] || fail "training job $id ($comment) was not given $want GPU(s)"
		[[ ${tasks:-0} == "$want" ]] || fail "training job $id ($comment) has ${tasks:-0} tasks, not $want"
		GPU_JOBS=$((GPU_JOBS + 1))
	elif [[ -n $gres ]]; then
		fail "job $id ($name) was given GPUs it did not ask for"
	fi
done
((GPU_JOBS > 0)) || fail "no training job among the SLURM jobs"
LOG=$WORK/run/results/logs/perceptron/optimize_policy.log
grep -q "2 process(es)" "$LOG" || fail "the Perceptron's policy optimisation did not run in 2 processes ($LOG)"
grep -q "2 processes started by srun, gloo backend" "$LOG" ||
	fail "the Perceptron's policy optimisation did not start its processes as SLURM tasks ($LOG)"
IDS=$(IFS=,; echo "${JOBIDS[*]}")
ACCOUNTED=$(sacct -n -X -P -o JobID,State -j "$IDS" | grep -c '|COMPLETED$' || true)
((ACCOUNTED == ${#JOBIDS[@]})) || fail "slurmdbd accounted $ACCOUNTED of ${#JOBIDS[@]} jobs as COMPLETED"
say "OK: ${#JOBIDS[@]} SLURM jobs ($GPU_JOBS with GPUs, the Perceptron's as 2 tasks), all COMPLETED in sacct; figures: ${FIGURES[*]}"
