"""Real Kannel on loopback for tests: bearerbox and smsbox from deploy/kannel's template,
and fakesmsc (kannel-extras) as the telco's SMSC, through bearerbox's `fake` smsc.

fakesmsc connects to bearerbox, sends the messages it is given (phones texting the short
code) and prints every message bearerbox hands it ("Got message N: <from to type data>").
One fakesmsc serves one conversation turn: `say` starts a new one with the next message,
and every instance's output is read together."""
from __future__ import annotations

import re
import shutil
import socket
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes


def _decode(data: str) -> bytes:
    """fakesmsc prints bytes URL-encoded, a space as '+' (a real '+' as %2B)."""
    return unquote_to_bytes(data.replace("+", " "))

import requests

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "kannel" / "kannel.conf.template"
BEARERBOX, SMSBOX = shutil.which("bearerbox") or "/usr/sbin/bearerbox", shutil.which("smsbox") or "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>\s*$")


def available() -> bool:
    return all(Path(p).exists() for p in (BEARERBOX, SMSBOX, FAKESMSC))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Received:
    """One message as it reached the SMSC: the whole text of all its parts."""
    sender: str
    to: str
    raw: bytes        # the message's bytes on the wire, parts joined
    coding: str       # "ucs2" (UTF-16BE on the wire) or "text"
    parts: int

    @property
    def text(self) -> str:
        return self.raw.decode("utf-16-be") if self.coding == "ucs2" else self.raw.decode("latin-1")


class KannelStack:
    def __init__(self, workdir: Path, inbound_url: str, inbound_token: str):
        self.dir = workdir
        self.ports = {name: free_port() for name in ("admin", "smsbox", "sendsms", "smsc")}
        self.user, self.password, self.admin_password = "motcua", "kannel-sendsms-secret", "kannel-admin-secret"
        (workdir / "smsc-fake.conf").write_text(
            "group = smsc\nsmsc = fake\nsmsc-id = fake\n"
            f"port = {self.ports['smsc']}\nconnect-allow-ip = 127.0.0.1\n")
        rendered = string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
            KANNEL_ADMIN_PORT=self.ports["admin"], KANNEL_ADMIN_PASSWORD=self.admin_password,
            KANNEL_SMSBOX_PORT=self.ports["smsbox"], KANNEL_SENDSMS_PORT=self.ports["sendsms"],
            KANNEL_SENDSMS_USER=self.user, KANNEL_SENDSMS_PASSWORD=self.password, KANNEL_SHORT_CODE="8188",
            KANNEL_INBOUND_URL=inbound_url, KANNEL_INBOUND_TOKEN=inbound_token, KANNEL_BEARERBOX_HOST="127.0.0.1",
            KANNEL_STATE_DIR=str(workdir), KANNEL_SMSC_CONF=str(workdir / "smsc-fake.conf"))
        self.conf = workdir / "kannel.conf"
        self.conf.write_text(rendered, encoding="utf-8")
        self.bearerbox = self.smsbox = self.fakesmsc = None
        self.turns = 0

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms']}/cgi-bin/sendsms"

    # ------------------------------------------------------------ processes
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = open(self.dir / f"{name}.out", "ab")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def _wait(self, check, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"Kannel: {what} within {timeout} s; see {self.dir}")

    def smsc_online(self) -> bool:
        try:
            status = requests.get(f"http://127.0.0.1:{self.ports['admin']}/status.txt",
                                  params={"password": self.admin_password}, timeout=2).text
        except requests.RequestException:
            return False
        return "FAKE" in status and "online" in status.split("SMSC connections", 1)[-1]

    def start(self) -> None:
        # -v 2 as entrypoint.sh: the console at debug would print passwords and texts
        self.bearerbox = self._spawn("bearerbox", [BEARERBOX, "-v", "2", str(self.conf)])
        self._wait(lambda: _listening(self.ports["admin"]) and _listening(self.ports["smsbox"]), "bearerbox listens")
        self.smsbox = self._spawn("smsbox", [SMSBOX, "-v", "2", str(self.conf)])
        self._wait(lambda: _listening(self.ports["sendsms"]), "smsbox takes sendsms")
        self.connect_smsc()

    def connect_smsc(self, *messages: str) -> None:
        """A fakesmsc connected to bearerbox; it sends `messages` ("from to text ...")."""
        self.disconnect_smsc()
        self.turns += 1
        argv = [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["smsc"]), "-i", "0.2", "-m", str(len(messages))]
        self.fakesmsc = self._spawn(f"fakesmsc-{self.turns}", argv + list(messages or ["0 0 text unused"]))
        self._wait(self.smsc_online, "the fake SMSC connects")

    def say(self, phone: str, text: str) -> None:
        """A phone texts the short code (through a new fakesmsc turn)."""
        self.connect_smsc(f"{phone} 8188 text {text}")

    def disconnect_smsc(self) -> None:
        if self.fakesmsc is not None:
            _stop(self.fakesmsc)
            self.fakesmsc = None

    def stop_bearerbox(self) -> None:
        """bearerbox down: smsbox loses it and ends too, the SMSC link drops."""
        _stop(self.bearerbox)
        for proc in (self.smsbox, self.fakesmsc):
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    _stop(proc)
        self.fakesmsc = None
        self._wait(lambda: not _listening(self.ports["sendsms"]), "smsbox stops")

    def stop(self) -> None:
        for proc in (self.fakesmsc, self.smsbox, self.bearerbox):
            if proc is not None and proc.poll() is None:
                _stop(proc)

    # ------------------------------------------------------------ what the SMSC received
    def received(self) -> list[Received]:
        """Every message the fake SMSC got, concatenated parts joined, in arrival order."""
        whole, pending = [], {}
        for out in sorted(self.dir.glob("fakesmsc-*.out"), key=lambda p: int(p.stem.split("-")[1])):
            for line in out.read_text(encoding="latin-1").splitlines():
                match = GOT.search(line)
                if not match:
                    continue
                sender, to, kind, data = match.groups()
                if kind == "udh":
                    udh_text, payload = data.split(" ", 1)
                    udh = _decode(udh_text)
                    _, payload = payload.split(" ", 1)   # "data <bytes>"
                    ref, total, seq = udh[3], udh[4], udh[5]
                    parts = pending.setdefault((to, ref), {})
                    parts[seq] = _decode(payload)
                    if len(parts) == total:
                        raw = b"".join(parts[i] for i in range(1, total + 1))
                        # Kannel marks no coding on a part; UCS-2 is recognised by its bytes.
                        coding = "ucs2" if raw[:1] == b"\x00" or len(raw) % 2 == 0 and b"\x00" in raw else "text"
                        whole.append(Received(sender, to, raw, coding, total))
                        del pending[(to, ref)]
                elif kind == "ucs-2":
                    whole.append(Received(sender, to, _decode(data), "ucs2", 1))
                elif kind == "data":
                    whole.append(Received(sender, to, _decode(data), "text", 1))
                else:
                    whole.append(Received(sender, to, data.encode("latin-1"), "text", 1))
        return whole

    def logs(self) -> str:
        """Everything Kannel itself wrote: its access log, both boxes' log files and
        their consoles."""
        names = ("access.log", "bearerbox.log", "smsbox.log", "bearerbox.out", "smsbox.out")
        return "\n".join((self.dir / n).read_text(encoding="utf-8", errors="replace")
                         for n in names if (self.dir / n).exists())

    def received_by(self, phone: str) -> list[Received]:
        return [m for m in self.received() if m.to == phone]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
