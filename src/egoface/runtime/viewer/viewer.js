// egoface live viewer: draws the frames of the tracker's WebSocket stream (see egoface/runtime/server.py).
"use strict";

const token = new URLSearchParams(location.search).get("token");
const socketUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws` +
  (token ? `?token=${encodeURIComponent(token)}` : "");
const $ = (id) => document.getElementById(id);
let socket = null;

function setStatus(text, level) {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${level}`;
}

// Horizontal bars with labels: rows = [[label, value in 0..1], ...] laid out in `columns` columns.
function drawBars(canvas, rows, columns, color) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const perColumn = Math.ceil(rows.length / columns);
  const columnWidth = canvas.width / columns;
  const rowHeight = Math.min(22, canvas.height / perColumn);
  const labelWidth = Math.min(134, columnWidth * 0.55);
  ctx.font = `${Math.max(9, Math.min(12, rowHeight - 2))}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  rows.forEach(([label, value], i) => {
    const x = Math.floor(i / perColumn) * columnWidth;
    const y = (i % perColumn) * rowHeight;
    const width = columnWidth - labelWidth - 10;
    const v = Math.max(0, Math.min(1, value));
    ctx.fillStyle = "#8b949e";
    ctx.fillText(label, x + 2, y + rowHeight / 2);
    ctx.fillStyle = "#2d333b";
    ctx.fillRect(x + labelWidth, y + 2, width, rowHeight - 4);
    ctx.fillStyle = typeof color === "function" ? color(v) : color;
    ctx.fillRect(x + labelWidth, y + 2, width * v, rowHeight - 4);
  });
}

// Each eye as a circle with its pupil moved by the gaze (yaw toward the subject's left, pitch up, degrees),
// drawn as the viewer sees the subject: the subject's left eye on the right of the picture.
function drawGaze(canvas, gaze) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const radius = canvas.height / 2 - 14;
  [["L", gaze[0], canvas.width * 0.72], ["R", gaze[1], canvas.width * 0.28]].forEach(([side, [yaw, pitch], cx]) => {
    const cy = canvas.height / 2 - 7;
    ctx.strokeStyle = "#8b949e";
    ctx.beginPath();
    ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
    ctx.stroke();
    const px = cx + radius * Math.sin((yaw * Math.PI) / 180);
    const py = cy - radius * Math.sin((pitch * Math.PI) / 180);
    ctx.fillStyle = "#58a6ff";
    ctx.beginPath();
    ctx.arc(px, py, 7, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#8b949e";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(`${side} ${yaw.toFixed(0)}°, ${pitch.toFixed(0)}°`, cx - radius, canvas.height - 2);
  });
}

function showCameras(cameras, failures) {
  const container = $("cameras");
  for (const [name, url] of Object.entries(cameras)) {
    let figure = container.querySelector(`figure[data-camera="${CSS.escape(name)}"]`);
    if (!figure) {
      figure = document.createElement("figure");
      figure.dataset.camera = name;
      figure.append(document.createElement("img"), document.createElement("figcaption"));
      container.append(figure);
    }
    figure.querySelector("img").src = url;
  }
  for (const figure of container.querySelectorAll("figure")) {
    const name = figure.dataset.camera;
    const failed = failures[name] || [];
    const caption = figure.querySelector("figcaption");
    caption.textContent = failed.length ? `${name}: ${failed.join(", ")}` : name;
    caption.className = failed.length ? "failed" : "";
  }
}

function onFrame(message) {
  const body = document.body;
  body.dataset.frames = String(Number(body.dataset.frames) + 1);
  $("fps").textContent = message.fps.toFixed(1);
  $("latency").textContent = message.latency_ms.toFixed(2);
  $("frame").textContent = String(message.frame);
  const failures = Object.entries(message.failures).map(([camera, names]) => `${camera}: ${names.join(", ")}`);
  if (message.held) setStatus(`holding: ${failures.join("; ") || "failure"}`, "bad");
  else if (failures.length) setStatus(failures.join("; "), "warn");
  else setStatus("tracking", "ok");
  if (message.face) {
    $("face").src = message.face;
    body.dataset.faceFrames = String(Number(body.dataset.faceFrames) + 1);
  }
  if (message.cameras) showCameras(message.cameras, message.failures);
  drawBars($("expressions"), Object.entries(message.expressions), 2, "#58a6ff");
  drawBars($("confidence"), Object.entries(message.confidence), 1, (v) => (v > 0.7 ? "#3fb950" : v > 0.3 ? "#d29922" : "#f85149"));
  drawGaze($("gaze"), message.gaze);
  const rejected = Object.entries(message.rejected).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  $("footer").textContent = `t = ${message.timestamp.toFixed(3)} s` + (rejected.length ? ` · rejected: ${rejected.join(", ")}` : "") +
    (message.face_error ? ` · face: ${message.face_error}` : "");
}

function connect() {
  socket = new WebSocket(socketUrl);
  socket.onopen = () => setStatus("connected", "ok");
  socket.onclose = () => {
    setStatus("disconnected, retrying", "bad");
    setTimeout(connect, 1000);
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "frame") onFrame(message);
    else if (message.type === "error") $("footer").textContent = `server: ${message.reason}: ${message.detail}`;
  };
}

$("recenter").addEventListener("click", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "command", command: "recenter" }));
});
connect();
