"""Starting salamandra-tune as several processes for the distributed tests,
as users do: torchrun from the project's venv, or as srun would (SLURM_*
variables, no MASTER_ADDR/PORT: the contract is derived from them)."""
import os
import socket
import subprocess
import sys

TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(st, processes, args, **kw):
    """Runs `st args` as `processes` processes under torchrun; returns the CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [TORCHRUN, "--nproc-per-node", str(processes), "--master-addr", "127.0.0.1", "--master-port",
               str(free_port()), "--no-python", st, *args]
    return subprocess.run(command, text=True, capture_output=True, env=env, **kw)


def srun_like(st, processes, args):
    """Starts `processes` processes with srun's variables; returns the Popen objects."""
    job_id = free_port() - 20000  # srun's port is derived as 20000 + job id % 20000
    started = []
    for rank in range(processes):
        env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")}
        env.update(OMP_NUM_THREADS="1", SLURM_NTASKS=str(processes), SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
                   SLURM_JOB_ID=str(job_id), SLURM_STEP_NODELIST="localhost")
        started.append(subprocess.Popen([st, *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env))
    return started
