// Preloaded into the server process by the benchmark (`node --import ./bench/lib/eld-probe.mjs
// dist/server.js`): samples the main thread's event-loop delay at 1 ms resolution while the
// benchmark has it on, and answers the benchmark over the IPC channel it was started with. Does
// nothing when there is no IPC channel.
//
// Off unless asked: its 1 ms timer wakes the process 1,000 times a second, and with it on the main
// process spent 5.3-7.4 CPU ms per video one at a time instead of 3.4-3.6 (2-core EPYC, 2026-12-07),
// which every CPU figure of a step would have counted as the service's. So the benchmark measures a
// step's CPU with it off and the loop's delay in a window of its own (bench/lib/service.ts).
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (typeof process.send === 'function') {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  process.on('message', (message) => {
    if (!message || message.type !== 'bench:eld') return;
    if (message.on === true) {
      histogram.reset();
      histogram.enable();
    }
    const ms = (ns) => ns / 1e6;
    process.send({
      type: 'bench:eld',
      id: message.id,
      count: histogram.count,
      p50: ms(histogram.percentile(50)),
      p99: ms(histogram.percentile(99)),
      max: ms(histogram.max),
      rss: process.memoryUsage().rss,
    });
    if (message.on === false) histogram.disable();
    if (message.reset) histogram.reset();
  });
  // The channel must not keep a server that is shutting down alive.
  process.channel?.unref();
}
