/**
 * The README's configuration table, rendered from EnvSchema's defaults and descriptions so that
 * the two cannot drift: `npm run config-docs` writes it between the markers, and
 * test/http/config.test.ts fails when the committed README differs.
 */
import { EnvSchema } from './config.js';

export const TABLE_START = '<!-- config-table:start (npm run config-docs) -->';
export const TABLE_END = '<!-- config-table:end -->';

/** Markdown rows, one per variable, in the schema's order. */
export function configTable(): string {
  const rows = Object.entries(EnvSchema.shape).map(([name, field]) => {
    const def = (field as { def: { type: string; defaultValue?: unknown } }).def;
    const shown = def.type === 'default' ? `\`${String(def.defaultValue)}\`` : 'unset';
    return `| \`${name}\` | ${shown} | ${(field.description ?? '').replaceAll('|', '\\|')} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by the current table; throws when a marker is missing. */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md needs the markers ${TABLE_START} and ${TABLE_END}`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${configTable()}\n${readme.slice(end)}`;
}
