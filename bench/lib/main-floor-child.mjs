/** The bare server's stand-in for the decode and inference workers (main-floor-server.mjs): answers each message after GAP_MS with a small typed array, as a worker's result carries. */
const gapMs = Number(process.env.GAP_MS ?? 0);
process.on('message', (m) => {
  const reply = () => void process.send?.({ id: m.id, ok: true, outputs: new Float32Array(400) });
  if (gapMs > 0) setTimeout(reply, gapMs);
  else setImmediate(reply);
});
