"""Outputs of the runtime: OSC packets received by a real python-osc server on loopback, inbound OSC commands,
the WebSocket stream (messages, limits, token), and recordings to JSONL / CSV."""

from __future__ import annotations

import base64
import gc
import io
import json
import socket
import threading
import time
import types
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import ThreadingOSCUDPServer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from egoface.cli.main import main
from egoface.cli.track import Histogram, TrackLoop, resolve_model
from egoface.face.names import expression_vector
from egoface.runtime.osc import (
    BABBLE_SHAPES,
    MAX_INBOUND_BYTES,
    OscCommandListener,
    OscSender,
    OscTarget,
    osc_messages,
    parse_osc_target,
)
from egoface.runtime.record import OutputRecorder, csv_columns, read_records
from egoface.runtime.result import TrackResult
from egoface.runtime.server import ViewerOptions, ViewerServer, is_loopback
from egoface.runtime.tracker import Tracker, TrackerOptions
from runtime_models import exported


def make_result(frame: int = 0, **values: float) -> TrackResult:
    """A result with the named expressions set, left eye looking 10 deg toward the subject's left and 5 deg up,
    right eye 20 deg toward the subject's right and 15 deg down."""
    return TrackResult(
        timestamp=frame / 72.0,
        frame_index=frame,
        expression=expression_vector(values),
        gaze=np.array([[10.0, 5.0], [-20.0, -15.0]], dtype=np.float32),
        confidence={"eyes": 1.0, "upper_face": 0.9, "lower_face": 0.5},
        failures={"mouth_left": ["covered"]} if frame % 2 else {},
        latency_ms=1.5,
    )


class OscReceiver:
    """A python-osc UDP server on a free loopback port that keeps every (address, args) it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, tuple[object, ...]]] = []
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.received.append((address, args)))
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> dict[str, tuple[object, ...]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.received) >= count, f"received {len(self.received)} of {count} OSC messages in {timeout} s"
        return dict(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = OscReceiver()
    yield server
    server.close()


def test_parse_osc_target_defaults_and_overrides():
    assert parse_osc_target("babble") == OscTarget("babble", "127.0.0.1", 8888)
    assert parse_osc_target("vrchat") == OscTarget("vrchat", "127.0.0.1", 9000)
    assert parse_osc_target("unified") == OscTarget("unified", "127.0.0.1", 9000)
    assert parse_osc_target("unified:192.168.1.20:9100") == OscTarget("unified", "192.168.1.20", 9100)
    with pytest.raises(ValueError, match="unknown convention 'arkit'"):
        parse_osc_target("arkit")
    with pytest.raises(ValueError, match="numeric port"):
        parse_osc_target("babble:localhost")
    with pytest.raises(ValueError, match="numeric port"):
        parse_osc_target("babble:localhost:x")
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        parse_osc_target("babble:localhost:70000")


def test_babble_packets_received_on_loopback(receiver):
    result = make_result(jawOpen=0.75, mouthSmile_L=0.5, cheekPuff_R=0.25)
    with OscSender([OscTarget("babble", "127.0.0.1", receiver.port)]) as sender:
        assert sender.send(result) == len(BABBLE_SHAPES) == 31
    got = receiver.wait_for(len(BABBLE_SHAPES))
    assert set(got) == {f"/{name}" for name in BABBLE_SHAPES}
    assert got["/jawOpen"] == pytest.approx((0.75,))
    assert got["/mouthSmileLeft"] == pytest.approx((0.5,))
    assert got["/mouthSmileRight"] == pytest.approx((0.0,))
    assert got["/cheekPuffRight"] == pytest.approx((0.25,))
    assert got["/mouthLeft"] == pytest.approx((0.0,))


def test_vrchat_eye_packets_flip_to_vrchat_signs(receiver):
    result = make_result(eyeBlink_L=0.2, eyeBlink_R=0.6)
    with OscSender([OscTarget("vrchat", "127.0.0.1", receiver.port)]) as sender:
        sender.send(result)
    got = receiver.wait_for(2)
    # VRChat: + pitch looks down, + yaw looks to the user's right; left eye is up-left, right eye down-right.
    assert got["/tracking/eye/LeftRightPitchYaw"] == pytest.approx((-5.0, -10.0, 15.0, 20.0))
    assert got["/tracking/eye/EyesClosedAmount"] == pytest.approx((0.4,))


def test_unified_avatar_parameters_received_on_loopback(receiver):
    result = make_result(jawOpen=1.0, jawLeft=0.3, mouthSmile_R=0.8, eyeBlink_L=1.0, eyeWide_R=1.0)
    expected = osc_messages(result, "unified")
    with OscSender([OscTarget("unified", "127.0.0.1", receiver.port)]) as sender:
        sender.send(result)
    got = receiver.wait_for(len(expected))
    assert all(address.startswith("/avatar/parameters/v2/") for address in got)
    assert got["/avatar/parameters/v2/JawOpen"] == pytest.approx((1.0,))
    assert got["/avatar/parameters/v2/MouthCornerPullRight"] == pytest.approx((0.8,))
    assert got["/avatar/parameters/v2/JawX"] == pytest.approx((-0.3,))  # JawRight - JawLeft
    assert got["/avatar/parameters/v2/EyeLidLeft"] == pytest.approx((0.0,))  # closed
    assert got["/avatar/parameters/v2/EyeLidRight"] == pytest.approx((1.0,))  # open and wide
    # Left eye 10 deg toward the subject's left = toward the user's left: negative X; 5 deg up: positive Y.
    assert got["/avatar/parameters/v2/EyeLeftX"][0] == pytest.approx(-np.sin(np.radians(10)) * np.cos(np.radians(5)))
    assert got["/avatar/parameters/v2/EyeLeftY"][0] == pytest.approx(np.sin(np.radians(5)))
    assert got["/avatar/parameters/v2/EyeRightX"][0] > 0 > got["/avatar/parameters/v2/EyeRightY"][0]
    assert "/avatar/parameters/v2/TongueOut" not in got  # not modelled, not sent
    assert len(got) == 57 + 1 + 4 + 2  # filled shapes, JawX, eye X/Y, lids


def test_unchanged_values_are_sent_again_only_on_refresh(receiver):
    target = OscTarget("babble", "127.0.0.1", receiver.port)
    with OscSender([target], refresh_s=3600.0) as sender:
        assert sender.send(make_result(0, jawOpen=0.5)) == len(BABBLE_SHAPES)  # the first frame is a full refresh
        assert sender.send(make_result(1, jawOpen=0.5)) == 0
        assert sender.send(make_result(2, jawOpen=0.6, mouthPucker=0.1)) == 2  # only what changed
        assert sender.unchanged == 2 * len(BABBLE_SHAPES) - 2
    got = receiver.wait_for(len(BABBLE_SHAPES) + 2)
    assert got["/jawOpen"] == pytest.approx((0.6,)) and got["/mouthPucker"] == pytest.approx((0.1,))
    with OscSender([target], refresh_s=0.0) as sender:
        assert [sender.send(make_result(0)) for _ in range(3)] == [len(BABBLE_SHAPES)] * 3


def test_sender_counts_errors_instead_of_raising():
    with pytest.raises(ValueError, match=r"host 'no-such-host\.invalid' cannot be resolved"):
        OscSender([OscTarget("babble", "no-such-host.invalid", 8888)])
    sender = OscSender([OscTarget("babble", "127.0.0.1", 9)])
    sender.close()  # sending on a closed socket fails on every datagram
    assert sender.send(make_result()) == 0
    assert sender.errors == len(BABBLE_SHAPES)


def test_osc_commands_accepted_and_bad_input_rejected_and_counted():
    commands: list[str] = []
    with OscCommandListener(commands.append) as listener:
        good = OscMessageBuilder("/egoface/recenter").build().dgram
        assert listener.handle(good) == "recenter"
        assert listener.handle(b"\x00\x01garbage") is None
        assert listener.handle(b"/egoface/rec") is None  # truncated, no padding or type tag
        assert listener.handle(OscMessageBuilder("/egoface/format_disk").build().dgram) is None
        assert listener.handle(OscMessageBuilder("/recenter").build().dgram) is None
        assert listener.handle(good + b"\x00" * MAX_INBOUND_BYTES) is None
        # And through the real socket, with the thread still alive afterwards.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"\xff" * 7, ("127.0.0.1", listener.port))
            client.sendto(good, ("127.0.0.1", listener.port))
            deadline = time.monotonic() + 5.0
            while listener.accepted < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
    assert commands == ["recenter", "recenter"]
    assert listener.accepted == 2
    assert listener.rejected == {"oversized": 1, "malformed": 3, "unknown_address": 2, "failed": 0}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_recorder_writes_every_frame_and_appears_only_when_closed(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with OutputRecorder(path) as recorder:
        for frame in range(3):
            recorder.write(make_result(frame, jawOpen=0.25 * frame))
        assert not path.exists()  # still recording: lines go to the .partial file
        assert len(read_records(recorder.partial)) == 3
    assert not recorder.partial.exists()
    records = read_records(path)
    assert len(records) == 3
    if suffix == ".jsonl":
        assert [r["expressions"]["jawOpen"] for r in records] == [0.0, 0.25, 0.5]
        assert records[1]["failures"] == {"mouth_left": ["covered"]}
        assert records[2]["gaze"] == [[10.0, 5.0], [-20.0, -15.0]]
        assert records[0]["confidence"] == {"eyes": 1.0, "upper_face": 0.9, "lower_face": 0.5}
    else:
        assert list(records[0]) == csv_columns()
        assert [float(r["jawOpen"]) for r in records] == [0.0, 0.25, 0.5]
        assert records[1]["failures"] == "mouth_left:covered"
        assert float(records[2]["gaze_R_pitch"]) == -15.0


def test_recorder_crash_leaves_complete_lines_and_names_in_other_standards(tmp_path):
    recorder = OutputRecorder(tmp_path / "out.jsonl", standard="arkit")
    recorder.write(make_result(0, mouthSmile_L=1.0))
    recorder._file.write('{"timestamp": 0.0')  # a line cut by a crash
    recorder._file.flush()
    records = read_records(recorder.partial)
    assert len(records) == 1 and records[0]["expressions"]["mouthSmileLeft"] == 1.0
    recorder.close()
    with pytest.raises(ValueError, match=r"\.jsonl or \.csv"):
        OutputRecorder(tmp_path / "out.txt")
    with pytest.raises(ValueError, match="unknown expression standard 'blender'"):
        OutputRecorder(tmp_path / "out.csv", standard="blender")


# --- WebSocket stream -----------------------------------------------------------------------------------------


def stream_frames(server: ViewerServer, count: int, cameras: dict[str, np.ndarray] | None = None) -> None:
    for frame in range(count):
        server.publish(make_result(frame, jawOpen=(frame % 10) / 10), cameras)
        time.sleep(1 / 200)


def next_message(ws, kind: str = "frame", timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message in {timeout} s")


def test_viewer_options_bind_loopback_unless_flag_and_token():
    assert ViewerOptions().host == "127.0.0.1"
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(ValueError, match="allow-remote flag"):
        ViewerOptions(host="0.0.0.0", token="x" * 32)
    with pytest.raises(ValueError, match="token of 16 characters"):
        ViewerOptions(host="0.0.0.0", allow_remote=True)
    with pytest.raises(ValueError, match="token of 16 characters"):
        ViewerOptions(host="0.0.0.0", allow_remote=True, token="short")
    assert ViewerOptions(host="0.0.0.0", allow_remote=True, token="x" * 16).allow_remote
    with pytest.raises(ValueError, match=r"face_px and thumbnail_px must be 16\.\.1024"):
        ViewerOptions(face_px=0)
    with pytest.raises(ValueError, match="rate_hz > 0"):
        ViewerOptions(rate_hz=0)


def test_stream_sends_frames_with_values_and_camera_thumbnails():
    image = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (96, 1))  # (96, 96) horizontal gradient
    with ViewerServer(ViewerOptions(port=0, face_hz=0, camera_hz=50, thumbnail_px=48)) as server:
        page = urllib.request.urlopen(server.url, timeout=5)
        assert page.headers["Content-Type"].startswith("text/html") and b"viewer.js" in page.read()
        assert b"new WebSocket" in urllib.request.urlopen(server.url + "viewer.js", timeout=5).read()
        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            assert next_message(ws, "hello")["commands"] == []  # no command handler: none accepted
            ws.send(json.dumps({"type": "command", "command": "recenter"}))
            assert next_message(ws, "error")["reason"] == "unknown"
            stream_frames(server, 30, {"eye_left": image})
            message = next_message(ws)
            while "cameras" not in message:
                message = next_message(ws)
    assert message["frame"] > 0 and message["fps"] > 0
    assert message["expressions"]["jawOpen"] == pytest.approx((message["frame"] % 10) / 10, abs=1e-4)
    assert len(message["expressions"]) == 53
    assert message["confidence"] == {"eyes": 1.0, "upper_face": 0.9, "lower_face": 0.5}
    assert message["gaze"] == [[10.0, 5.0], [-20.0, -15.0]]
    header, data = message["cameras"]["eye_left"].split(",", 1)
    assert header == "data:image/jpeg;base64"
    thumbnail = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
    assert thumbnail.shape == (48, 48)
    assert thumbnail[:, -4:].mean() > thumbnail[:, :4].mean() + 100  # still a left-to-right gradient


def test_bad_websocket_messages_are_rejected_and_counted_and_the_server_keeps_going():
    commands: list[str] = []
    options = ViewerOptions(port=0, face_hz=0, camera_hz=0, max_message_bytes=256)
    with ViewerServer(options, on_command=commands.append) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        with connect(url) as ws:
            next_message(ws, "hello")
            for bad in ("not json", "[1, 2]", '{"type": "command", "command": "shutdown"}', "x" * 1000, b"\x00\x01"):
                ws.send(bad)
                assert next_message(ws, "error")["reason"] in ("malformed", "unknown", "oversized", "binary")
            ws.send(json.dumps({"type": "ping"}))
            assert next_message(ws, "pong") == {"type": "pong"}
            ws.send(json.dumps({"type": "command", "command": "recenter"}))
            assert next_message(ws, "done")["command"] == "recenter"
        with connect(url, max_size=None) as ws:  # over the 64 KiB protocol limit: the server closes this one
            next_message(ws, "hello")
            ws.send("y" * 100_000)
            with pytest.raises(ConnectionClosed):
                for _ in range(10):
                    ws.recv(timeout=5)
        with connect(url) as ws:  # and still serves new pages and frames
            next_message(ws, "hello")
            stream_frames(server, 5)
            assert next_message(ws)["rejected"]["oversized"] == 2
    assert commands == ["recenter"]
    assert server.rejected == {
        "binary": 1, "oversized": 2, "malformed": 2, "unknown": 1, "failed": 0, "unauthorized": 0
    }  # fmt: skip


def test_token_is_required_on_page_and_websocket():
    token = "0123456789abcdef0123"
    with ViewerServer(ViewerOptions(port=0, token=token, face_hz=0)) as server:
        base = f"http://127.0.0.1:{server.port}/"
        for url in (base, base + "?token=wrong"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url, timeout=5)
            assert refused.value.code == 403
            refused.value.close()
        assert server.url == f"{base}?token={token}"
        assert urllib.request.urlopen(server.url, timeout=5).status == 200
        with pytest.raises(InvalidStatus) as refused_ws:
            connect(f"ws://127.0.0.1:{server.port}/ws?token=wrong")
        assert refused_ws.value.response.status_code == 403
        with connect(f"ws://127.0.0.1:{server.port}/ws?token={token}") as ws:
            assert next_message(ws, "hello")["type"] == "hello"
    assert server.rejected["unauthorized"] == 3


def test_other_sites_cannot_reach_the_stream():
    with ViewerServer(ViewerOptions(port=0, face_hz=0)) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        with pytest.raises(InvalidStatus) as cross_origin:
            connect(url, origin="http://evil.example")
        assert cross_origin.value.response.status_code == 403
        with connect(url, origin=f"http://127.0.0.1:{server.port}") as ws:  # the viewer's own page
            assert next_message(ws, "hello")["type"] == "hello"
        rebound = urllib.request.Request(server.url, headers={"Host": f"evil.example:{server.port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=5)
        assert refused.value.code == 403
        refused.value.close()
        assert urllib.request.urlopen(f"http://localhost:{server.port}/", timeout=5).status == 200
    assert server.rejected["unauthorized"] == 2


# --- the track loop with a real exported model ----------------------------------------------------------------


def textured_frames(count: int, cameras: tuple[str, ...], rate_hz: float = 72.0):
    """(frames, timestamp) pairs of IR-like textured images, different each frame."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64]
    for frame in range(count):
        base = 90 + 40 * np.sin((x + frame) / 7.0) * np.cos(y / 9.0) + 0.4 * x
        images = {c: np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8) for c in cameras}
        yield images, frame / rate_hz


def test_track_loop_feeds_osc_viewer_and_recording(tmp_path, receiver):
    """Commands arrive from the page and over OSC beside malformed input; the loop runs every frame regardless."""
    with Tracker.create(TrackerOptions(exported())) as tracker:
        recorder = OutputRecorder(tmp_path / "out.jsonl")
        osc = OscSender([OscTarget("vrchat", "127.0.0.1", receiver.port)])
        loop = TrackLoop(tracker, osc=osc, recorder=recorder)
        with ViewerServer(ViewerOptions(port=0, face_hz=0, camera_hz=0), loop.commands.put) as viewer, osc, recorder:
            loop.viewer = viewer
            with (
                OscCommandListener(loop.commands.put) as listener,
                connect(f"ws://127.0.0.1:{viewer.port}/ws") as ws,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
            ):
                next_message(ws, "hello")
                ws.send("{not json")
                ws.send(json.dumps({"type": "command", "command": "recenter"}))
                assert next_message(ws, "done")["command"] == "recenter"
                client.sendto(b"\xff" * 3000, ("127.0.0.1", listener.port))
                client.sendto(OscMessageBuilder("/egoface/recenter").build().dgram, ("127.0.0.1", listener.port))
                deadline = time.monotonic() + 5.0
                while listener.accepted < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                summary = loop.run(textured_frames(40, tracker.cameras), max_frames=30)
    assert summary.frames == 30 and summary.commands == 2  # one re-centre from the page, one over OSC
    assert viewer.rejected["malformed"] == 1 and listener.rejected["oversized"] == 1
    assert summary.latency.count == summary.end_to_end.count == 30
    assert osc.sent + osc.unchanged == 60 and osc.errors == 0  # 2 VRChat messages per frame
    receiver.wait_for(osc.sent)
    records = read_records(tmp_path / "out.jsonl")
    assert [r["frame"] for r in records] == list(range(30))
    report = summary.as_json(dropped=0)
    assert report["fps"] > 0 and report["latency_ms_p50"] <= report["latency_ms_p99"]
    assert report["end_to_end_ms_p50"] >= report["latency_ms_p50"]  # end to end includes the tracker
    assert set(report) >= {"frames", "fps", "latency_ms_p50", "latency_ms_p99", "end_to_end_ms_p99", "dropped"}


def test_histogram_percentiles_match_numpy_within_a_bin():
    values = np.random.default_rng(0).gamma(2.0, 1.5, 5000)  # ms, a long right tail
    histogram = Histogram()
    for value in values:
        histogram.add(float(value))
    histogram.add(5000.0)  # beyond the last bin: counted there
    everything = np.append(values, 5000.0)
    for q in (50, 90, 99):
        assert histogram.percentile(q) == pytest.approx(np.percentile(everything, q, method="higher"), abs=0.01)
    assert histogram.percentile(100) == pytest.approx(1000.0, abs=0.01)
    assert Histogram().percentile(50) is None


def test_resolve_model_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected FILE\.onnx"):
        resolve_model(str(tmp_path / "nothing.onnx"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.onnx").write_bytes(b"")
    assert resolve_model(str(tmp_path / "run")) == tmp_path / "run" / "model.onnx"


def test_egoface_track_command_on_image_folders(tmp_path, receiver, capsys):
    cameras = ("eye_left", "eye_right", "mouth_left", "mouth_right")
    for frame_index, (images, _) in enumerate(textured_frames(6, cameras)):
        for camera, image in images.items():
            (tmp_path / camera).mkdir(exist_ok=True)
            Image.fromarray(image).save(tmp_path / camera / f"{frame_index:04d}.png")
    folders = ",".join(f"{camera}={tmp_path / camera}" for camera in cameras)
    record = tmp_path / "out.csv"
    argv = ["track", "--source", f"files:{folders}", "--model", str(exported()), "--frames", "5"]
    argv += ["--osc", f"babble:127.0.0.1:{receiver.port}", "--record", str(record), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 5 and report["cameras"] == list(cameras) and report["dropped"] == 0
    assert report["osc_datagrams"] + report["osc_unchanged"] == 5 * len(BABBLE_SHAPES)
    assert report["osc_datagrams"] >= len(BABBLE_SHAPES) and report["osc_errors"] == 0
    assert report["latency_ms_p50"] > 0 and report["end_to_end_ms_p99"] >= report["latency_ms_p50"]
    assert len(read_records(record)) == 5
    receiver.wait_for(report["osc_datagrams"])
    assert main(["track", "--source", f"files:{folders}", "--model", str(exported()), "--osc", "arkit"]) == 2
    assert "unknown convention 'arkit'" in capsys.readouterr().err


def test_track_loop_runs_with_the_heap_frozen_and_thaws_it_after():
    """Everything alive when the loop starts sits in the collector's permanent generation while frames run (no full
    collection walks it mid-run), and goes back afterwards, also when the loop ends by Ctrl-C."""
    frozen_during: list[int] = []

    class RecordingTracker:
        cameras = ("eye_left",)

        def track(self, frames, timestamp):
            frozen_during.append(gc.get_freeze_count())
            if len(frozen_during) == 3:
                raise KeyboardInterrupt
            return types.SimpleNamespace(latency_ms=1.0, failures={}, held=False)

    before = gc.get_freeze_count()
    summary = TrackLoop(RecordingTracker()).run((None, float(i)) for i in range(10))
    assert summary.frames == 2 and len(frozen_during) == 3
    assert min(frozen_during) > before + 1000  # at least the test session's modules and objects
    assert gc.get_freeze_count() == before
