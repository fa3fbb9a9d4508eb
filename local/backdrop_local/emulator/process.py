"""The provider emulator in a process of its own, as the local stack runs it.

A provider's work (cutting the subject out, painting a background) happens on its machines,
not ours: in the stack's process it took a tenth of the one core that plays all of AWS
(bench/batch.py). In a child process it runs on another core, and the stack reaches it
over HTTP as it would reach Picsart. The child reads its settings from its standard input
and ends when that closes: when the stack stops it, or dies.

    python -m backdrop_local.emulator.process   (settings as JSON on the first line)
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile

from backdrop_local.emulator.server import ProviderEmulator, provider_url
from backdrop_local.emulator.settings import EmulatorSettings

_READY = "listening "


class EmulatorProcess:
    """Starts and stops a child process serving a `ProviderEmulator`; the same URLs."""

    def __init__(self, settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 0):
        self._settings = settings
        self._host = host
        self._port = port
        self._child: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> None:
        with tempfile.TemporaryFile("w+") as errors:
            child = subprocess.Popen(  # noqa: S603 (our own interpreter and code)
                [sys.executable, "-m", __name__, self._host, str(self._port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=_environment(),
            )
            stdin, stdout = child.stdin, child.stdout
            assert stdin is not None
            assert stdout is not None
            stdin.write(self._settings.model_dump_json() + "\n")
            stdin.flush()
            line = stdout.readline()
            if not line.startswith(_READY):
                child.wait(timeout=10)
                errors.seek(0)
                raise RuntimeError(f"the provider emulator did not start: {errors.read().strip()}")
        self._child = child
        self.base_url = line.removeprefix(_READY).strip()

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def base_url_of(self, provider: str) -> str | None:
        return provider_url(self.base_url, provider)

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        assert child.stdin is not None
        child.stdin.close()  # the child's cue to stop
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _environment() -> dict[str, str]:
    # The child imports what this process imports, wherever that comes from.
    path = os.pathsep.join(p for p in sys.path if p)
    return {**os.environ, "PYTHONPATH": path}


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    # Ctrl-C reaches the whole process group: the stack stops this child itself, last.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for noisy in ("werkzeug", "backdrop_local.emulator"):  # as quiet as the stack
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    settings = EmulatorSettings.model_validate_json(sys.stdin.readline())
    emulator = ProviderEmulator(settings, host=host, port=port)
    try:
        emulator.start()
    except OSError as error:
        print(f"cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    print(_READY + emulator.base_url, flush=True)
    try:
        sys.stdin.read()  # until the stack closes it, or ends
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
