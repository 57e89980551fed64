"""`python -m snakemake ARGS` without its two seconds of imports: each call is a process forked from a
server that imported Snakemake (its command line and its plugins) once, with no leukobench module and no
job run in it, so every call plans from nothing as a fresh process does.

A test suite plans the workflow about a hundred times (dry runs of a finished run, of each preset); each
fresh `python -m snakemake` spends 2 of its 2.7 s importing Snakemake, its plugins and pandas. A call's
environment is the forked process's (and its jobs'), its PYTHONPATH that process's module path, as at a
fresh start; what runs only at a start (a sitecustomize module: an import probe) needs a process of its own.
"""
import importlib.util
import multiprocessing
import multiprocessing.forkserver
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SERVER_MARK = "LEUKOBENCH_TEST_SNAKEMAKE_SERVER"  # in the server's environment only
HERE = str(Path(__file__).parent)
if os.environ.get(SERVER_MARK):  # the server, preloading this module: what every call needs, once, not in pytest
    from snakemake.cli import get_argument_parser
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    ExecutorPluginRegistry()  # the plugins (SLURM's imports pandas), collected once, not per call
    get_argument_parser()  # the rest of what the command line imports
    ENTRY_POINT = importlib.util.find_spec("snakemake.__main__").origin  # sys.argv[0] of `python -m snakemake`
    # the module path of a fresh interpreter, less its own first entry (the folder a script runs in) and the
    # server's PYTHONPATH (this folder)
    FRESH_PATH = [entry for entry in sys.path if entry not in ("", HERE)]

_SERVER = multiprocessing.get_context("forkserver")
_SERVER.set_forkserver_preload([__name__])
_STARTING = threading.Lock()
_started = False


def _start_server() -> None:
    """Start the server once, marked, and with this folder on its path so that it can preload this module
    (Python 3.11's forkserver does not take its parent's sys.path for its preloads; the calls set their own
    environment)."""
    global _started
    with _STARTING:
        if _started:
            return
        saved = dict(os.environ)
        os.environ.update({SERVER_MARK: "1", "PYTHONPATH": os.pathsep.join(filter(None, [HERE, saved.get("PYTHONPATH")]))})
        try:
            multiprocessing.forkserver.ensure_running()
            _started = True
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _as_main(args: list[str], cwd: str, environment: dict, stdout: str, stderr: str) -> None:
    """In the forked process: what `python -m snakemake ARGS` run in ``cwd`` with ``environment`` does,
    its output to the two files."""
    os.environ.clear()
    os.environ.update(environment)  # the caller's, not the server's: what the jobs snakemake starts inherit
    os.chdir(cwd)
    python_path = [entry for entry in environment.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [cwd, *python_path, *FRESH_PATH]  # as `python -m` in cwd with that PYTHONPATH starts
    for fd, path in ((1, stdout), (2, stderr)):
        file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(file, fd)
        os.close(file)
    sys.argv = [ENTRY_POINT, *args]
    from snakemake.cli import main  # imported by the server already

    try:
        main(args)  # exits with Snakemake's code, which becomes the process's exit code
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def run_snakemake(args: list, *, cwd=None, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m snakemake ARGS` in ``cwd`` (default: here) with the environment ``env`` (default: this
    process's), as `subprocess.run(..., capture_output=True, text=True, env=env, timeout=timeout)` returns it."""
    args, env = [str(arg) for arg in args], dict(os.environ if env is None else env)
    for entry in env.get("PYTHONPATH", "").split(os.pathsep):
        if entry and any((Path(entry) / f"{name}.py").exists() for name in ("sitecustomize", "usercustomize")):
            raise ValueError(f"PYTHONPATH {entry} runs a module at a start, which a forked process does not: "
                             "run snakemake with subprocess.run")
    _start_server()
    with tempfile.TemporaryDirectory() as scratch:
        stdout, stderr = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
        process = _SERVER.Process(target=_as_main, args=(args, str(cwd or os.getcwd()), env, stdout, stderr))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["snakemake", *args], timeout)
        with open(stdout, errors="replace") as out, open(stderr, errors="replace") as err:
            return subprocess.CompletedProcess(["snakemake", *args], process.exitcode, out.read(), err.read())
