// genae explorer: trained models in the browser, run by onnxruntime-web on the networks `genae export`
// wrote (manifest.json says what each expects). Views appear as the model's capabilities allow.
"use strict";

/* global ort */   // onnxruntime-web, loaded before this script
ort.env.wasm.wasmPaths = new URL("ort/", window.location.href).href;
ort.env.wasm.numThreads = 1;

const PIXELS = 784;
const state = {
  runs: [], run: null, manifest: null, meta: null, sessions: {}, test: null, latent: null,
  z: null, label: 0, temperature: 1, view: null,
  drawing: new Float32Array(PIXELS), completing: new Float32Array(PIXELS),
  interpA: null, interpB: null, eps: null,
  timings: [], lastProbs: null, ready: false, busy: 0,
};
window.genae = state;   // for tests, and for the curious in the console

const $ = (id) => document.getElementById(id);
const caps = () => state.manifest.capabilities;
const has = (net) => Boolean(state.manifest && state.manifest.networks[net]);

// ------------------------------------------------------------------------------------------ helpers
async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setStatus(text) { $("status").textContent = text; }

function randn() {   // Box–Muller
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function oneHot(labels) {
  const out = new Float32Array(labels.length * 10);
  labels.forEach((label, i) => { out[i * 10 + label] = 1; });
  return out;
}

function argmax(values, start = 0, length = values.length) {
  let best = 0;
  for (let i = 1; i < length; i++) if (values[start + i] > values[start + best]) best = i;
  return best;
}

function median(values) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timed(t0) {
  state.timings.push(performance.now() - t0);
  if (state.timings.length > 500) state.timings.shift();
  $("timing").textContent = `input → image: median ${median(state.timings).toFixed(1)} ms over ${state.timings.length}`;
}

// one 28×28 image (pixels in [0, 1]) into a square of `size` at (x, y) of a canvas
const scratch = document.createElement("canvas");
scratch.width = scratch.height = 28;
function paint(canvas, pixels, x = 0, y = 0, size = canvas.height, offset = 0) {
  const image = scratch.getContext("2d").createImageData(28, 28);
  for (let i = 0; i < PIXELS; i++) {
    const v = Math.max(0, Math.min(255, Math.round(pixels[offset + i] * 255)));
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  scratch.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, x, y, size, size);
}

function paintRow(canvas, pixels, count) {   // `count` images side by side
  const size = canvas.height;
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  for (let k = 0; k < count; k++) paint(canvas, pixels, k * size, 0, size, k * PIXELS);
}

// ------------------------------------------------------------------------------------------ networks
async function infer(name, inputs) {
  const net = state.manifest.networks[name];
  const feeds = {};
  for (const [input, shape] of Object.entries(net.inputs)) {
    const data = inputs[input];
    if (!data) throw new Error(`${name} needs input ${input}`);
    const rest = shape.slice(1).reduce((a, b) => a * b, 1);
    feeds[input] = new ort.Tensor("float32", data, [data.length / rest, ...shape.slice(1)]);
  }
  const out = await state.sessions[name].run(feeds);
  const result = {};
  for (const key of net.outputs) result[key] = out[key].data;
  return result;
}

const decoderTakesLabel = () => has("decoder") && "y" in state.manifest.networks.decoder.inputs;
const encoderTakesLabel = () => has("encoder") && "y" in state.manifest.networks.encoder.inputs;

async function decode(z, labels) {   // z: B×dim, labels: B labels (used only where the decoder takes them)
  const inputs = { z };
  if (decoderTakesLabel()) inputs.y = oneHot(labels);
  return (await infer("decoder", inputs)).pixels;
}

async function encode(x, labels) {
  const inputs = { x };
  if (encoderTakesLabel()) inputs.y = oneHot(labels);
  return infer("encoder", inputs);
}

// ------------------------------------------------------------------------------------------ runs
async function loadRuns() {
  state.runs = await getJSON("runs.json");
  const select = $("run-select");
  select.innerHTML = "";
  for (const run of state.runs) {
    const option = document.createElement("option");
    option.value = run.id;
    option.textContent = `${run.name} (${run.model})`;
    select.appendChild(option);
  }
  select.onchange = () => selectRun(select.value).catch((error) => { setStatus(`error: ${error.message}`); throw error; });
  if (state.runs.length) await selectRun(state.runs[0].id);
  else setStatus("no runs");
}

async function selectRun(id) {
  state.ready = false;
  setStatus(`loading ${id}…`);
  const base = `runs/${id}/`;
  const [manifest, meta, test] = await Promise.all([getJSON(base + "manifest.json"), getJSON(base + "meta.json"),
                                                    getJSON(base + "test.json")]);
  const sessions = {};
  for (const [name, net] of Object.entries(manifest.networks)) {
    sessions[name] = await ort.InferenceSession.create(base + net.file, { executionProviders: ["wasm"] });
  }
  const bytes = Uint8Array.from(atob(test.images), (c) => c.charCodeAt(0));
  const images = Float32Array.from(bytes, (b) => b / 255);
  Object.assign(state, {
    run: id, manifest, meta, sessions, test: { images, labels: test.labels, n: test.labels.length },
    latent: meta.latent || null, z: new Float32Array(manifest.dim_z || 0), label: 0,
    interpA: null, interpB: null, eps: null,
  });
  $("run-select").value = id;
  $("run-summary").textContent = meta.summary || "";
  setupViews();
  state.ready = true;
  setStatus(`${meta.name}: ${manifest.model}`);
}

// ------------------------------------------------------------------------------------------ views
const VIEWS = {
  latent: () => caps().decodes,
  labels: () => caps().decodes && caps().decodes_label,   // (a label-guided AAE's label picks a component only)
  draw: () => caps().encodes || caps().classifies,
  complete: () => caps().completes,
  interpolate: () => caps().encodes && caps().decodes,
  runs: () => true,
};

function setupViews() {
  let first = null;
  for (const button of document.querySelectorAll("nav button")) {
    const ok = VIEWS[button.dataset.view]();
    button.disabled = !ok;
    if (ok && !first) first = button.dataset.view;
  }
  const labels = $("label-buttons");
  labels.innerHTML = "";
  for (let k = 0; k < 10; k++) {
    const b = document.createElement("button");
    b.textContent = k;
    b.onclick = () => { state.label = k; markLabel(); refresh(); };
    labels.appendChild(b);
  }
  markLabel();
  const keep = state.view && VIEWS[state.view]() ? state.view : first;
  setupLatent();
  showView(keep);
}

function markLabel() {
  [...$("label-buttons").children].forEach((b, k) => b.classList.toggle("active", k === state.label));
}

function showView(name) {
  state.view = name;
  for (const section of document.querySelectorAll("section.view")) section.hidden = section.id !== `view-${name}`;
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.view === name);
  const readsLabel = caps().encodes_label || caps().decodes_label;
  const usesLabel = (name === "latent" && caps().conditional) || (readsLabel && ["labels", "draw", "interpolate"].includes(name));
  $("labelbar").hidden = !usesLabel;
  refresh();
}

// One update at a time (an onnxruntime session runs one call at a time): an input arriving meanwhile
// is kept, and the latest one runs when the current update ends; an error shows in the footer.
let pending = null;
async function refresh() {
  if (!state.manifest) return;
  const t0 = performance.now();
  if (state.busy) { pending = t0; return; }
  state.busy++;
  try {
    if (state.view === "latent") await updateLatent(t0);
    else if (state.view === "labels") await updateLabels(t0);
    else if (state.view === "draw") await updateDraw(t0);
    else if (state.view === "complete") await updateComplete(t0);
    else if (state.view === "interpolate") await updateInterpolate(t0);
    else if (state.view === "runs") updateRuns();
  } catch (error) {
    setStatus(`error: ${error.message}`);
    throw error;
  } finally {
    state.busy--;
  }
  if (pending !== null) { pending = null; refresh(); }
}

// ---- latent map
function latentRange() {
  if (state.latent) {
    let m = 0;
    for (const [a, b] of state.latent.z) m = Math.max(m, Math.abs(a), Math.abs(b));
    return Math.min(Math.max(2, Math.ceil(m)), 12);
  }
  return 3;
}

function setupLatent() {
  const dim = state.manifest.dim_z || 0;
  const two = dim === 2;
  $("latent-map").hidden = !two;
  $("manifold-box").hidden = !two;
  state.manifoldKey = null;
  $("latent-sliders").hidden = two || dim === 0;
  $("latent-caption").textContent = two
    ? "the encoded test set by label; click or drag to decode a point" : "";
  const sliders = $("sliders");
  sliders.innerHTML = "";
  for (let i = 0; i < Math.min(dim, 8) && !two; i++) {
    const label = document.createElement("label");
    label.textContent = `z${i + 1} `;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -3, max: 3, step: 0.01, value: 0 });
    input.id = `z${i}`;
    input.oninput = () => { state.z[i] = Number(input.value); refresh(); };
    label.appendChild(input);
    sliders.appendChild(label);
  }
  $("temperature").oninput = () => {
    state.temperature = Number($("temperature").value);
    $("temperature-value").textContent = state.temperature.toFixed(2);
  };
  $("random-z").onclick = () => { randomZ(); refresh(); };
  const map = $("latent-map");
  const pick = (event) => {
    const r = latentRange(), box = map.getBoundingClientRect();
    state.z[0] = ((event.clientX - box.left) / box.width * 2 - 1) * r;
    state.z[1] = (1 - (event.clientY - box.top) / box.height * 2) * r;
    soon();
  };
  let dragging = false;
  map.onpointerdown = (e) => { dragging = true; map.setPointerCapture(e.pointerId); pick(e); };
  map.onpointermove = (e) => { if (dragging) pick(e); };
  map.onpointerup = map.onpointercancel = () => { dragging = false; };
}

function randomZ() {
  const prior = state.manifest.prior;
  const t = state.temperature;
  if (prior && prior.kind === "gmm") {   // a draw from the mixture component of the current label
    const angle = 2 * Math.PI * state.label / 10;
    const e = Array.from(state.z, (_, i) => randn() * (i === 0 ? prior.radial_std : prior.tangential_std) * t);
    e[0] += prior.radius;
    const [a, b] = [e[0], e[1]];
    e[0] = Math.cos(angle) * a - Math.sin(angle) * b;
    e[1] = Math.sin(angle) * a + Math.cos(angle) * b;
    state.z.set(e);
  } else {
    for (let i = 0; i < state.z.length; i++) state.z[i] = randn() * t;
  }
  for (let i = 0; i < Math.min(state.z.length, 8); i++) if ($(`z${i}`)) $(`z${i}`).value = state.z[i];
}

function drawMap() {
  const map = $("latent-map"), ctx = map.getContext("2d"), r = latentRange();
  const toX = (v) => (v / r + 1) / 2 * map.width, toY = (v) => (1 - v / r) / 2 * map.height;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, map.width, map.height);
  const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  if (state.latent) {
    state.latent.z.forEach(([a, b], i) => {
      ctx.fillStyle = colours[state.latent.labels[i]];
      ctx.fillRect(toX(a) - 1, toY(b) - 1, 2, 2);
    });
  }
  ctx.strokeStyle = "#000";
  ctx.beginPath();
  ctx.arc(toX(state.z[0]), toY(state.z[1]), 6, 0, 2 * Math.PI);
  ctx.stroke();
}

async function drawManifold() {   // a 10×10 grid of z over the map's square, decoded with the current label
  const key = `${state.run}/${state.label}`;
  if (state.manifoldKey === key) return;
  const r = latentRange(), n = 10, z = new Float32Array(2 * n * n);
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      z[2 * (row * n + col)] = (-1 + 2 * (col + 0.5) / n) * r;
      z[2 * (row * n + col) + 1] = (1 - 2 * (row + 0.5) / n) * r;
    }
  }
  const pixels = await decode(z, Array(n * n).fill(state.label));
  const canvas = $("manifold"), size = canvas.width / n;
  for (let k = 0; k < n * n; k++) paint(canvas, pixels, (k % n) * size, Math.floor(k / n) * size, size, k * PIXELS);
  state.manifoldKey = key;
}

async function updateLatent(t0) {
  if (state.manifest.dim_z === 2) drawMap();
  const pixels = await decode(state.z, [state.label]);
  paint($("latent-image"), pixels);
  state.lastImage = pixels;
  timed(t0);
  if (state.manifest.dim_z === 2) await drawManifold();
}

// ---- labels
async function updateLabels(t0) {
  const dim = state.z.length, z = new Float32Array(10 * dim);
  for (let k = 0; k < 10; k++) z.set(state.z, k * dim);
  const pixels = await decode(z, [...Array(10).keys()]);
  paintRow($("labels-row"), pixels, 10);
  state.lastImage = pixels;
  timed(t0);
}

// ---- drawing pads (a soft brush on a 28×28 grid shown ten times larger)
function attachPad(canvas, pixels, onChange) {
  let last = null;
  const stamp = (gx, gy) => {
    for (let y = Math.floor(gy - 2); y <= Math.ceil(gy + 2); y++) {
      for (let x = Math.floor(gx - 2); x <= Math.ceil(gx + 2); x++) {
        if (x < 0 || y < 0 || x > 27 || y > 27) continue;
        const d2 = (x + 0.5 - gx) ** 2 + (y + 0.5 - gy) ** 2;
        const v = Math.exp(-d2 / (2 * 0.9 * 0.9));
        pixels[y * 28 + x] = Math.max(pixels[y * 28 + x], Math.min(1, 1.2 * v));
      }
    }
  };
  const at = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) / box.width * 28, (e.clientY - box.top) / box.height * 28];
  };
  const stroke = (e) => {
    const [gx, gy] = at(e);
    if (last) {
      const steps = Math.ceil(Math.hypot(gx - last[0], gy - last[1]) * 3);
      for (let s = 1; s <= steps; s++) stamp(last[0] + (gx - last[0]) * s / steps, last[1] + (gy - last[1]) * s / steps);
    } else {
      stamp(gx, gy);
    }
    last = [gx, gy];
    onChange();
  };
  canvas.onpointerdown = (e) => { canvas.setPointerCapture(e.pointerId); last = null; stroke(e); };
  canvas.onpointermove = (e) => { if (e.buttons) stroke(e); };
  canvas.onpointerup = canvas.onpointercancel = () => { last = null; };
}

let scheduled = false;
function soon() {   // one update per animation frame however fast the pointer moves
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => { scheduled = false; refresh(); });
}

function testImage(into) {
  const k = Math.floor(Math.random() * state.test.n);
  into.set(state.test.images.subarray(k * PIXELS, (k + 1) * PIXELS));
  return state.test.labels[k];
}

async function updateDraw(t0) {
  const x = state.drawing;
  paint($("draw-canvas"), x);
  let label = state.label;
  $("draw-probs-box").hidden = !caps().classifies;
  if (caps().classifies) {
    const probs = (await infer("classifier", { x })).probs;
    state.lastProbs = Array.from(probs);
    label = argmax(probs);
    const bars = $("draw-probs");
    bars.innerHTML = "";
    probs.forEach((p, k) => {
      bars.insertAdjacentHTML("beforeend", `<span>${k}</span><div class="bar" style="width:${(200 * p).toFixed(1)}px"></div>`
                                            + `<span>${(100 * p).toFixed(1)}%</span>`);
    });
  }
  $("draw-reconstruction-box").hidden = !caps().encodes;
  $("draw-styles-box").hidden = !(caps().encodes && decoderTakesLabel());
  if (caps().encodes) {
    const q = await encode(x, [label]);
    const pixels = await decode(q.mean, [label]);
    paint($("draw-reconstruction"), pixels);
    state.lastImage = pixels;
    if (decoderTakesLabel()) {
      const dim = q.mean.length, z = new Float32Array(10 * dim);
      for (let k = 0; k < 10; k++) z.set(q.mean, k * dim);
      paintRow($("draw-styles"), await decode(z, [...Array(10).keys()]), 10);
    }
  }
  timed(t0);
}

// ---- complete (Sohn et al.'s CVAE and its baseline)
const SAMPLES = 7;

function shadeUngiven(canvas) {
  const mask = state.manifest.given_mask, ctx = canvas.getContext("2d"), cell = canvas.width / 28;
  ctx.fillStyle = "rgba(120, 160, 255, 0.35)";
  for (let i = 0; i < PIXELS; i++) if (!mask[i]) ctx.fillRect((i % 28) * cell, Math.floor(i / 28) * cell, cell, cell);
}

async function updateComplete(t0) {
  const x = state.completing, dim = state.manifest.dim_z || 0;
  paint($("complete-canvas"), x);
  shadeUngiven($("complete-canvas"));
  if (has("completer") && "eps" in state.manifest.networks.completer.inputs) {
    if (!state.eps) state.eps = Float32Array.from({ length: SAMPLES * dim }, randn);
    const xs = new Float32Array(SAMPLES * PIXELS);
    for (let k = 0; k < SAMPLES; k++) xs.set(x, k * PIXELS);
    const pixels = (await infer("completer", { x: xs, eps: state.eps })).pixels;
    paintRow($("complete-samples"), pixels, SAMPLES);
    state.lastImage = pixels;
  } else if (has("completer")) {
    const pixels = (await infer("completer", { x })).pixels;
    paintRow($("complete-samples"), pixels, 1);
    state.lastImage = pixels;
  }
  $("complete-baseline").hidden = !has("baseline");
  if (has("baseline")) paint($("complete-baseline"), (await infer("baseline", { x })).pixels);
  timed(t0);
}

// ---- interpolate
async function codeOf(image, label) {
  const q = await encode(image, [label]);
  return q.mean;
}

async function updateInterpolate(t0) {
  if (!state.interpA) state.interpA = pickEnd();
  if (!state.interpB) state.interpB = pickEnd();
  const a = state.interpA, b = state.interpB, steps = 10;
  const [za, zb] = [await codeOf(a.x, a.label), await codeOf(b.x, b.label)];
  const dim = za.length, z = new Float32Array(steps * dim), labels = [];
  for (let s = 0; s < steps; s++) {
    const t = s / (steps - 1);
    for (let i = 0; i < dim; i++) z[s * dim + i] = (1 - t) * za[i] + t * zb[i];
    labels.push(t < 0.5 ? a.label : b.label);
  }
  const pixels = await decode(z, labels);
  paintRow($("interp-row"), pixels, steps);
  state.lastImage = pixels;
  timed(t0);
}

function pickEnd() {
  const x = new Float32Array(PIXELS);
  return { x, label: testImage(x) };
}

// ---- runs
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function updateRuns() {
  const rows = state.runs.map((r) => {
    const numbers = Object.entries(r.eval || {}).filter(([, v]) => typeof v === "number")
      .map(([k, v]) => `${k} ${Math.abs(v) < 10 ? v.toFixed(4) : v.toFixed(2)}`).join(", ");
    return `<tr class="${r.id === state.run ? "current" : ""}"><td><a href="#" data-run="${escape(r.id)}">${escape(r.name)}</a></td>`
      + `<td>${escape(r.model)}</td><td>${r.epochs}</td><td>${escape(numbers) || "—"}</td></tr>`;
  });
  $("runs-table").innerHTML = `<table><tr><th>run</th><th>model</th><th>epochs</th><th>eval.json</th></tr>${rows.join("")}</table>`;
  for (const a of $("runs-table").querySelectorAll("a")) {
    a.onclick = (e) => { e.preventDefault(); $("run-select").value = a.dataset.run; $("run-select").onchange(); };
  }
  $("run-config").textContent = JSON.stringify(state.meta.config, null, 1);
  drawCurves();
}

function drawCurves() {
  const canvas = $("curves"), ctx = canvas.getContext("2d"), metrics = state.meta.metrics || [];
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!metrics.length) return;
  const series = { "validation loss": metrics.map((m) => m.valid.loss) };
  const phase = Object.keys(metrics[0].train || {})[0];
  if (phase && "loss" in metrics[0].train[phase]) series[`training loss (${phase})`] = metrics.map((m) => m.train[phase].loss);
  const all = Object.values(series).flat().filter(Number.isFinite);
  const lo = Math.min(...all), hi = Math.max(...all), pad = 30;
  const x = (i) => pad + (metrics.length === 1 ? 0.5 : i / (metrics.length - 1)) * (canvas.width - 2 * pad);
  const y = (v) => canvas.height - pad - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (canvas.height - 2 * pad);
  const colours = ["#d62728", "#1f77b4"];
  Object.entries(series).forEach(([name, values], j) => {
    ctx.strokeStyle = ctx.fillStyle = colours[j];
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
    ctx.fillText(name, pad + 5, 15 + 14 * j);
  });
  ctx.fillStyle = "#000";
  ctx.fillText(`epochs 1 … ${metrics.length}; ${lo.toPrecision(4)} … ${hi.toPrecision(4)}`, pad + 5, canvas.height - 8);
}

// ------------------------------------------------------------------------------------------ start
function wire() {
  for (const button of document.querySelectorAll("nav button")) button.onclick = () => showView(button.dataset.view);
  attachPad($("draw-canvas"), state.drawing, soon);
  attachPad($("complete-canvas"), state.completing, soon);
  $("draw-clear").onclick = () => { state.drawing.fill(0); refresh(); };
  $("draw-test").onclick = () => { state.label = testImage(state.drawing); markLabel(); refresh(); };
  $("complete-clear").onclick = () => { state.completing.fill(0); refresh(); };
  $("complete-test").onclick = () => { testImage(state.completing); refresh(); };
  $("complete-resample").onclick = () => { state.eps = null; refresh(); };
  $("labels-random").onclick = () => { randomZ(); refresh(); };
  $("interp-a").onclick = () => { state.interpA = pickEnd(); refresh(); };
  $("interp-b").onclick = () => { state.interpB = pickEnd(); refresh(); };
  $("interp-drawing").onclick = () => {
    state.interpA = { x: Float32Array.from(state.drawing), label: state.label };
    refresh();
  };
  $("interp-drawing-end").onclick = () => {
    state.interpB = { x: Float32Array.from(state.drawing), label: state.label };
    refresh();
  };
}

wire();
loadRuns().catch((error) => { setStatus(`error: ${error.message}`); throw error; });
