/**
 * /docs: one self-contained HTML page rendered from the OpenAPI document, with a form to try
 * /v1/classify. No script, style or font comes from anywhere else (the service may run where
 * there is no internet), so the Content-Security-Policy allows only this page's inline code and
 * calls to the same origin.
 */
type Json = Record<string, unknown>;

export const DOCS_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'";

export function renderDocsPage(doc: Json): string {
  const info = doc.info as { title: string; version: string; description: string };
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const schemas = (doc.components as { schemas: Record<string, unknown> }).schemas;
  const operations = Object.entries(paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => {
      const responses = Object.entries(op.responses as Record<string, Json>)
        .map(([status, r]) => `<li><code>${esc(status)}</code> ${esc(responseText(doc, r))}</li>`)
        .join('');
      const params = ((op.parameters as Json[] | undefined) ?? [])
        .map((p) => `<li><code>${esc(String(p.name))}</code> (${esc(String(p.in))}) ${esc(String(p.description ?? ''))}</li>`)
        .join('');
      const body = op.requestBody ? Object.keys((op.requestBody as { content: Json }).content).map((t) => `<code>${esc(t)}</code>`).join(', ') : '';
      return `<section class="op"><h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code> ${esc(String(op.summary ?? ''))}</h3>
${op.description ? `<p>${esc(String(op.description))}</p>` : ''}${params ? `<p>Parameters:</p><ul>${params}</ul>` : ''}${body ? `<p>Body: ${body}</p>` : ''}<p>Responses:</p><ul>${responses}</ul></section>`;
    }),
  );
  const schemaBlocks = Object.entries(schemas)
    .map(([name, schema]) => `<details><summary><code>${esc(name)}</code></summary><pre>${esc(JSON.stringify(schema, null, 2))}</pre></details>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f5f5f5;padding:.75rem;overflow:auto}
.op{border-top:1px solid #ddd;padding:.5rem 0}.m{display:inline-block;min-width:3.5rem;color:#fff;border-radius:3px;padding:0 .3rem;text-align:center;font-size:13px}
.get{background:#2b6cb0}.post{background:#2f855a}form{display:grid;grid-template-columns:10rem 1fr;gap:.4rem;max-width:36rem}
</style></head><body>
<h1>${esc(info.title)} <small>v${esc(info.version)}</small></h1>
<p>${esc(info.description)}</p>
<p>Machine-readable: <a href="openapi.yaml">openapi.yaml</a> (OpenAPI 3.1).</p>
<p>See where the compute went, frame by frame: <a href="demo">the demo page</a>.</p>
<h2>Try it: classify a video</h2>
<form id="try"><label>video</label><input type="file" name="file" required>
<label>top_k</label><input name="top_k" inputmode="numeric" placeholder="model default">
<label>keep_ratio</label><input name="keep_ratio" inputmode="decimal" placeholder="model default">
<label>halt_threshold</label><input name="halt_threshold" inputmode="decimal" placeholder="model default">
<label>merge_mode</label><input name="merge_mode" placeholder="none, tome or tldr (models that offer it)">
<label>merge_ratio</label><input name="merge_ratio" inputmode="decimal" placeholder="model default">
<label>bearer token</label><input name="token" type="password" placeholder="only if AUTH_TOKEN is set">
<span></span><button>POST /v1/classify</button></form>
<pre id="out">the answer appears here</pre>
<h2>Operations</h2>
${operations.join('\n')}
<h2>Schemas</h2>
${schemaBlocks}
<script>
document.getElementById('try').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const token = form.get('token');
  form.delete('token');
  for (const name of ['top_k', 'keep_ratio', 'halt_threshold', 'merge_mode', 'merge_ratio']) if (!form.get(name)) form.delete(name);
  const out = document.getElementById('out');
  out.textContent = 'uploading...';
  try {
    const res = await fetch('v1/classify', { method: 'POST', body: form, headers: token ? { authorization: 'Bearer ' + token } : {} });
    out.textContent = res.status + ' ' + res.statusText + '\\n' + JSON.stringify(await res.json(), null, 2);
  } catch (err) {
    out.textContent = String(err);
  }
});
</script>
</body></html>
`;
}

function responseText(doc: Json, response: Json): string {
  const target = typeof response.$ref === 'string' ? lookup(doc, response.$ref) : response;
  return String(target?.description ?? '');
}

function lookup(doc: Json, pointer: string): Json | undefined {
  let node: unknown = doc;
  for (const key of pointer.replace(/^#\//, '').split('/')) node = (node as Json | undefined)?.[key];
  return node as Json | undefined;
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
