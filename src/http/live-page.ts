/**
 * /live: pulled streams as they go. One self-contained page, like /demo: it lists the streams
 * (GET /v1/streams), starts one from a URL the operator allows (POST /v1/streams), and for the one
 * selected plots per window the top label's probability, the tokens processed and the GFLOPs spent
 * against stream time, with the label's changes listed, as the events arrive (the SSE of
 * /v1/streams/{id}/events, read with fetch so that a bearer token can go with it).
 *
 * The script and stylesheet are hashed into the Content-Security-Policy (no 'unsafe-inline');
 * requests go only to this origin.
 */
import { selfContainedPage } from './page.js';

const STYLE = `
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:62rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 .6rem}h2{font-size:1.05rem;margin:.6rem 0 .3rem}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:.8rem;margin:.6rem 0}
form{display:grid;grid-template-columns:1fr 6rem 6rem auto;gap:.5rem;align-items:end}
label{display:block;font-size:.85rem}input{font:inherit;padding:.25rem;width:100%}
button{font:inherit;padding:.3rem .8rem;cursor:pointer}
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #e6e9ef}
tr.pick{cursor:pointer}tr.pick:hover,tr.chosen{background:#eef3fb}
#error{display:none;border-color:#d9534f;background:#fdf0ef;color:#8a1f1b}#error.shown{display:block}
.hidden{display:none}
svg{width:100%;height:9rem;display:block;background:#fbfcfd;border:1px solid #e6e9ef;border-radius:4px}
svg text{font-size:11px;fill:#4a5468}
#timeline li{font-variant-numeric:tabular-nums}
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const view = { id: null, points: [], controller: null, ended: null };

function headers(extra) {
  const token = $('token').value.trim();
  return Object.assign(token ? { authorization: 'Bearer ' + token } : {}, extra || {});
}
function showError(text) {
  $('error').textContent = text || '';
  $('error').classList.toggle('shown', Boolean(text));
}
async function said(res) {
  try { const body = await res.json(); return body.error ? body.error.code + ': ' + body.error.message : res.status; } catch { return res.status; }
}
function colour(label) {
  let h = 0;
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) % 360;
  return 'hsl(' + h + ' 65% 42%)';
}
function cell(row, text) { const td = document.createElement('td'); td.textContent = text; row.append(td); }

async function refreshList() {
  const res = await fetch('/v1/streams', { headers: headers() });
  if (!res.ok) return showError('Listing streams failed: ' + (await said(res)));
  if ($('error').textContent.startsWith('Listing streams failed')) showError('');
  const { streams } = await res.json();
  const body = $('streams');
  body.replaceChildren();
  for (const s of streams) {
    const row = document.createElement('tr');
    row.className = 'pick' + (s.id === view.id ? ' chosen' : '');
    row.dataset.id = s.id;
    [s.id, s.source, s.state, String(s.windows), s.lag_s === null ? '' : s.lag_s.toFixed(2) + ' s', String(s.reconnects)].forEach((t) => cell(row, t));
    row.addEventListener('click', () => watch(s.id));
    body.append(row);
  }
  $('none').classList.toggle('hidden', streams.length > 0);
}

async function start(event) {
  event.preventDefault();
  showError('');
  const body = { source: { url: $('url').value.trim() }, window_s: Number($('window_s').value) };
  if ($('stride_s').value) body.stride_s = Number($('stride_s').value);
  const res = await fetch('/v1/streams', { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
  if (res.status !== 201) return showError('The stream was not started: ' + (await said(res)));
  const stream = await res.json();
  await refreshList();
  watch(stream.id);
}

async function watch(id) {
  if (view.controller) view.controller.abort();
  Object.assign(view, { id, points: [], ended: null, controller: new AbortController() });
  $('view').classList.remove('hidden');
  $('title').textContent = id;
  $('state').textContent = 'connecting to its events…';
  render();
  let res;
  try {
    res = await fetch('/v1/streams/' + id + '/events', { headers: headers({ accept: 'text/event-stream' }), signal: view.controller.signal });
  } catch { return; }
  if (!res.ok) return showError('Watching failed: ' + (await said(res)));
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch { return; }
    if (chunk.done) break;
    buffer += decoder.decode(chunk.value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\\n\\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\\n').find((line) => line.startsWith('data: '));
      if (data && view.id === id) take(JSON.parse(data.slice(6)));
    }
  }
}

function take(e) {
  if (e.event === 'window') {
    view.points.push({ t: e.end_s, label: e.top[0].label, p: e.top[0].probability, tokens: e.tokens.total, gflops: e.gflops, lag: e.lag_s });
    $('state').textContent = 'window ' + e.seq + ' at ' + e.end_s.toFixed(1) + ' s: ' + e.top[0].label + ', lag ' + e.lag_s.toFixed(2) + ' s';
  } else if (e.event === 'started') $('state').textContent = 'started: ' + e.video.codec + ' ' + e.video.width + '×' + e.video.height + (e.live ? ', live' : ', finite: read whole');
  else if (e.event === 'reconnecting') $('state').textContent = 'reconnecting (attempt ' + e.attempt + ', ' + e.reason + '): ' + e.message;
  else if (e.event === 'resumed') $('state').textContent = 'resumed after ' + e.gap_s.toFixed(1) + ' s lost';
  else if (e.event === 'error') showError(e.code + ': ' + e.message);
  else if (e.event === 'ended') { view.ended = e.reason; $('state').textContent = 'ended: ' + e.reason + ', ' + e.summary.windows + ' windows, ' + e.summary.gflops.toFixed(2) + ' GFLOPs'; }
  render();
  if (e.event !== 'window' && e.event !== 'dropped') refreshList(); // a change of state: the list shows it too
}

/** One chart: value(point) against stream time, each point coloured by its label. */
function chart(svg, value, format, labelled) {
  svg.replaceChildren();
  // Drawn in the chart's own pixels, so that it fills its width at any size.
  const W = Math.max(200, svg.clientWidth || 600), H = Math.max(80, svg.clientHeight || 144), L = 44, B = 18, pts = view.points;
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  if (pts.length === 0) return;
  const tMax = Math.max(...pts.map((p) => p.t)), vMax = Math.max(...pts.map(value)) || 1;
  const x = (t) => L + (W - L - 8) * (tMax > 0 ? t / tMax : 1);
  const y = (v) => H - B - (H - B - 10) * (v / vMax);
  const add = (name, attrs, text) => {
    const el = document.createElementNS(SVG, name);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  add('text', { x: 2, y: 12 }, format(vMax));
  add('text', { x: 2, y: H - B }, '0');
  add('text', { x: W - 40, y: H - 3 }, tMax.toFixed(0) + ' s');
  add('polyline', { points: pts.map((p) => x(p.t) + ',' + y(value(p))).join(' '), fill: 'none', stroke: '#9aa6b8', 'stroke-width': 1.5 });
  pts.forEach((p, i) => {
    const dot = add('circle', { cx: x(p.t), cy: y(value(p)), r: 4, fill: colour(p.label) });
    dot.dataset.t = String(p.t);
    dot.dataset.label = p.label;
    dot.dataset.value = String(value(p));
    const tip = document.createElementNS(SVG, 'title');
    tip.textContent = p.t.toFixed(1) + ' s: ' + p.label + ', ' + format(value(p));
    dot.append(tip);
    const right = x(p.t) > W / 2; // names on the right half end at their dot, so none runs off the chart
    if (labelled && (i === 0 || pts[i - 1].label !== p.label)) add('text', { x: x(p.t) + (right ? -6 : 6), y: Math.max(12, y(value(p)) - 6), 'text-anchor': right ? 'end' : 'start' }, p.label);
  });
}

function render() {
  chart($('probability'), (p) => p.p, (v) => v.toFixed(2), true);
  chart($('tokens'), (p) => p.tokens, (v) => String(Math.round(v)), false);
  chart($('gflops'), (p) => p.gflops, (v) => v.toFixed(3), false);
  const list = $('timeline');
  list.replaceChildren();
  view.points.forEach((p, i) => {
    if (i > 0 && view.points[i - 1].label === p.label) return;
    const li = document.createElement('li');
    li.dataset.label = p.label;
    li.dataset.from = String(p.t);
    li.textContent = p.label + ' from the window ending at ' + p.t.toFixed(1) + ' s';
    list.append(li);
  });
}

async function remove() {
  if (!view.id) return;
  const res = await fetch('/v1/streams/' + view.id, { method: 'DELETE', headers: headers() });
  if (res.status !== 204) showError('Deleting failed: ' + (await said(res)));
  await refreshList();
}

$('start').addEventListener('submit', start);
$('token').addEventListener('change', refreshList);
$('delete').addEventListener('click', remove);
$('refresh').addEventListener('click', refreshList);
refreshList();
setInterval(refreshList, 3000);
`;

const BODY = `<main>
<h1>Live streams: what each window is, and what it cost</h1>
<div id="error" class="card" role="alert"></div>
<div class="card"><h2>Pull a source</h2>
<form id="start">
<label>URL (rtsp://, srt://, http(s)://; the operator's PULL_SCHEMES and PULL_ALLOW decide) <input id="url" required placeholder="rtsp://camera.example.com/stream1"></label>
<label>window_s <input id="window_s" type="number" min="0.5" max="30" step="0.5" value="4"></label>
<label>stride_s <input id="stride_s" type="number" min="0.1" max="60" step="0.1" placeholder="window / 2"></label>
<button type="submit">Start</button>
</form>
<label>token (only if the service sets AUTH_TOKEN) <input id="token" type="password" autocomplete="off"></label>
</div>
<div class="card"><h2>Streams on this instance <button id="refresh" type="button">refresh</button></h2>
<table><thead><tr><th>id</th><th>source</th><th>state</th><th>windows</th><th>lag</th><th>reconnects</th></tr></thead><tbody id="streams"></tbody></table>
<p id="none">None yet.</p></div>
<div id="view" class="card hidden"><h2>Stream <code id="title"></code> <button id="delete" type="button">delete</button></h2>
<p id="state" role="status" aria-live="polite"></p>
<h2>Top label and its probability</h2><svg id="probability" role="img" aria-label="top label probability per window"></svg>
<h2>Tokens processed per window</h2><svg id="tokens" role="img" aria-label="tokens per window"></svg>
<h2>GFLOPs per window</h2><svg id="gflops" role="img" aria-label="GFLOPs per window"></svg>
<h2>Label changes</h2><ol id="timeline"></ol>
</div>
</main>`;

export const LIVE_PAGE = selfContainedPage({ title: 'HaltingVT: live streams', style: STYLE, body: BODY, script: SCRIPT });
