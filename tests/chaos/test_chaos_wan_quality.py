"""Fault 5: the ward's WAN link turns slow and lossy while the office serves.

The office is the real `motcua up --profile edge` on a broker of its own (a second
RabbitMQ node); the centre is the main broker. `tc netem` is not available on every kernel,
so the link between them is the TCP relay of fault 4, degraded instead of cut (see
motcua_testing.chaos.LinkQuality): every chunk is delayed, in order, both ways; loss shows
as TCP shows it, a stream stalled while a segment is retransmitted, and at heavy loss the
connection reset. While a kiosk issues tickets and officers serve at two counters, the link
goes through phases:

  1. delay 200 ± 50 ms each way, 128 kB/s;
  2. the same with 5 % of chunks stalled 0.2-1 s;
  3. heavy loss: 20 % stalls and 3 % of chunks resetting the connection, until the link
     has reset the shovels twice (they reconnect through the bad link);
  4. healed.

Checked: every ticket the kiosk issued (HTTP 201) and every ticket an officer served
reaches the centre, each taking effect once through an idempotent consumer, the tickets in
the order they were issued; the office never answered 5xx; the link really reset the
shovels in phase 3 and they reconnected; and the centre had everything within 45 s of the
link healing.

A first, short test checks the degraded relay itself: chunks delayed and stalled but never
reordered, resets counted, and a healed link clear again."""
from __future__ import annotations

import socket
import threading
import time

from motcua_testing.chaos import WanLink, wait_until
from motcua_platform.embedded import free_port

DELAY = {"delay": 0.2, "jitter": 0.05, "bandwidth": 128_000}
SLOW_PHASES = [  # (name, shaping, seconds)
    ("delay 200±50 ms", DELAY, 8.0),
    ("delay + 5 % stalls", {**DELAY, "stall_probability": 0.05}, 10.0),
]
HEAVY_LOSS = ("heavy loss: 20 % stalls, resets", {**DELAY, "stall_probability": 0.2, "reset_probability": 0.03}, 12.0)
RESETS = 2  # the heavy loss goes on until the link has reset the shovels this many times ...
HEAVY_LOSS_LIMIT = 40.0  # ... at most this long
HEALED_WORK = 4.0
CENTRE_WAIT = 45.0


def test_the_degraded_link_delays_and_stalls_chunks_without_reordering_them():
    echo = EchoServer().start()
    link = WanLink("127.0.0.1", echo.port, seed=5).start()
    try:
        link.degrade(delay=0.01, jitter=0.02, stall_probability=0.2, stall_time=(0.02, 0.1))
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as client:
            sent = b""
            for i in range(150):  # small writes apart in time, so that each is a chunk of its own
                message = f"{i:05d};".encode()
                client.sendall(message)
                sent += message
                time.sleep(0.002)
            received = receive(client, len(sent))
        assert received == sent, "the link reordered or lost bytes of a connection"
        assert link.stats["stalls"] > 0 and link.stats["delayed"] > 0, link.report()

        link.degrade(reset_probability=1.0)
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as client:
            client.sendall(b"hello")
            assert receive(client, 5) == b"", "a reset connection brings nothing back"
        assert link.resets == 1, link.report()

        link.heal()
        with socket.create_connection(("127.0.0.1", link.port), timeout=10) as client:
            client.sendall(b"healed")
            assert receive(client, 6) == b"healed"
        print("\n" + link.report())
    finally:
        link.close()
        echo.close()


def test_office_serves_over_a_slow_lossy_link_and_the_centre_gets_everything_once(
        edge_office, wan, office_work, centre_arrivals, checker):
    issued = checker("5. WAN latency and loss", "kiosk tickets and counter service at one office")
    served = checker("5. WAN latency and loss (served tickets)", "officers serving at 2 counters")
    work = office_work(issued, served)
    work.take_tickets(5)

    day = OfficeDay(work).start()
    try:
        for name, shaping, seconds in SLOW_PHASES:
            wan.degrade(**shaping)
            day.keep_working(seconds)
            print(f"\nphase {name} ({wan.quality.describe()}): {wan.report()}")

        name, shaping, seconds = HEAVY_LOSS
        resets_before, connections_before = wan.resets, wan.stats["connections"]
        wan.degrade(**shaping)
        day.keep_working(seconds, until=lambda: wan.resets >= resets_before + RESETS, at_most=HEAVY_LOSS_LIMIT)
        print(f"\nphase {name} ({wan.quality.describe()}): {wan.report()}")
        assert wan.resets >= resets_before + RESETS, \
            f"the link reset the shovels {wan.resets - resets_before} times in {HEAVY_LOSS_LIMIT:.0f} s"

        wan.heal()
        healed_at = time.monotonic()
        day.keep_working(HEALED_WORK)
    finally:
        day.stop()

    arrivals = centre_arrivals(issued, served)
    complete = wait_until(arrivals.collect, timeout=CENTRE_WAIT - (time.monotonic() - healed_at), interval=1.0)
    waited = time.monotonic() - healed_at
    arrivals.observe()
    issued.load = (f"{len(issued.acknowledged)} tickets, {len(served.acknowledged)} served at 2 counters, "
                   f"{len(SLOW_PHASES) + 1} phases of degraded link: "
                   f"{'; '.join(name for name, _, _ in [*SLOW_PHASES, HEAVY_LOSS])}; "
                   f"link: {wan.report()}; centre complete {waited:.0f} s after healing")

    server_errors = {status: n for status, n in work.statuses.items() if status >= 500}
    assert not server_errors, f"the office answered {server_errors}"
    for c in (issued, served):
        assert not c.lost, f"{c.fault}: lost {sorted(c.lost)[:5]}"
        assert not c.duplicated, f"{c.fault}: duplicated {sorted(c.duplicated)[:5]}"
        assert not c.unexpected, f"{c.fault}: unexpected {sorted(c.unexpected)[:5]}"
    assert complete, f"the centre did not have everything {CENTRE_WAIT:.0f} s after the link healed"
    assert wan.stats["connections"] > connections_before, "the shovels reconnected after the resets"
    numbers = arrivals.first_arrivals("A")
    assert numbers == sorted(numbers), f"tickets reached the centre out of order: {numbers}"


class OfficeDay:
    """The kiosk and the counters at work in a thread of their own while the test changes
    the link: a ticket every 0.2 s or so, both counters calling and serving every other
    ticket. The first failed answer stops the day and fails the test."""

    def __init__(self, work):
        self.work = work
        self.failure: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OfficeDay:
        self._thread.start()
        return self

    def _run(self) -> None:
        tickets = 0
        try:
            while not self._stopping.is_set():
                self.work.take_tickets(1)
                tickets += 1
                if tickets % 2 == 0:
                    self.work.serve_at_counters()
                self._stopping.wait(0.2)
        except Exception as error:  # noqa: BLE001 (a refused answer, the office unreachable: any fails the test)
            self.failure = error

    def keep_working(self, seconds: float, until=lambda: True, at_most: float | None = None) -> None:
        """`seconds`, then on until `until()` holds, `at_most` seconds in all."""
        started = time.monotonic()
        while True:
            self._check()
            elapsed = time.monotonic() - started
            if (elapsed >= seconds and until()) or elapsed >= (at_most or seconds):
                return
            time.sleep(0.2)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(30)
        self._check()

    def _check(self) -> None:
        if self.failure is not None:
            raise AssertionError(f"the office failed while its link was degraded: {self.failure}") from self.failure


class EchoServer:
    """Sends back whatever it receives: the far end of the relay in the link's own test."""

    def __init__(self):
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))

    def start(self) -> EchoServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection: socket.socket) -> None:
        with connection:
            try:
                while data := connection.recv(65536):
                    connection.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        self._listener.close()


def receive(client: socket.socket, size: int) -> bytes:
    """Up to `size` bytes, fewer if the connection ends or is reset first."""
    data = b""
    try:
        while len(data) < size:
            chunk = client.recv(size - len(data))
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data
