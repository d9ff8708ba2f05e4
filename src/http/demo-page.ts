/**
 * /demo: see where the compute went. One self-contained page (no build step, nothing from another
 * origin): pick or drop a video, and it shows the label probabilities, the sampled frames with the
 * per-patch stop map over them, tokens per joint layer against a dense run, GFLOPs against dense and
 * the time per stage; the knob sliders re-run the request. It calls /v1/classify with explain=true.
 *
 * The page never changes, so its script and stylesheet are hashed once and the Content-Security-
 * Policy allows exactly those two (no 'unsafe-inline'), images only from data: URLs (the thumbnails)
 * and requests only to this origin.
 */
import { selfContainedPage } from './page.js';
import { STOP_COLOURS } from '../figure/colours.js';

const STYLE = `
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:62rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 .6rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
p{margin:.3rem 0}a{color:#2456a6}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:.8rem;margin:.6rem 0}
#drop{display:block;border:2px dashed #9aa6b8;border-radius:8px;padding:1.2rem;text-align:center;cursor:pointer;background:#fff}
#drop.over{border-color:#2456a6;background:#eef3fb}
#drop input{display:block;margin:.5rem auto 0;max-width:100%}
.knobs{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.6rem 1.2rem}
.knobs label{display:block;font-size:.9rem}.knobs input[type=range]{width:100%}
.knobs output{font-variant-numeric:tabular-nums;font-weight:600}
input[type=password],select{font:inherit;padding:.25rem;width:100%}
#status{min-height:1.4rem;font-weight:600}
#error{display:none;border-color:#d9534f;background:#fdf0ef;color:#8a1f1b}
#error.shown{display:block}
.hidden{display:none}
.row{display:grid;grid-template-columns:minmax(6rem,11rem) 1fr 4.5rem;gap:.5rem;align-items:center;margin:.15rem 0;font-size:.9rem}
.row .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.row .num{text-align:right;font-variant-numeric:tabular-nums}
.track{position:relative;height:1rem;background:#e6e9ef;border-radius:3px;overflow:hidden}
.fill{position:absolute;left:0;top:0;bottom:0;background:#2456a6}
.fill.merged{background:#c07a1b}
#frames{display:grid;grid-template-columns:repeat(auto-fill,minmax(8.5rem,1fr));gap:.5rem}
figure{margin:0}figure canvas{width:100%;height:auto;display:block;border-radius:4px;image-rendering:pixelated}
figcaption{font-size:.8rem;color:#4a5468;text-align:center}
#legend{display:flex;flex-wrap:wrap;gap:.3rem .8rem;font-size:.85rem;margin:.5rem 0}
#legend span{display:inline-flex;align-items:center;gap:.3rem}
#legend i{display:inline-block;width:1rem;height:1rem;border-radius:2px;border:1px solid #0003}
.top{font-size:1.2rem;font-weight:700}
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const state = { file: null, model: null, running: false, again: false, runs: 0, errors: 0 };
// The same colours as the CLI's figure (src/figure/colours.ts).
const COLOURS = ${JSON.stringify(STOP_COLOURS)};
const VIRIDIS = COLOURS.viridis;
const DROPPED = COLOURS.dropped;

function layerColour(layer, layers) {
  if (layer === 0) return DROPPED;
  const x = layers <= 1 ? 1 : (layer - 1) / (layers - 1);
  const at = x * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(at), VIRIDIS.length - 2);
  const f = at - i;
  return VIRIDIS[i].map((v, c) => Math.round(v + (VIRIDIS[i + 1][c] - v) * f));
}

function headers() {
  const token = $('token').value.trim();
  return token ? { authorization: 'Bearer ' + token } : {};
}

function showError(text) {
  $('error').textContent = text;
  $('error').classList.add('shown');
  $('results').classList.add('hidden');
  state.errors += 1;
  document.body.dataset.errors = String(state.errors);
  document.body.dataset.state = 'error';
  $('status').textContent = '';
}

function clearError() {
  $('error').textContent = '';
  $('error').classList.remove('shown');
}

/** An error answer in words: what went wrong and what to do, then the service's own message. */
function explainError(status, body) {
  const e = body && body.error ? body.error : {};
  const said = e.message ? ' The service said: ' + e.message + (e.code ? ' (' + e.code + ')' : '') : '';
  if (status === 401) return 'This service needs a token: enter its AUTH_TOKEN in the token field.' + said;
  if (status === 413) return 'That file is larger than this service accepts.' + said;
  if (status === 415 || status === 422) return 'That file could not be read as a video. Pick a video file (MP4, WebM, MKV...).' + said;
  if (status === 429 || status === 503) return 'The service is busy or starting; try again in a moment.' + said;
  if (status === 400) return 'The request was refused.' + said;
  return 'Something went wrong on the server (HTTP ' + status + ').' + said;
}

function setupKnobs(model) {
  const k = model.knobs;
  const slider = (name, range) => {
    const input = $(name);
    input.min = range.min; input.max = range.max;
    // A fixed step keeps the model's default on the slider's grid (a range-derived step would snap it away).
    input.step = '0.01';
    input.value = range.default;
    $(name + '_out').value = Number(input.value).toFixed(2);
  };
  slider('keep_ratio', k.keep_ratio);
  slider('halt_threshold', k.halt_threshold);
  if (k.merge_mode && k.merge_ratio) {
    const select = $('merge_mode');
    select.replaceChildren(...k.merge_mode.choices.map((c) => new Option(c, c, c === k.merge_mode.default, c === k.merge_mode.default)));
    slider('merge_ratio', k.merge_ratio);
    $('merge').classList.remove('hidden');
  }
  $('model').textContent = model.name + ' ' + model.version + ', ' + model.labels.length + ' labels, ' + model.input.frames + ' frames of ' + model.input.size + ' px, dense ' + model.dense_gflops.toFixed(3) + ' GFLOPs';
}

async function loadModel() {
  try {
    const res = await fetch('v1/models', { headers: headers() });
    const body = await res.json().catch(() => null);
    if (res.status === 503) { $('model').textContent = 'the model is loading...'; setTimeout(loadModel, 1000); return; }
    if (!res.ok) { showError(explainError(res.status, body)); return; }
    state.model = body.models[0];
    setupKnobs(state.model);
  } catch (err) {
    showError('Could not reach the service: ' + err.message);
  }
}

async function run() {
  if (!state.file || !state.model) return;
  if (state.running) { state.again = true; return; }
  state.running = true;
  clearError();
  document.body.dataset.state = 'running';
  $('status').textContent = 'classifying ' + state.file.name + '...';
  const form = new FormData();
  form.append('explain', 'true');
  form.append('top_k', String(Math.min(5, state.model.knobs.top_k.max)));
  form.append('keep_ratio', $('keep_ratio').value);
  form.append('halt_threshold', $('halt_threshold').value);
  if (!$('merge').classList.contains('hidden')) {
    form.append('merge_mode', $('merge_mode').value);
    form.append('merge_ratio', $('merge_ratio').value);
  }
  form.append('file', state.file, state.file.name);
  try {
    const res = await fetch('v1/classify', { method: 'POST', body: form, headers: headers() });
    const body = await res.json().catch(() => null);
    if (!res.ok || !body) showError(explainError(res.status, body));
    else await render(body);
  } catch (err) {
    showError('Could not reach the service: ' + err.message);
  } finally {
    state.running = false;
    if (state.again) { state.again = false; run(); }
  }
}

function bar(container, name, value, max, text, extraClass) {
  const row = document.createElement('div');
  row.className = 'row';
  const label = document.createElement('span');
  label.className = 'name'; label.textContent = name; label.title = name;
  const track = document.createElement('span');
  track.className = 'track';
  const fill = document.createElement('span');
  fill.className = 'fill' + (extraClass ? ' ' + extraClass : '');
  fill.style.width = (max > 0 ? Math.min(100, (100 * value) / max) : 0) + '%';
  track.append(fill);
  const num = document.createElement('span');
  num.className = 'num'; num.textContent = text;
  row.append(label, track, num);
  container.append(row);
  return row;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error('a thumbnail could not be decoded'));
    img.src = src;
  });
}

async function drawFrames(e) {
  const scale = 2;
  const side = e.thumbnails.size * scale;
  const figures = await Promise.all(e.thumbnails.data.map(async (b64, slot) => {
    const img = await loadImage('data:image/png;base64,' + b64);
    const canvas = document.createElement('canvas');
    canvas.width = side; canvas.height = side;
    canvas.className = 'frame';
    const g = canvas.getContext('2d');
    g.imageSmoothingEnabled = false;
    g.drawImage(img, 0, 0, side, side);
    const map = e.stop_map[e.slot_to_map_frame[slot]];
    const w = side / e.grid.cols, h = side / e.grid.rows;
    map.forEach((layer, p) => {
      const [r, gr, b] = layerColour(layer, e.grid.joint_layers);
      g.fillStyle = 'rgba(' + r + ',' + gr + ',' + b + ',' + (layer === 0 ? COLOURS.droppedAlpha : COLOURS.haltedAlpha) + ')';
      g.fillRect(Math.floor(p % e.grid.cols) * w, Math.floor(p / e.grid.cols) * h, w, h);
    });
    const figure = document.createElement('figure');
    const caption = document.createElement('figcaption');
    const ts = e.timestamps_s[slot];
    caption.textContent = 'frame ' + e.sampled_indices[slot] + (ts === null ? '' : ' · ' + ts.toFixed(2) + ' s');
    figure.append(canvas, caption);
    return figure;
  }));
  $('frames').replaceChildren(...figures);
  const legend = [['dropped by the Glimpser', 0]];
  for (let l = 1; l <= e.grid.joint_layers; l++) legend.push([l === e.grid.joint_layers ? 'layer ' + l + ' (ran to the end)' : 'halted after layer ' + l, l]);
  $('legend').replaceChildren(...legend.map(([text, layer]) => {
    const span = document.createElement('span');
    const swatch = document.createElement('i');
    const [r, g, b] = layerColour(layer, e.grid.joint_layers);
    swatch.style.background = 'rgb(' + r + ',' + g + ',' + b + ')';
    span.append(swatch, text);
    return span;
  }));
}

async function render(r) {
  const top = r.top[0];
  $('label').textContent = top.label;
  $('label').dataset.label = top.label;
  $('labels').replaceChildren();
  for (const p of r.top) bar($('labels'), p.label, p.probability, 1, (100 * p.probability).toFixed(1) + '%');

  await drawFrames(r.explain);

  const layers = r.tokens.per_layer.length;
  const densePerLayer = r.tokens.dense / layers;
  $('tokens').replaceChildren();
  r.tokens.per_layer.forEach((n, l) => bar($('tokens'), 'layer ' + (l + 1), n, densePerLayer, n + ' / ' + densePerLayer));
  if (r.tokens.merged_per_layer.some((n) => n > 0)) {
    r.tokens.merged_per_layer.forEach((n, l) => bar($('tokens'), 'merged at ' + (l + 1), n, densePerLayer, String(n), 'merged'));
  }
  $('tokens_total').textContent = r.tokens.total + ' of ' + r.tokens.dense + ' dense tokens (' + (100 * r.tokens.kept_ratio).toFixed(1) + '%)';

  $('gflops').replaceChildren();
  bar($('gflops'), 'this video', r.gflops, r.dense_gflops, r.gflops.toFixed(3));
  bar($('gflops'), 'dense', r.dense_gflops, r.dense_gflops, r.dense_gflops.toFixed(3));
  $('gflops').dataset.gflops = String(r.gflops);
  $('gflops_text').textContent = r.gflops.toFixed(3) + ' GFLOPs, ' + (100 * r.gflops / r.dense_gflops).toFixed(1) + '% of a dense run';

  $('timings').replaceChildren();
  for (const stage of ['queue', 'decode', 'infer', 'post']) bar($('timings'), stage, r.timings_s[stage], r.timings_s.total, (1000 * r.timings_s[stage]).toFixed(1) + ' ms');
  bar($('timings'), 'total', r.timings_s.total, r.timings_s.total, (1000 * r.timings_s.total).toFixed(1) + ' ms');

  $('results').classList.remove('hidden');
  state.runs += 1;
  document.body.dataset.runs = String(state.runs);
  document.body.dataset.state = 'done';
  $('status').textContent = state.file.name + ': ' + top.label + ' (' + (100 * top.probability).toFixed(1) + '%)';
}

function pick(file) {
  if (!file) return;
  state.file = file;
  run();
}

$('file').addEventListener('change', (event) => pick(event.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => { event.preventDefault(); drop.classList.remove('over'); pick(event.dataTransfer.files[0]); });
let pending;
for (const name of ['keep_ratio', 'halt_threshold', 'merge_ratio']) {
  $(name).addEventListener('input', () => { $(name + '_out').value = Number($(name).value).toFixed(2); });
  // Re-run once the slider rests, not on every step of a drag.
  $(name).addEventListener('change', () => { clearTimeout(pending); pending = setTimeout(run, 150); });
}
$('merge_mode').addEventListener('change', run);
$('token').addEventListener('change', () => { if (!state.model) loadModel(); });
loadModel();
`;

const BODY = `<main>
<h1>See where the compute went</h1>
<p>HaltingVT drops patches before the joint layers (the Glimpser) and lets each remaining patch stop early (halting). Pick a video to see which patches were dropped and where each one stopped. <a href="docs">API documentation</a></p>
<p id="model">loading the model...</p>
<div class="card">
<label id="drop">Drop a video here, or pick one<input id="file" type="file" accept="video/*,.mp4,.webm,.mkv,.mov,.avi"></label>
<div class="knobs">
<label>keep_ratio <output id="keep_ratio_out"></output><input id="keep_ratio" type="range"></label>
<label>halt_threshold <output id="halt_threshold_out"></output><input id="halt_threshold" type="range"></label>
<span id="merge" class="hidden"><label>merge_mode <select id="merge_mode"></select></label>
<label>merge_ratio <output id="merge_ratio_out"></output><input id="merge_ratio" type="range"></label></span>
<label>token (only if the service sets AUTH_TOKEN) <input id="token" type="password" autocomplete="off"></label>
</div>
</div>
<p id="status" role="status" aria-live="polite"></p>
<div id="error" class="card" role="alert"></div>
<div id="results" class="hidden">
<div class="card"><p>Label: <span id="label" class="top"></span></p><div id="labels"></div></div>
<div class="card"><h2>Sampled frames, as the model saw them</h2>
<p>Each square is a patch. Dark: dropped by the Glimpser, never processed by the joint layers. Colour: the joint layer after which the patch stopped (halted, or merged), from purple (early) to yellow (late).</p>
<div id="legend"></div><div id="frames"></div></div>
<div class="card"><h2>Tokens per joint layer, against a dense run</h2><p id="tokens_total"></p><div id="tokens"></div></div>
<div class="card"><h2>GFLOPs against dense</h2><p id="gflops_text"></p><div id="gflops"></div></div>
<div class="card"><h2>Time per stage</h2><div id="timings"></div></div>
</div>
</main>`;

export const DEMO_PAGE = selfContainedPage({ title: 'HaltingVT: see where the compute went', style: STYLE, body: BODY, script: SCRIPT, images: 'data:' });
