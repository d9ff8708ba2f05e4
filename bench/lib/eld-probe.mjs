// Preloaded into the server process by the benchmark (`node --import ./bench/lib/eld-probe.mjs
// dist/server.js`): samples the main thread's event-loop delay at 1 ms resolution and answers the
// benchmark over the IPC channel it was started with. Does nothing when there is no IPC channel.
import { monitorEventLoopDelay } from 'node:perf_hooks';

if (typeof process.send === 'function') {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  process.on('message', (message) => {
    if (!message || message.type !== 'bench:eld') return;
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
    if (message.reset) histogram.reset();
  });
  // The channel must not keep a server that is shutting down alive.
  process.channel?.unref();
}
