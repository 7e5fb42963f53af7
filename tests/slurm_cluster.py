"""A one-node SLURM cluster for the tests: munged, slurmctld and slurmd started as root without systemd, from a
slurm.conf in a state folder of their own (the clients find it through SLURM_CONF). Only the daemons started
here are stopped; a munged already running is used as it is.

    python tests/slurm_cluster.py      # brings the cluster up, prints its start-up time and sinfo, stops it
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")
PACKAGES = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"


def unavailable() -> str | None:
    """Why no cluster can be started on this machine, or None."""
    missing = [name for name in DAEMONS if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
    if missing:
        return f"no SLURM here ({', '.join(missing)} missing; `{PACKAGES}` installs them)"
    if os.geteuid() != 0:
        return "starting a SLURM cluster needs root (its daemons run as root here)"
    return None


def node_line() -> str:
    """NodeName=localhost with the CPUs, sockets, cores and threads `slurmd -C` finds, and 90% of its memory."""
    fields = dict(part.split("=", 1) for part in _run(["slurmd", "-C"]).splitlines()[0].split())
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    shape = " ".join(f"{key}={fields[key]}" for key in keep if key in fields)
    return f"NodeName=localhost NodeAddr=127.0.0.1 {shape} RealMemory={int(int(fields['RealMemory']) * 0.9)}"


def slurm_conf(state: Path) -> str:
    return "\n".join(
        [
            "ClusterName=experiments",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "ProctrackType=proctrack/linuxproc",  # no cgroups: their plugins fail in a container
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=5",
            "MailProg=/bin/true",
            "SchedulerParameters=sched_interval=2,bf_interval=1",  # a requeued job waits seconds, not a minute
            "AuthInfo=cred_expire=10",  # else a requeued job stays pending (BeginTime) for about 120 s
            f"StateSaveLocation={state / 'ctld'}",
            f"SlurmdSpoolDir={state / 'spool'}",
            f"SlurmctldPidFile={state / 'slurmctld.pid'}",
            f"SlurmdPidFile={state / 'slurmd.pid'}",
            f"SlurmctldLogFile={state / 'slurmctld.log'}",
            f"SlurmdLogFile={state / 'slurmd.log'}",
            node_line(),
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class Cluster:
    def __init__(self, state: Path) -> None:
        self.state = Path(state)
        self.conf = self.state / "slurm.conf"
        self.env = os.environ | {"SLURM_CONF": str(self.conf)}  # for sbatch, sinfo and the jobs they start
        self.started: list[subprocess.Popen] = []
        self.startup_seconds: float | None = None

    def start(self, timeout: float = 90) -> "Cluster":
        began = time.monotonic()
        for folder in ("ctld", "spool"):
            (self.state / folder).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(slurm_conf(self.state))
        self._start_munge()
        self._daemon(["slurmctld", "-D", "-f", str(self.conf)], "slurmctld.out")
        self._daemon(["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)], "slurmd.out")
        deadline = time.monotonic() + timeout
        while self.node_state() != "idle":
            dead = [p.args[0] for p in self.started if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the SLURM cluster did not come up ({dead or 'timed out'}):\n{self.logs()}")
            time.sleep(0.5)
        self.startup_seconds = round(time.monotonic() - began, 1)
        return self

    def node_state(self) -> str:
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env)
        return done.stdout.strip()

    def stop(self) -> None:
        if self.started:  # this cluster's jobs first, so no job step outlives its daemons
            subprocess.run(["scancel", "--quiet", "--partition=debug"], env=self.env, capture_output=True)
        for process in reversed(self.started):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.started.clear()

    def logs(self) -> str:
        files = sorted(self.state.glob("*.log")) + sorted(self.state.glob("*.out"))
        return "\n".join(f"--- {f.name}\n" + "\n".join(f.read_text().splitlines()[-15:]) for f in files)

    def _start_munge(self) -> None:
        if subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0:
            return  # a munged already answers: its key is the one the daemons use
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        self._daemon(["/usr/sbin/munged", "-F"], "munged.out", user="munge")
        deadline = time.monotonic() + 20
        while subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"munged did not answer within 20 s:\n{self.logs()}")
            time.sleep(0.2)

    def _daemon(self, command: list[str], log: str, user: str | None = None) -> None:
        with open(self.state / log, "w") as out:
            self.started.append(
                subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=self.env, user=user)
            )


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    if reason := unavailable():
        sys.exit(f"error: {reason}")
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="slurm-"))).start()
    try:
        print(f"SLURM cluster up in {cluster.startup_seconds} s")
        subprocess.run(["sinfo"], env=cluster.env, check=True)
    finally:
        cluster.stop()
