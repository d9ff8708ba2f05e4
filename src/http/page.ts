/**
 * A self-contained page of the service (/demo, /live): one HTML document with its stylesheet and
 * script inline, and the Content-Security-Policy that allows exactly those two by hash (no
 * 'unsafe-inline'), requests only to this origin, and nothing else unless asked (`images`).
 */
import { createHash } from 'node:crypto';

export interface Page {
  html: string;
  csp: string;
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export function selfContainedPage(parts: { title: string; style: string; body: string; script: string; images?: string }): Page {
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(parts.script)}`,
    `style-src ${sha256(parts.style)}`,
    ...(parts.images ? [`img-src ${parts.images}`] : []),
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${parts.title}</title>
<style>${parts.style}</style></head><body>
${parts.body}
<script>${parts.script}</script>
</body></html>
`;
  return { html, csp };
}
