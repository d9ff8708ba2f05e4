/**
 * /metrics after real traffic: the series the README promises, with route patterns (never raw
 * URLs) as labels, and `promtool check metrics` clean (Debian's `prometheus` package, installed by
 * `make test`; run alone without promtool, that one test is skipped).
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { suiteNeeds } from '../helpers/needs.js';
import { fixture, form, useTinyApp, videoPart } from './helpers.js';

const t = useTinyApp({ engine: { decodeWorkerMaxVideos: 2 }, overrides: { defaultMetrics: true } }); // the four videos below retire the decode worker twice
let text: string;

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

beforeAll(async () => {
  await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('clip.mp4', fixture('clip.mp4'))]) });
  await t.app.inject({ method: 'POST', url: '/v1/classify', ...form([videoPart('g.mp4', fixture('garbage.mp4'))]) });
  await t.app.inject({
    method: 'POST',
    url: '/v1/classify:batch',
    ...form([videoPart('a.mp4', fixture('three.mp4'), 'files'), videoPart('b.m4a', fixture('audio.m4a'), 'files')]),
  });
  await t.app.inject({ method: 'GET', url: '/v1/models/nope' });
  await t.app.inject({ method: 'GET', url: '/no/such/path?id=123' });
  const res = await t.app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toContain('text/plain');
  text = res.body;
});

/** The value of one sample line, e.g. value('haltingvt_videos_total{outcome="ok"}'). */
function value(series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no sample ${series} in\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('counts requests by route pattern and status', () => {
    expect(value('haltingvt_requests_total{protocol="http",route="/v1/classify",method="POST",status="200"}')).toBe(1);
    expect(value('haltingvt_requests_total{protocol="http",route="/v1/classify",method="POST",status="422"}')).toBe(1);
    expect(value('haltingvt_requests_total{protocol="http",route="/v1/classify:batch",method="POST",status="200"}')).toBe(1);
    expect(value('haltingvt_requests_total{protocol="http",route="/v1/models/:name",method="GET",status="404"}')).toBe(1);
    expect(value('haltingvt_requests_total{protocol="http",route="unmatched",method="GET",status="404"}')).toBe(1);
    expect(text).not.toContain('/no/such/path');
    expect(value('haltingvt_request_duration_seconds_count{protocol="http",route="/v1/classify",method="POST"}')).toBe(2);
    expect(text).toContain('haltingvt_request_duration_seconds_bucket{le="60",protocol="http",route="/v1/classify",method="POST"} 2');
  });

  it('counts videos, batches, errors by code, and per-video tokens, FLOPs and kept ratio', () => {
    expect(value('haltingvt_videos_total{outcome="ok"}')).toBe(2);
    expect(value('haltingvt_videos_total{outcome="error"}')).toBe(2);
    expect(value('haltingvt_batches_total')).toBe(1);
    expect(value('haltingvt_batch_size_videos_sum')).toBe(2);
    expect(value('haltingvt_errors_total{code="VIDEO_UNDECODABLE"}')).toBe(1);
    expect(value('haltingvt_errors_total{code="VIDEO_NO_STREAM"}')).toBe(1);
    expect(value('haltingvt_errors_total{code="NOT_FOUND"}')).toBe(2);
    expect(value('haltingvt_video_flops_count')).toBe(2);
    expect(value('haltingvt_video_flops_sum')).toBeGreaterThan(1e6);
    expect(value('haltingvt_video_tokens_count')).toBe(2);
    expect(value('haltingvt_video_kept_token_ratio_count')).toBe(2);
    expect(value('haltingvt_video_kept_token_ratio_sum')).toBeLessThanOrEqual(2);
    expect(value('haltingvt_layer_active_tokens_total{layer="0"}')).toBeGreaterThan(0);
    expect(text).toMatch(/haltingvt_layer_active_tokens_total\{layer="3"\} \d+/);
    for (const stage of ['queue', 'decode', 'infer', 'post']) expect(value(`haltingvt_stage_duration_seconds_count{stage="${stage}"}`)).toBe(2);
  });

  it('has queue, in-flight, upload, worker and model gauges, and the default process metrics', () => {
    expect(value('haltingvt_uploads_in_progress')).toBe(0);
    expect(value('haltingvt_upload_files')).toBe(0);
    expect(value('haltingvt_upload_bytes')).toBe(0);
    expect(value('haltingvt_workers_alive{pool="inference"}')).toBe(1);
    expect(value('haltingvt_worker_restarts_total{pool="inference"}')).toBe(0);
    expect(value('haltingvt_worker_failed_starts_total{pool="inference"}')).toBe(0);
    expect(value('haltingvt_worker_retired_total{pool="decode"}')).toBe(2);
    expect(value('haltingvt_worker_restarts_total{pool="decode"}')).toBe(0);
    expect(value('haltingvt_queue_depth')).toBe(0);
    expect(value('haltingvt_queue_running')).toBe(0);
    expect(value('haltingvt_queue_inferring')).toBe(0);
    expect(value('haltingvt_inflight_requests')).toBe(0);
    expect(value('haltingvt_model_ready')).toBe(1);
    expect(value('haltingvt_model_info{model="tiny",version="0.0.1",execution_provider="cpu"}')).toBe(1);
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it.runIf(suiteNeeds({ 'promtool (apt-get install prometheus)': promtool }))('passes `promtool check metrics` with nothing to report', () => {
    const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
