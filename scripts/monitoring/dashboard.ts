/**
 * The Grafana dashboard for a fleet of haltingvt pods, as data: one row per concern, each panel one
 * or more PromQL queries over the service's own metrics. `npm run dashboard` writes it to
 * deploy/k8s/base/monitoring/dashboard.json (a ConfigMap of the base, for Grafana's dashboard
 * sidecar); test/deploy/monitoring.test.ts checks that the file is fresh, that every query parses
 * (promtool) and that every metric it names is one the service exports.
 */

interface Query {
  expr: string;
  legend: string;
}
interface Panel {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  /** Stacked areas for parts of a whole; lines otherwise. */
  stacked?: boolean;
}
interface Row {
  title: string;
  panels: Panel[];
}

/** Every query is narrowed to the namespaces and pods chosen at the top of the dashboard. */
const SEL = 'namespace=~"$namespace", pod=~"$pod"';
const RATE = '$__rate_interval';
const INFERENCE_ROUTES = 'route=~"/v1/classify|/v1/classify:batch|/v2/models/.*/infer|/inference.GRPCInferenceService/ModelInfer"';

const quantiles = (metric: string, by: string, extra = ''): Query[] =>
  [0.5, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket{${SEL}${extra}}[${RATE}])))`,
    legend: `p${q * 100}${by ? ` {{${by}}}` : ''}`,
  }));

export const ROWS: Row[] = [
  {
    title: 'Traffic and errors',
    panels: [
      {
        title: 'Videos classified per second',
        description: 'Videos handed to the engine, by outcome; a batch counts each of its videos.',
        unit: 'ops',
        stacked: true,
        queries: [{ expr: `sum by (outcome) (rate(haltingvt_videos_total{${SEL}}[${RATE}]))`, legend: '{{outcome}}' }],
      },
      {
        title: 'Requests per second by status',
        description: 'HTTP requests and gRPC calls answered (gRPC errors as their HTTP status).',
        unit: 'reqps',
        stacked: true,
        queries: [{ expr: `sum by (status) (rate(haltingvt_requests_total{${SEL}}[${RATE}]))`, legend: '{{status}}' }],
      },
      {
        title: 'Error ratio by code',
        description: 'Errors per request, by error code (the catalogue in the README): 4xx are the clients\', 5xx ours.',
        unit: 'percentunit',
        stacked: true,
        queries: [{ expr: `sum by (code) (rate(haltingvt_errors_total{${SEL}}[${RATE}])) / ignoring (code) group_left sum(rate(haltingvt_requests_total{${SEL}}[${RATE}]))`, legend: '{{code}}' }],
      },
    ],
  },
  {
    title: 'Latency',
    panels: [
      { title: 'Classification latency', description: 'Request to answer, upload included, for the inference routes of every protocol.', unit: 's', queries: quantiles('haltingvt_request_duration_seconds', '', `, ${INFERENCE_ROUTES}`) },
      { title: 'Time per stage', description: 'queue (service queue and inference worker), decode (decode worker, preprocessing), infer, post.', unit: 's', queries: quantiles('haltingvt_stage_duration_seconds', 'stage') },
    ],
  },
  {
    title: 'Capacity and health',
    panels: [
      {
        title: 'Queue',
        description: 'Videos waiting for a slot (what the HPA scales on), being decoded, decoded and waiting for the inference worker, and requests in flight.',
        unit: 'short',
        queries: [
          { expr: `sum by (pod) (haltingvt_queue_depth{${SEL}})`, legend: 'waiting {{pod}}' },
          { expr: `sum by (pod) (haltingvt_queue_running{${SEL}})`, legend: 'decoding {{pod}}' },
          { expr: `sum by (pod) (haltingvt_queue_inferring{${SEL}})`, legend: 'decoded, inferring {{pod}}' },
          { expr: `sum by (pod) (haltingvt_inflight_requests{${SEL}})`, legend: 'in flight {{pod}}' },
        ],
      },
      {
        title: 'Workers alive and restarts',
        description: 'Worker processes ready to serve per pool, those that died and were replaced, and those retired on purpose (DECODE_WORKER_MAX_VIDEOS).',
        unit: 'short',
        queries: [
          { expr: `sum by (pool) (haltingvt_workers_alive{${SEL}})`, legend: 'alive {{pool}}' },
          { expr: `sum by (pool) (increase(haltingvt_worker_restarts_total{${SEL}}[${RATE}]))`, legend: 'restarts {{pool}}' },
          { expr: `sum by (pool) (increase(haltingvt_worker_retired_total{${SEL}}[${RATE}]))`, legend: 'retired {{pool}}' },
        ],
      },
      { title: 'Ready pods', description: 'Pods whose model is loaded and warm (the /readyz answer).', unit: 'short', queries: [{ expr: `sum(haltingvt_model_ready{${SEL}})`, legend: 'ready' }] },
    ],
  },
  {
    title: 'What each video cost',
    panels: [
      {
        title: 'GFLOPs per video',
        description: 'The FLOPs the engine spent on a video, halting and the Glimpser included: easy videos cost less.',
        unit: 'short',
        queries: [{ expr: `sum(rate(haltingvt_video_flops_sum{${SEL}}[${RATE}])) / sum(rate(haltingvt_video_flops_count{${SEL}}[${RATE}])) / 1e9`, legend: 'mean' }],
      },
      { title: 'Tokens per video', description: 'Tokens processed over all layers.', unit: 'short', queries: quantiles('haltingvt_video_tokens', '') },
      {
        title: 'Halting: tokens per layer',
        description: 'Mean tokens a joint layer processed per video: the Glimpser cuts after the divided blocks, halting thins the layers after.',
        unit: 'short',
        queries: [{ expr: `sum by (layer) (rate(haltingvt_layer_active_tokens_total{${SEL}}[${RATE}])) / scalar(sum(rate(haltingvt_videos_total{${SEL}, outcome="ok"}[${RATE}])))`, legend: 'layer {{layer}}' }],
      },
      { title: 'Tokens kept', description: 'Tokens kept after the Glimpser and halting, over a dense model\'s.', unit: 'percentunit', queries: quantiles('haltingvt_video_kept_token_ratio', '') },
    ],
  },
  {
    title: 'Live streams',
    panels: [
      {
        title: 'Streams and windows',
        description: 'Live streams open, and their windows per second by outcome (dropped: inference behind, drop_oldest).',
        unit: 'short',
        queries: [
          { expr: `sum(haltingvt_streams_active{${SEL}})`, legend: 'streams open' },
          { expr: `sum by (outcome) (rate(haltingvt_stream_windows_total{${SEL}}[${RATE}]))`, legend: 'windows/s {{outcome}}' },
        ],
      },
      { title: 'Window lag', description: 'From a window\'s last frame arriving to its event: above the stride, windows queue.', unit: 's', queries: quantiles('haltingvt_stream_window_lag_seconds', '') },
      {
        title: 'Pulled sources',
        description: 'Reconnection attempts by reason, stream time lost, refusals by the allow-list, and requests forwarded to the replica holding a stream.',
        unit: 'short',
        queries: [
          { expr: `sum by (reason) (increase(haltingvt_stream_reconnects_total{${SEL}}[${RATE}]))`, legend: 'reconnects {{reason}}' },
          { expr: `sum(increase(haltingvt_stream_gap_seconds_total{${SEL}}[${RATE}]))`, legend: 'seconds lost' },
          { expr: `sum by (stage) (increase(haltingvt_source_refusals_total{${SEL}}[${RATE}]))`, legend: 'refused {{stage}}' },
          { expr: `sum by (outcome) (increase(haltingvt_stream_forwards_total{${SEL}}[${RATE}]))`, legend: 'forwarded {{outcome}}' },
        ],
      },
    ],
  },
];

const EXEMPLARS = /haltingvt_(request|stage)_duration_seconds_bucket/;

/** Grafana's JSON model (schemaVersion 39): rows of timeseries panels, 3 to a row. */
export function buildDashboard(): Record<string, unknown> {
  const panels: Array<Record<string, unknown>> = [];
  let y = 0;
  let id = 1;
  for (const row of ROWS) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    const width = 24 / Math.min(3, row.panels.length);
    row.panels.forEach((p, i) => {
      panels.push({
        id: id++,
        type: 'timeseries',
        title: p.title,
        description: p.description,
        datasource: { type: 'prometheus', uid: '${datasource}' },
        gridPos: { h: 8, w: width, x: (i % 3) * width, y: y + Math.floor(i / 3) * 8 },
        fieldConfig: { defaults: { unit: p.unit, custom: { fillOpacity: p.stacked ? 30 : 0, stacking: { mode: p.stacked ? 'normal' : 'none' } } }, overrides: [] },
        options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
        // The duration histograms carry trace ids as exemplars when tracing is on: Grafana shows
        // them as points on these panels, each a link to its trace (docs/operations.md, Tracing).
        targets: p.queries.map((q, j) => ({ refId: String.fromCharCode(65 + j), datasource: { type: 'prometheus', uid: '${datasource}' }, expr: q.expr, legendFormat: q.legend, ...(EXEMPLARS.test(q.expr) ? { exemplar: true } : {}) })),
      });
    });
    y += Math.ceil(row.panels.length / 3) * 8;
  }
  const variable = (name: string, query: string): Record<string, unknown> => ({
    name,
    label: name,
    type: 'query',
    datasource: { type: 'prometheus', uid: '${datasource}' },
    query: { query, refId: name },
    definition: query,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { text: 'All', value: '$__all' },
    refresh: 2,
    sort: 1,
  });
  return {
    uid: 'haltingvt',
    title: 'haltingvt',
    description: 'HaltingVT video classification: traffic, errors, latency by stage, capacity, what each video cost, live streams.',
    tags: ['haltingvt'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: 'now-1h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        variable('namespace', 'label_values(haltingvt_model_ready, namespace)'),
        variable('pod', 'label_values(haltingvt_model_ready{namespace=~"$namespace"}, pod)'),
      ],
    },
    panels,
  };
}
