"""RabbitMQ's command-line tools (rabbitmqctl, rabbitmq-plugins, rabbitmq-diagnostics) as the
test support runs them: `run_cli` is the one way in.

Two things go wrong with these tools on a machine that runs several test suites at once, and
made the shared broker look hung:

- Each call starts a hidden Erlang node that listens on a distribution port taken from
  RABBITMQ_CTL_DIST_PORT_MIN..MAX, by default 35672-35682 (the broker's 25672 + 10000, eleven
  ports) and shared by every CLI call on the machine. A few hung calls fill it, and every new
  call fails at once with `nodistribution`, before it reaches any node. So each test process
  gets a port block of its own (`ctl_port_range`).
- A call with a timeout that runs out is not over: as root, `rabbitmqctl` is a shell script
  that runs the tool through `su rabbitmq -c`, which puts the Erlang VM in a session of its
  own, so subprocess's kill of the script leaves the VM running, its port taken. So on a
  timeout the whole tree of the call is killed (`_kill_tree`), and the error names the command.

The port blocks lie between the broker's own ports (AMQP 5672, management 15672, distribution
25672, its CLI default 35672-35682 — all outside) and the start of the kernel's ephemeral
range (32768 here), from which every test node, relay and server takes its ports
(`free_port()`: RabbitNode's AMQP and distribution ports, the WAN links, the embedded
database). A CLI port there could be handed out by the kernel to none of them; and none of
them can take a CLI port from under a call."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

PORTS_FROM = 28000   # above the broker's 25672 (and 27017, a MongoDB's default)
BLOCK = 16           # ports per test process: one per CLI call running at once in it
DEFAULT_TIMEOUT = 60.0

_chosen: dict[int, tuple[int, int]] = {}  # process id -> its block (a forked child chooses again)


class RabbitCliError(RuntimeError):
    """A CLI call that failed or did not finish; the message names the command."""

    def __init__(self, message: str, command: list[str], returncode: int | None = None,
                 output: str = "", stderr: str = ""):
        super().__init__(message)
        self.command = command
        self.returncode = returncode
        self.output = output
        self.stderr = stderr


class RabbitCliTimeout(RabbitCliError, subprocess.TimeoutExpired):
    """A CLI call killed (with everything it started) once its timeout ran out. Also a
    TimeoutExpired, for callers written against subprocess.run."""

    def __init__(self, message: str, command: list[str], timeout: float, output: str = "", stderr: str = ""):
        RabbitCliError.__init__(self, message, command, None, output, stderr)
        self.cmd = command
        self.timeout = timeout

    def __str__(self) -> str:
        return self.args[0]


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _in_use(port: int) -> bool:
    # The CLI's Erlang node listens on every interface.
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def ctl_port_range() -> tuple[int, int]:
    """This process's CLI distribution ports (first, last): a block chosen from the process id,
    so that the test processes running side by side have different ones, passed over for the
    next while a port of it is taken (another process whose id fell on the same block)."""
    pid = os.getpid()
    if pid in _chosen:
        return _chosen[pid]
    end = _ephemeral_start()
    if end - PORTS_FROM < BLOCK:  # an unusual kernel setting: a range of its own past the broker's defaults
        first = 36000 + (pid % 100) * BLOCK
        _chosen[pid] = (first, first + BLOCK - 1)
        return _chosen[pid]
    blocks = (end - PORTS_FROM) // BLOCK
    start = pid % blocks
    for i in range(blocks):
        first = PORTS_FROM + ((start + i) % blocks) * BLOCK
        if not any(_in_use(port) for port in range(first, first + BLOCK)):
            break
    else:
        first = PORTS_FROM + start * BLOCK
    _chosen[pid] = (first, first + BLOCK - 1)
    return _chosen[pid]


def cli_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (the process's environment by default) with this process's CLI port range."""
    low, high = ctl_port_range()
    return dict(os.environ if base is None else base,
                RABBITMQ_CTL_DIST_PORT_MIN=str(low), RABBITMQ_CTL_DIST_PORT_MAX=str(high))


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    """The call's process, its group and every process under it (the VM that `su` started in
    a session of its own among them). Stopped first, so that none starts another or is
    reparented (and lost) while the others die."""
    pids: list[int] = []
    for _ in range(3):  # until no new one shows up
        more = [p for p in [process.pid, *_descendants(process.pid)] if p not in pids]
        for pid in more:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        if not more:
            break
        pids += more
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def run_cli(tool: str, *args: str, node: str | None = None, stdin: str | None = None,
            timeout: float = DEFAULT_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    """`tool [-n node] args...` with this process's CLI port range, at most `timeout`
    seconds. Past that the call and everything it started are killed, and RabbitCliTimeout
    names the command. A non-zero exit raises RabbitCliError with the tool's message (when
    `check`). Output is text."""
    command = [_tool(tool), *(["-n", node] if node else []), *args]
    shown = " ".join([tool, *command[1:]])
    started = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env(), start_new_session=True)
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        try:
            out, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a pipe still held open: give up on the output
            out, err = "", ""
        raise RabbitCliTimeout(f"`{shown}` did not finish in {timeout:g} s; killed with every process it had "
                               f"started (CLI ports {'-'.join(map(str, ctl_port_range()))})",
                               command, timeout, out or "", err or "") from None
    except BaseException:  # interrupted (Ctrl-C, a test's own timeout): leave no CLI behind
        _kill_tree(process)
        process.wait()
        raise
    if check and process.returncode != 0:
        message = (err or out).strip()[:400]
        raise RabbitCliError(f"`{shown}` exited {process.returncode} after {time.monotonic() - started:.1f} s: "
                             f"{message}", command, process.returncode, out, err)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def rabbitmqctl(*args: str, node: str | None = None, stdin: str | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> str:
    """`rabbitmqctl [-n node] args...`: its standard output (RabbitCliError otherwise)."""
    return run_cli("rabbitmqctl", *args, node=node, stdin=stdin, timeout=timeout).stdout
