"""The intake writer's process (bridge.intake.writer holds what it does): its entry point, and the
supervisor gunicorn's master uses to start it and restart it whenever it exits."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bridge import logs
from bridge.app.heap import freeze_startup_objects
from bridge.intake.writer import IntakeWriter, listen
from bridge.runtime import Runtime

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="kyc-bridge intake writer (started by bridge/app/gunicorn_conf.py)")
    parser.add_argument("--socket", required=True)
    args = parser.parse_args(argv)

    logs.configure()
    runtime = Runtime.from_env(os.environ)  # the same environment as the web processes
    writer = IntakeWriter(runtime, listen(args.socket), parent_pid=os.getppid())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: writer.stop())
    freeze_startup_objects()
    log.info("intake writer ready (pid %d)", os.getpid())
    writer.serve_forever()
    log.info("intake writer stopped: %d event(s) answered in %d transaction(s)", writer.committed, writer.commits)
    runtime.engine.dispose()


# -- the process, for gunicorn's master --------------------------------------------------------------

class WriterProcess:
    """Starts `python -m bridge.app.intake_process` and restarts it whenever it exits, until `stop`."""

    def __init__(self, path: str | None = None) -> None:
        self._path = path
        self._own_directory: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._endings: dict[int, str] = {}  # pid -> how it ended, until the supervisor logs it

    @property
    def path(self) -> str:
        if self._path is None:  # a private directory: nobody else can reach the socket or replace it
            self._own_directory = tempfile.mkdtemp(prefix="kyc-bridge-intake-")
            self._path = str(Path(self._own_directory) / "intake.sock")
        return self._path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, ready_seconds: float = 30.0) -> bool:
        """Start it and wait until it accepts connections; False if it did not come up."""
        self._spawn()
        threading.Thread(target=self._supervise, name="intake-writer-supervisor", daemon=True).start()
        return self.wait_ready(ready_seconds)

    def wait_ready(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                return True
            except OSError:
                time.sleep(0.05)
            finally:
                probe.close()
        return False

    def _spawn(self) -> None:
        with self._lock:
            # Its own session: a Ctrl-C on gunicorn reaches the web processes first; `stop` ends
            # the writer after they are gone, so none of their events is cut off mid-commit.
            self._proc = subprocess.Popen([sys.executable, "-m", "bridge.app.intake_process", "--socket", self.path],
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            ending = self._wait(proc)
            if self._stopping.is_set():
                return
            log.error("intake writer (pid %d) %s; restarting it", proc.pid, ending)
            self._stopping.wait(1)  # a writer that cannot start must not spin
            if not self._stopping.is_set():
                self._spawn()

    def _wait(self, proc: subprocess.Popen[bytes]) -> str:
        """Until the writer exits; how it ended ("was killed by SIGKILL", "exited with status 1")."""
        try:  # WNOWAIT: learn the status and leave the reaping to Popen
            self._note(proc.pid, os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT))
        except ChildProcessError:
            pass  # reaped by another waiter first: note_exit may have seen it
        proc.wait()  # when someone else reaped it, Popen reports 0: not to be believed
        with self._lock:
            return self._endings.pop(proc.pid, "exited (its status was taken by another waiter)")

    def note_exit(self) -> None:
        """Record how the writer ended, if it has, without reaping it. gunicorn's master reaps every
        child with waitpid(-1), which left Popen a status of 0 for a writer killed with -9:
        gunicorn.conf.py calls this before the master reaps."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        try:
            self._note(proc.pid, os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT))
        except ChildProcessError:
            pass

    def _note(self, pid: int, info: os.waitid_result | None) -> None:
        if info is None:
            return  # still running
        if info.si_code == os.CLD_EXITED:
            ending = f"exited with status {info.si_status}"
        else:
            try:
                name = signal.Signals(info.si_status).name
            except ValueError:
                name = f"signal {info.si_status}"
            ending = f"was killed by {name}"
        with self._lock:
            self._endings.setdefault(pid, ending)

    def stop(self, wait_seconds: float = 20.0) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(wait_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_directory is not None:
            shutil.rmtree(self._own_directory, ignore_errors=True)


if __name__ == "__main__":  # run as bridge.app.intake_process, so its log lines carry that name
    from bridge.app.intake_process import main as run

    run(sys.argv[1:])
