"""A real SLURM cluster of two nodes (n1, n2) on this one machine, for tests of `launcher=slurm`.

What it takes (see the SLURM section of ENVIRONMENT.md): root, Debian's `slurmctld slurmd
slurm-client munge` (installed with apt-get when missing), and the names n1 and n2 resolving to
127.0.0.1 (Lightning's SLURM environment connects to the first node by name). Everything the
daemons write (config, state, spool, pid files, logs) lies in one temporary folder; munged uses
its usual socket in /run/munge. The daemons run at nice 19, and so do the jobs they start.

    cluster = SlurmCluster.start()        # raises ClusterUnavailable with the reason
    job = cluster.wait(job_id, timeout=120)   # the job's `scontrol show job` fields once it ends
    cluster.stop()                        # by the daemons' own pid files
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
NODES = ("n1", "n2")
HOSTS_LINE = "127.0.0.1 " + " ".join(NODES)
MUNGE_PID = Path("/run/munge/munged.pid")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "PREEMPTED")
NICE = ["nice", "-n", "19"]


class ClusterUnavailable(Exception):
    """No cluster can start here; the message says why."""


def run(command: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ClusterUnavailable(f"`{' '.join(command)}` failed ({done.returncode}): "
                                 f"{(done.stderr or done.stdout).strip()[-2000:]}")
    return done


def install() -> None:
    """Installs SLURM and munge with apt-get unless they are there (`apt-get update` only if needed)."""
    if all(Path(p).is_file() for p in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch",
                                        "/usr/sbin/munged", "/etc/munge/munge.key")):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("SLURM is not installed and installing it needs root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("SLURM is not installed and there is no apt-get to install it")
    command = [*NICE, "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, capture_output=True, env=env, timeout=600).returncode != 0:
        subprocess.run([*NICE, "apt-get", "update"], capture_output=True, env=env, timeout=600)
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            raise ClusterUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-2000:]}")


def resolve_nodes() -> None:
    """Adds `127.0.0.1 n1 n2` to /etc/hosts unless both names already resolve to this machine."""
    try:
        if all(socket.gethostbyname(n).startswith("127.") for n in NODES):
            return
    except OSError:
        pass
    with open("/etc/hosts", "a") as hosts:
        hosts.write(f"\n{HOSTS_LINE}  # added by ttsframe's tests (tests/slurm_cluster.py)\n")


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (so a leftover cluster of an earlier session cannot clash)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def slurm_conf(root: Path, ctld_port: int, node_ports: list[int], cpus: int, host: str) -> str:
    """slurm.conf of the cluster: one controller and the nodes n1, n2 on this host, no accounting."""
    lines = [
        "ClusterName=ttsframe-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        "SlurmUser=slurm",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        "AuthInfo=cred_expire=5",  # a requeued job may start again after 5 s, not 2 min
        "SchedulerParameters=bf_interval=1,sched_interval=2",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        "MinJobAge=600",  # ended jobs stay in `scontrol show job` (there is no sacct without slurmdbd)
        f"StateSaveLocation={root}/state",
        f"SlurmctldPidFile={root}/slurmctld.pid",
        f"SlurmctldLogFile={root}/slurmctld.log",
        f"SlurmdPidFile={root}/slurmd-%n.pid",
        f"SlurmdSpoolDir={root}/spool-%n",
        f"SlurmdLogFile={root}/slurmd-%n.log",
    ]
    lines += [f"NodeName={n} NodeHostname={host} NodeAddr=127.0.0.1 Port={p} CPUs={cpus} State=UNKNOWN"
              for n, p in zip(NODES, node_ports)]
    lines.append(f"PartitionName=test Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (e.g. a daemon we started that has not been reaped) is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid_file(path: Path, timeout: float = 15) -> None:
    """SIGTERM to the pid in `path`, SIGKILL if it is still there after `timeout` seconds."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def munge_works() -> bool:
    if shutil.which("munge") is None or shutil.which("unmunge") is None:
        return False
    encoded = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
    return encoded.returncode == 0 and subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True,
                                                      timeout=10).returncode == 0


class SlurmCluster:
    """A running two-node cluster; `env` (SLURM_CONF) points the SLURM commands at it."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.started_munge = False

    @classmethod
    def start(cls, timeout: float = 60) -> "SlurmCluster":
        """Installs what is missing and starts munged, slurmctld, `slurmd -N n1` and `slurmd -N n2`;
        returns once `sinfo` shows both nodes idle. Raises ClusterUnavailable (after stopping what
        it started) when it cannot."""
        if os.geteuid() != 0:
            raise ClusterUnavailable("starting a SLURM cluster on this machine needs root")
        install()
        resolve_nodes()
        root = Path(tempfile.mkdtemp(prefix="ttsframe-slurm-"))
        cluster = cls(root)
        try:
            cluster._start_daemons(timeout)
        except BaseException:
            logs = cluster.logs()
            cluster.stop()
            if logs:
                raise ClusterUnavailable(f"the SLURM daemons did not come up; their logs:\n{logs}") from None
            raise
        return cluster

    def _start_daemons(self, timeout: float) -> None:
        ctld_port, *node_ports = free_ports(1 + len(NODES))
        (self.root / "state").mkdir()
        self.conf.write_text(slurm_conf(self.root, ctld_port, node_ports, os.cpu_count() or 1,
                                        socket.gethostname().split(".")[0]))
        shutil.chown(self.root / "state", "slurm", "slurm")
        os.chmod(self.root, 0o755)  # slurmctld reads the config and writes its pid file and log as user slurm
        shutil.chown(self.root, "slurm", "slurm")
        if not munge_works():
            Path("/run/munge").mkdir(mode=0o755, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            run([*NICE, "runuser", "-u", "munge", "--", "/usr/sbin/munged"])
            self.started_munge = True
        conf = ["-f", str(self.conf)]
        run([*NICE, "/usr/sbin/slurmctld", *conf])
        for node in NODES:
            run([*NICE, "/usr/sbin/slurmd", *conf, "-N", node])
        self.wait_idle(timeout)

    def command(self, *args: str, timeout: float = 30, check: bool = True) -> str:
        """Runs a SLURM command (sinfo, scontrol, ...) against this cluster; returns its stdout."""
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})
        if check and done.returncode != 0:
            raise RuntimeError(f"`{' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def wait_idle(self, timeout: float) -> None:
        deadline, states = time.time() + timeout, ""
        while time.time() < deadline:
            states = self.command("sinfo", "-h", "-N", "-o", "%N %t", check=False)
            if {tuple(line.split()) for line in states.splitlines()} >= {(n, "idle") for n in NODES}:
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"the nodes are not idle after {timeout:.0f} s: sinfo says {states.strip()!r}")

    def job(self, job_id: str) -> dict[str, str]:
        """The `scontrol show job` fields of a job (JobState, Restarts, NodeList, ExitCode, ...)."""
        text = self.command("scontrol", "show", "job", "-o", str(job_id))
        return dict(field.split("=", 1) for field in text.split() if "=" in field)

    def wait(self, job_id: str, timeout: float, until=lambda job: job["JobState"] in ENDED) -> dict[str, str]:
        """Polls the job until `until(fields)` (by default: it ended); raises TimeoutError otherwise."""
        deadline, fields = time.time() + timeout, {}
        while time.time() < deadline:
            fields = self.job(job_id)
            if until(fields):
                return fields
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} after {timeout:.0f} s: {fields.get('JobState')} "
                           f"({fields.get('Reason')}), restarts {fields.get('Restarts')}")

    def logs(self, lines: int = 20) -> str:
        """The tails of the daemons' logs (for failure messages)."""
        parts = []
        for log in sorted(self.root.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancels what still runs, stops the daemons by their pid files, removes the folder."""
        if (self.root / "slurmctld.pid").is_file():
            self.command("scancel", "--full", "--user=root", check=False)
            time.sleep(1)
        for node in NODES:
            stop_pid_file(self.root / f"slurmd-{node}.pid")
        stop_pid_file(self.root / "slurmctld.pid")
        if self.started_munge:
            stop_pid_file(MUNGE_PID)
        shutil.rmtree(self.root, ignore_errors=True)
