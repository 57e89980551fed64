"""A real single-node SLURM cluster in one folder, for tests (see tests/test_slurm.py).

Debian's packages (installed with apt-get when missing), every daemon started in the foreground
by this module, its PID recorded in ``<state>/pids.json`` and stopped by that PID:

    munged      private key and socket in the state folder (a system munged is left alone)
    mariadbd    private database on 127.0.0.1, data in the state folder
    slurmdbd    accounting, so that ``sacct`` works (the executor plugin checks job status with it)
    slurmctld   one partition, one account
    slurmd      the node: its CPUs and memory (from ``slurmd -C``) and a fake GPU (gres ``gpu:1``)

Accounting goes through slurmdbd + MariaDB rather than ``--slurm-status-command squeue`` because
it is what real clusters run: the plugin's default status checks (sacct, whenever the binary
exists; without accounting they fail and snakemake waits forever) and the profile's
``slurm_account`` (checked with sacctmgr) are exercised as shipped, with no option that a real
profile would not carry; a finished job stays visible (to the plugin and to the test's checks) for
as long as needed instead of ``MinJobAge`` seconds; and ``sacct`` reports what each job was
allocated (``AllocTRES`` with ``gres/gpu``). It costs ~4 s of start-up (mariadb-install-db).

SLURM's commands find this cluster through ``SLURM_CONF`` (see ``Cluster.env``). The executor plugin's job
step deletes every ``SLURM_*`` variable before it calls ``srun`` (on a real cluster srun reads
/etc/slurm/slurm.conf), so ``<state>/bin/srun``, first on that PATH, puts ``SLURM_CONF`` back.
Nothing is written outside the state folder, so two clusters can run side by side.

Every task of every job prints one line to its SLURM log (a TaskProlog ``print``)::

    leukobench-task-prolog job=<id> step=<step> CUDA_VISIBLE_DEVICES=<value or unset>

Command line, to try the slurm profile by hand::

    python tests/slurm/cluster.py up /tmp/slurm     # prints the `export` line for the shell
    python tests/slurm/cluster.py down /tmp/slurm   # stops the daemons by their recorded PIDs
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server-core", "mariadb-client-core")
PROGRAMS = ("munged", "mungekey", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd",
            "sacctmgr", "sbatch", "srun", "sacct", "squeue", "scontrol", "sinfo", "scancel")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
TASK_PROLOG_TAG = "leukobench-task-prolog"


class Unavailable(Exception):
    """SLURM cannot be set up on the host running the tests at all (not root, no apt-get, packages not installable)."""


class ClusterError(RuntimeError):
    """A daemon did not come up; the message holds the tail of every daemon's log."""


def program(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def missing_programs() -> list[str]:
    return [name for name in PROGRAMS if program(name) is None]


def ensure_packages(timeout: float = 600) -> None:
    """Install the Debian packages when a program is missing; raise Unavailable where that cannot be done."""
    if os.geteuid() != 0:
        raise Unavailable("not root: slurmd and slurmstepd run as root, and apt-get needs root to install "
                          + " ".join(PACKAGES))
    missing = missing_programs()
    if not missing:
        return
    if program("apt-get") is None:
        raise Unavailable(f"SLURM programs missing ({', '.join(missing)}) and no apt-get (not Debian) to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "PATH": SEARCH_PATH}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", *PACKAGES]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        update = subprocess.run(["apt-get", "update", "-o", "DPkg::Lock::Timeout=300"], env=env, capture_output=True,
                                text=True, timeout=timeout)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise Unavailable(f"apt-get could not install {' '.join(PACKAGES)}:\n{update.stderr[-1500:]}\n"
                              f"{result.stdout[-1500:]}\n{result.stderr[-1500:]}")
    if missing_programs():
        raise Unavailable(f"installed {' '.join(PACKAGES)}, still missing: {', '.join(missing_programs())}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (e.g. slurmstepd and the job's processes below slurmd), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def terminate(pids: list[int], grace: float = 10) -> None:
    """SIGTERM each PID, wait up to ``grace`` seconds, SIGKILL what is left."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _running(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Cluster:
    """One node, one partition, one account; ``with Cluster(folder) as cluster:`` starts and stops it."""

    def __init__(self, state: Path, partition: str = "debug", account: str = "ci", name: str = "leukobench"):
        self.state = Path(state).resolve()
        self.partition, self.account, self.name = partition, account, name
        self.host = socket.gethostname().split(".")[0]
        self.pids: dict[str, int] = {}
        self.cpus = 0  # the node's, known once the configuration is written
        self.ports = {"mariadb": free_port(), "slurmdbd": free_port(), "slurmctld": free_port(), "slurmd": free_port()}

    @property
    def conf(self) -> Path:
        return self.state / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment in which SLURM's commands (sbatch, sacct, ...) talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": f"{self.state / 'bin'}{os.pathsep}{SEARCH_PATH}"}

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- start -----------------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """Write the configuration, start every daemon, wait for an idle node. Stops everything on failure."""
        try:
            self._write_config()
            self._start_munge(timeout)
            self._start_mariadb(timeout)
            self._start_daemon("slurmdbd", [program("slurmdbd"), "-D"])  # reads slurmdbd.conf beside $SLURM_CONF
            self._wait("slurmdbd", lambda: port_open(self.ports["slurmdbd"]), timeout)
            self._start_daemon("slurmctld", [program("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._wait("slurmctld", lambda: "is UP" in self.command("scontrol", "ping", check=False).stdout, timeout)
            self.sacctmgr("add", "account", self.account, "Description=leukobench tests", "Organization=ci")
            self.sacctmgr("add", "user", "root", f"Account={self.account}", f"DefaultAccount={self.account}")
            self._start_daemon("slurmd", [program("slurmd"), "-D", "-f", str(self.conf)])
            self._wait("slurmd", lambda: self.command("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
                       == "idle", timeout)
        except BaseException as error:
            logs = self.logs()
            self.stop()
            if isinstance(error, ClusterError) or not isinstance(error, Exception):  # e.g. KeyboardInterrupt
                raise
            raise ClusterError(f"{type(error).__name__}: {error}\n{logs}") from error

    def _write_config(self) -> None:
        for folder in ("ctld", "slurmd", "mysql", "log", "bin"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o755)  # munged refuses key and socket folders that others can write to
        hardware = dict(item.split("=", 1) for item in self.command("slurmd", "-C").stdout.split()
                        if "=" in item and not item.startswith("UpTime"))
        # 90 % of the machine, but never under 16 GB: rules request up to 8 GB (mem_mb), the test's
        # tiny jobs use far less, and nothing here enforces it (config_overrides: slurmd trusts this line).
        memory = max(int(int(hardware["RealMemory"]) * 0.9), 16384)
        self.cpus = int(hardware["CPUs"])
        gpu = self.state / "gpu0"  # gres needs a device file: a symlink to /dev/null
        if not gpu.is_symlink():
            gpu.symlink_to("/dev/null")
        srun = self.state / "bin" / "srun"
        srun.write_text(f"#!/bin/sh\nSLURM_CONF={self.conf} exec {program('srun')} \"$@\"\n")
        srun.chmod(0o755)
        prolog = self.state / "task_prolog.sh"
        prolog.write_text(
            "#!/bin/sh\n# A TaskProlog's 'print' lines go to the task's standard output, i.e. the job's SLURM log.\n"
            f'echo "print {TASK_PROLOG_TAG} job=$SLURM_JOB_ID step=${{SLURM_STEP_ID:-batch}}'
            ' CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"\n')
        prolog.chmod(0o755)
        log = self.state / "log"
        self.conf.write_text(f"""\
# Written by tests/slurm/cluster.py: a single node in a container (no systemd, no cgroups).
ClusterName={self.name}
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ports["slurmctld"]}
SlurmdPort={self.ports["slurmd"]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.state / "munge.socket"}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={self.state / "ctld"}
SlurmdSpoolDir={self.state / "slurmd"}
SlurmctldPidFile={self.state / "slurmctld.pid"}
SlurmdPidFile={self.state / "slurmd.pid"}
SlurmctldLogFile={log / "slurmctld.log"}
SlurmdLogFile={log / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={self.state / "plugstack.conf"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
TaskProlog={prolog}
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
MinJobAge=300
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports["slurmdbd"]}
AccountingStoragePass={self.state / "munge.socket"}
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/none
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={hardware["CPUs"]} Boards={hardware["Boards"]} \
SocketsPerBoard={hardware["SocketsPerBoard"]} CoresPerSocket={hardware["CoresPerSocket"]} \
ThreadsPerCore={hardware["ThreadsPerCore"]} RealMemory={memory} Gres=gpu:1 State=UNKNOWN
PartitionName={self.partition} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        (self.state / "plugstack.conf").write_text("")
        (self.state / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File={gpu}\n")
        dbd = self.state / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={self.state / "munge.socket"}
DbdHost={self.host}
DbdAddr=127.0.0.1
DbdPort={self.ports["slurmdbd"]}
SlurmUser=root
PidFile={self.state / "slurmdbd.pid"}
LogFile={log / "slurmdbd.log"}
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports["mariadb"]}
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)  # slurmdbd refuses a configuration that others can read

    def _start_munge(self, timeout: float) -> None:
        key = self.state / "munge.key"
        if not key.exists():
            self.run([program("mungekey"), "--create", f"--keyfile={key}"])
        key.chmod(0o600)
        self._start_daemon("munged", [
            program("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={self.state / 'munge.socket'}",
            f"--pid-file={self.state / 'munged.pid'}", f"--log-file={self.state / 'log' / 'munged.log'}",
            f"--seed-file={self.state / 'munged.seed'}"])
        self._wait("munged", lambda: (self.state / "munge.socket").exists(), timeout)

    def _start_mariadb(self, timeout: float) -> None:
        data = self.state / "mysql"
        if not (data / "mysql").exists():
            self.run([program("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
                      "--auth-root-authentication-method=normal", "--skip-test-db"])
        self._start_daemon("mariadbd", [
            program("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=root", "--bind-address=127.0.0.1",
            f"--port={self.ports['mariadb']}", f"--socket={self.state / 'mysql.sock'}",
            f"--pid-file={self.state / 'mariadbd.pid'}",
            f"--log-error={self.state / 'log' / 'mariadbd.log'}", "--innodb-use-native-aio=0",
            "--innodb-buffer-pool-size=64M", "--skip-log-bin"])
        self._wait("mariadbd", lambda: port_open(self.ports["mariadb"]), timeout)

    def _start_daemon(self, name: str, argv: list[str]) -> None:
        out = open(self.state / "log" / f"{name}.out", "ab")
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                   cwd=self.state, start_new_session=True)
        out.close()
        self.pids[name] = process.pid
        (self.state / "pids.json").write_text(json.dumps(self.pids, indent=1))

    def _wait(self, name: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not _running(self.pids[name]):
                raise ClusterError(f"{name} exited while starting\n{self.logs()}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} not ready after {timeout:.0f} s\n{self.logs()}")
            time.sleep(0.2)

    # -- commands --------------------------------------------------------------------------------------

    def run(self, argv: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.state)
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def command(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run one of SLURM's commands against this cluster."""
        return self.run([program(name), *args], check=check)

    def sacctmgr(self, *args: str) -> None:
        result = self.command("sacctmgr", "-i", *args, check=False)
        if result.returncode != 0 and "Nothing new added" not in result.stdout + result.stderr:
            raise ClusterError(f"sacctmgr {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")

    def jobs(self) -> list[dict[str, str]]:
        """Every job that the accounting has seen (allocations only, not steps)."""
        fields = ["JobID", "State", "ExitCode", "Elapsed", "Partition", "Account", "ReqTRES", "AllocTRES", "Comment"]
        result = self.command("sacct", "-X", "-n", "-P", "-a", "-S", "now-1days", "-o", ",".join(fields))
        return [dict(zip(fields, line.split("|"))) for line in result.stdout.splitlines() if line.strip()]

    # -- stop ------------------------------------------------------------------------------------------

    def logs(self, lines: int = 30) -> str:
        parts = []
        for log in sorted((self.state / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            if text:
                parts.append(f"---- {log} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what still runs, then stop every daemon (and what runs below slurmd) by PID, newest first."""
        pid_file = self.state / "pids.json"
        if not self.pids and pid_file.exists():
            self.pids = json.loads(pid_file.read_text())
        if "slurmctld" in self.pids and _running(self.pids["slurmctld"]):
            try:
                self.command("scancel", "--full", "--user", "root", check=False)
            except (subprocess.TimeoutExpired, TypeError):
                pass
        for name in reversed(list(self.pids)):
            pid = self.pids[name]
            if _running(pid) and _command_name(pid) == name[:15]:  # not a PID reused since (after a reboot)
                terminate([pid, *descendants(pid)][::-1] if name == "slurmd" else [pid])
        self.pids = {}
        pid_file.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__.split("Command line")[1], file=sys.stderr)
        return 2
    action, state = argv[0], Path(argv[1])
    if action == "down":
        Cluster(state).stop()
        return 0
    ensure_packages()
    state.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(state)
    cluster.start()
    print(f"export SLURM_CONF={cluster.conf} PATH={state.resolve() / 'bin'}:$PATH"
          f"   # partition {cluster.partition}, account {cluster.account}; daemons: {cluster.pids}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
