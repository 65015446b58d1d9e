"""OSC over UDP: the tracker's results in the conventions VR face-tracking tools listen to, and a small inbound
command listener.

Conventions (`reference/expressions.md`; values float32):

- `babble` (default 127.0.0.1:8888, where VRCFaceTracking's Babble module listens): one float per shape at
  `/<name>` with the names of Project Babble's app: ARKit names with `Left`/`Right` suffixes and `cheekPuff` split
  per side (`/jawOpen`, `/mouthSmileLeft`, `/cheekPuffLeft`). Babble's 45 outputs are 33 mouth, jaw, nose and cheek
  shapes plus 12 tongue shapes; `cheekSuck*` and the tongue are not modelled here and are not sent, so 31 addresses.
- `vrchat` (default 127.0.0.1:9000): VRChat's native eye tracking. `/tracking/eye/LeftRightPitchYaw` carries 4
  floats in degrees (left pitch, left yaw, right pitch, right yaw) in VRChat's signs, where positive pitch looks
  down and positive yaw looks to the user's right (docs.vrchat.com "OSC Eye Tracking"); egoface's gaze has pitch up
  and yaw toward the subject's left, so both signs flip. `/tracking/eye/EyesClosedAmount` is one float for both
  eyes: the mean of `eyeBlink_L` and `eyeBlink_R`.
- `unified` (default 127.0.0.1:9000): VRCFaceTracking's avatar parameters `/avatar/parameters/v2/<Name>`. Every
  Unified Expressions shape that `egoface.face.mappings` fills (shapes with no source, e.g. the tongue, are not
  sent), the combined `JawX = JawRight - JawLeft` (-1..1), the eyes as `EyeLeftX/Y`, `EyeRightX/Y` (the x and y of
  the unit gaze direction, +x toward the user's right, +y up, -1..1) and `EyeLidLeft/Right`, VRCFaceTracking's
  combined lid: 0 closed, 0.75 open at rest, 1 wide (0.75 (1 - eyeBlink) + 0.25 eyeWide).

Inbound: `OscCommandListener` accepts `/egoface/<command>` messages (no arguments) for the commands of
`COMMANDS` on its own UDP port. Datagrams that do not parse as OSC, that are larger than `MAX_INBOUND_BYTES`, or
name an unknown address are rejected and counted; none of them raise.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pythonosc.osc_message import OscMessage
from pythonosc.parsing import osc_types

from egoface.face.gaze import gaze_vector
from egoface.face.mappings import STANDARDS, convert
from egoface.face.names import expression_index
from egoface.runtime.result import TrackResult

__all__ = [
    "BABBLE_SHAPES",
    "COMMANDS",
    "DEFAULT_PORTS",
    "MAX_INBOUND_BYTES",
    "OSC_KINDS",
    "OscCommandListener",
    "OscSender",
    "OscTarget",
    "osc_messages",
    "parse_osc_target",
]

OSC_KINDS = ("babble", "vrchat", "unified")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {"babble": 8888, "vrchat": 9000, "unified": 9000}

#: Project Babble's shape names that egoface models (its `cheekSuckLeft/Right` and tongue shapes are not).
BABBLE_SHAPES: tuple[str, ...] = (
    "cheekPuffLeft", "cheekPuffRight", "jawOpen", "jawForward", "jawLeft", "jawRight", "noseSneerLeft",
    "noseSneerRight", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthRollUpper", "mouthRollLower",
    "mouthShrugUpper", "mouthShrugLower", "mouthClose", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthStretchLeft",
    "mouthStretchRight",
)  # fmt: skip

#: Commands the inbound listener (and the viewer's WebSocket) accept.
COMMANDS = ("recenter",)
#: Inbound datagrams larger than this are rejected unparsed (a command is a few dozen bytes).
MAX_INBOUND_BYTES = 1024

_UNIFIED_PREFIX = "/avatar/parameters/v2/"
Message = tuple[str, tuple[float, ...]]  # (OSC address, float arguments)
_EYE_LIDS_REST = 0.75  # VRCFaceTracking's EyeLid: 0 closed, 0.75 open at rest, 1 wide


def _canonical(babble_name: str) -> str:
    """`mouthSmileLeft` -> `mouthSmile_L`; names without a side stay."""
    for word, suffix in (("Left", "_L"), ("Right", "_R")):
        if babble_name.endswith(word) and babble_name not in ("mouthLeft", "mouthRight", "jawLeft", "jawRight"):
            return babble_name[: -len(word)] + suffix
    return babble_name


_BABBLE_INDEX = np.array([expression_index(_canonical(name)) for name in BABBLE_SHAPES])
_UNIFIED = STANDARDS["unified"]
_UNIFIED_SENT = np.flatnonzero(np.abs(_UNIFIED.matrix).sum(axis=1) > 0)  # shapes with at least one source
_BLINK = (expression_index("eyeBlink_L"), expression_index("eyeBlink_R"))
_WIDE = (expression_index("eyeWide_L"), expression_index("eyeWide_R"))
_JAW = (_UNIFIED.names.index("JawRight"), _UNIFIED.names.index("JawLeft"))


@dataclass(frozen=True)
class OscTarget:
    """Where one convention is sent: kind in `OSC_KINDS`, host, UDP port."""

    kind: str
    host: str = DEFAULT_HOST
    port: int = 0

    def __post_init__(self) -> None:
        if self.kind not in OSC_KINDS:
            raise ValueError(f"unknown OSC convention {self.kind!r}; expected one of {', '.join(OSC_KINDS)}")
        if not 0 < self.port < 65536:
            raise ValueError(f"OSC port for {self.kind} must be in 1..65535, got {self.port}")


def parse_osc_target(spec: str) -> OscTarget:
    """`babble`, `vrchat`, `unified`, optionally followed by `:HOST:PORT` (e.g. `unified:192.168.1.20:9000`)."""
    kind, _, rest = spec.partition(":")
    if kind not in OSC_KINDS:
        raise ValueError(f"--osc {spec!r}: unknown convention {kind!r}; expected babble|vrchat|unified[:HOST:PORT]")
    if not rest:
        return OscTarget(kind, DEFAULT_HOST, DEFAULT_PORTS[kind])
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"--osc {spec!r}: expected {kind}:HOST:PORT with a numeric port, e.g. {kind}:127.0.0.1:9000")
    return OscTarget(kind, host, int(port))


def osc_messages(result: TrackResult, kind: str) -> list[Message]:
    """The (address, float arguments) a result becomes in one convention, in sending order."""
    expression = np.asarray(result.expression, dtype=np.float32)
    if kind == "babble":
        return [(f"/{name}", (float(v),)) for name, v in zip(BABBLE_SHAPES, expression[_BABBLE_INDEX], strict=True)]
    if kind == "vrchat":
        (yaw_l, pitch_l), (yaw_r, pitch_r) = np.asarray(result.gaze, dtype=np.float64).tolist()
        closed = 0.5 * float(expression[_BLINK[0]] + expression[_BLINK[1]])
        return [
            ("/tracking/eye/LeftRightPitchYaw", (-pitch_l, -yaw_l, -pitch_r, -yaw_r)),
            ("/tracking/eye/EyesClosedAmount", (closed,)),
        ]
    if kind == "unified":
        unified = convert(expression, "unified")
        messages: list[Message] = [(_UNIFIED_PREFIX + _UNIFIED.names[i], (float(unified[i]),)) for i in _UNIFIED_SENT]
        messages.append((_UNIFIED_PREFIX + "JawX", (float(unified[_JAW[0]] - unified[_JAW[1]]),)))
        direction = gaze_vector(np.asarray(result.gaze, dtype=np.float32))  # (2, 3) head frame
        for eye, side in enumerate(("Left", "Right")):
            messages.append((f"{_UNIFIED_PREFIX}Eye{side}X", (float(-direction[eye, 0]),)))  # +x: user's right
            messages.append((f"{_UNIFIED_PREFIX}Eye{side}Y", (float(direction[eye, 1]),)))
        for eye, side in enumerate(("Left", "Right")):
            lid = _EYE_LIDS_REST * (1.0 - expression[_BLINK[eye]]) + (1.0 - _EYE_LIDS_REST) * expression[_WIDE[eye]]
            messages.append((f"{_UNIFIED_PREFIX}EyeLid{side}", (float(lid),)))
        return messages
    raise ValueError(f"unknown OSC convention {kind!r}; expected one of {', '.join(OSC_KINDS)}")


@dataclass
class _Encoder:
    """OSC message bytes with the address and type tag encoded once per address (python-osc's encoders)."""

    prefixes: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def encode(self, address: str, values: tuple[float, ...]) -> bytes:
        key = (address, len(values))
        prefix = self.prefixes.get(key)
        if prefix is None:
            prefix = osc_types.write_string(address) + osc_types.write_string("," + "f" * len(values))
            self.prefixes[key] = prefix
        return prefix + b"".join(osc_types.write_float(v) for v in values)


def _resolve(target: OscTarget) -> tuple[str, int]:
    try:
        address = socket.getaddrinfo(target.host, target.port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    except OSError as error:
        raise ValueError(f"OSC {target.kind} host {target.host!r} cannot be resolved ({error})") from error
    return str(address[0]), int(address[1])


class OscSender:
    """Sends each result to one or more `OscTarget`s, one UDP datagram per OSC message.

    A message whose bytes equal the last ones sent to the same target and address is skipped (counted in
    `unchanged`), except on a full refresh, at most `refresh_s` seconds apart (0: every message every frame).
    Receivers hold the last value they got (VRChat's eye tracking falls back after 10 s without data), and a
    frame's datagrams cost 10-15 us each in system calls, so most of a frame's 31-97 messages need not be sent.
    `send` never raises on a network error (a receiver that is not running makes the OS refuse some datagrams);
    errors are counted in `errors`, datagrams in `sent`.
    """

    def __init__(self, targets: Sequence[OscTarget], refresh_s: float = 1.0) -> None:
        self.targets = tuple(targets)
        self.refresh_s = refresh_s
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._encoder = _Encoder()
        self._addresses = {target: _resolve(target) for target in self.targets}
        self._last: dict[tuple[OscTarget, str], bytes] = {}
        self._last_refresh = -math.inf
        self.sent = 0
        self.unchanged = 0
        self.errors = 0

    def send(self, result: TrackResult) -> int:
        """Send one result to every target; returns the number of datagrams sent."""
        now = time.monotonic()
        refresh = now - self._last_refresh >= self.refresh_s
        if refresh:
            self._last_refresh = now
        sent = 0
        for target in self.targets:
            address = self._addresses[target]
            for osc_address, values in osc_messages(result, target.kind):
                datagram = self._encoder.encode(osc_address, values)
                key = (target, osc_address)
                if not refresh and self._last.get(key) == datagram:
                    self.unchanged += 1
                    continue
                try:
                    self._socket.sendto(datagram, address)
                except OSError:
                    self.errors += 1
                    continue
                self._last[key] = datagram
                sent += 1
        self.sent += sent
        return sent

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> OscSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OscCommandListener:
    """Listens on `host:port` (UDP) for `/egoface/<command>` and calls `on_command(command)` on its own thread.

    Counters: `accepted`, and `rejected` by reason (`oversized`, `malformed`, `unknown_address`, `failed` when the
    callback raised). Port 0 picks a free port (see `port`).
    """

    def __init__(self, on_command: Callable[[str], None], host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.on_command = on_command
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        self._socket.settimeout(0.1)
        self.host, self.port = self._socket.getsockname()[:2]
        self.accepted = 0
        self.rejected: dict[str, int] = {"oversized": 0, "malformed": 0, "unknown_address": 0, "failed": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="egoface-osc-commands", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.handle(datagram)

    def handle(self, datagram: bytes) -> str | None:
        """Check and run one datagram; returns the command run, or None when it was rejected (and counted)."""
        if len(datagram) > MAX_INBOUND_BYTES:
            self.rejected["oversized"] += 1
            return None
        try:
            message = OscMessage(datagram)
        except Exception:  # python-osc raises ParseError, but also IndexError/ValueError on some truncated inputs
            self.rejected["malformed"] += 1
            return None
        command = message.address.removeprefix("/egoface/")
        if command not in COMMANDS or message.address == command:
            self.rejected["unknown_address"] += 1
            return None
        try:
            self.on_command(command)
        except Exception:  # a failing command must not stop the listener; it is counted
            self.rejected["failed"] += 1
            return None
        self.accepted += 1
        return command

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        with contextlib.suppress(OSError):
            self._socket.close()

    def __enter__(self) -> OscCommandListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
