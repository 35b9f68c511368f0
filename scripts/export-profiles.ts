/**
 * Export the stored profiles in bulk, one JSON object per line, through the
 * admin API's listing (`GET /v1/admin/profiles`, followed page by page):
 *
 * - without `--labels`: `{"userId"?, "anonymousId"?, "profile": …}` per
 *   profile;
 * - with `--labels <file.jsonl>` (one `{"userId": …, "churned": true|false,
 *   "at"?: ISO}` per line, the outcome you know from your own systems): only
 *   the labelled customers, as `{"profile": …, "churned": …, "at"?: …}` —
 *   the training data of scripts/train-churn.ts.
 *
 * `npx tsx scripts/export-profiles.ts --help` prints the usage. The admin
 * token comes from KAIROS_ADMIN_TOKEN (the local stack's bearer token).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseIsoDateTime } from '#domain/ingest/timestamps.ts';
import { parseCommandLine, readText, runCommand, UsageError } from './cli.ts';

export const USAGE = `Usage: npx tsx scripts/export-profiles.ts --url <base URL> [options]

Pages through every stored profile (GET /v1/admin/profiles) with the admin
token of KAIROS_ADMIN_TOKEN and writes one JSON object per line.

  --url <base URL>        the API, such as http://127.0.0.1:3000
  --kind <kind>           user (default), anonymous or all
  --labels <file.jsonl>   one {"userId", "churned": true|false, "at"?: ISO} per
                          line: write only these customers, labelled, as the
                          trainer's --data expects
  --out <file>            write here (refuses to overwrite an existing file
                          unless --force); default standard output
  --force                 let --out replace an existing file
  -h, --help              this text
`;

export interface ExportOptions {
  readonly url: string;
  readonly kind: 'user' | 'anonymous' | 'all';
  readonly labels?: string;
  readonly out?: string;
  readonly force: boolean;
}

/** The command line, checked; 'help' for -h/--help. Throws UsageError. */
export function parseExportArgs(argv: readonly string[]): ExportOptions | 'help' {
  const values = parseCommandLine(argv, {
    url: { type: 'string' },
    kind: { type: 'string', default: 'user' },
    labels: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return 'help';
  if (values.url === undefined || !/^https?:\/\/[^\s/]+/.test(values.url)) {
    throw new UsageError(`--url must be the API's base URL, such as http://127.0.0.1:3000${values.url === undefined ? '' : ` (got "${values.url}")`}`);
  }
  const kind = values.kind;
  if (kind !== 'user' && kind !== 'anonymous' && kind !== 'all') throw new UsageError(`--kind must be user, anonymous or all (got "${kind}")`);
  return {
    url: values.url.replace(/\/+$/, ''),
    kind,
    force: values.force,
    ...(values.labels !== undefined ? { labels: values.labels } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
  };
}

export interface Label {
  readonly churned: boolean;
  readonly at?: string;
}

/** The labels of a JSONL text by userId; a malformed line is a UsageError naming `path:line`. */
export function parseLabels(text: string, path: string): Map<string, Label> {
  const labels = new Map<string, Label>();
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const where = `${path}:${index + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not a JSON object`);
    }
    const r = (row ?? {}) as { userId?: unknown; churned?: unknown; at?: unknown };
    if (typeof r !== 'object' || typeof r.userId !== 'string' || r.userId === '') throw new UsageError(`${where}: "userId" must be a non-empty string`);
    if (typeof r.churned !== 'boolean') throw new UsageError(`${where}: "churned" must be true or false`);
    // Read strictly, as the trainer reads it: the engine's Date.parse would move 2026-02-30 to March 2nd.
    if (r.at !== undefined && (typeof r.at !== 'string' || parseIsoDateTime(r.at) === undefined)) {
      throw new UsageError(`${where}: "at" must be an ISO-8601 date-time such as 2026-11-01T00:00:00Z`);
    }
    if (labels.has(r.userId)) throw new UsageError(`${where}: "${r.userId}" is labelled twice`);
    labels.set(r.userId, { churned: r.churned, ...(typeof r.at === 'string' ? { at: r.at } : {}) });
  });
  if (labels.size === 0) throw new UsageError(`${path}: no labels`);
  return labels;
}

interface ListedProfile {
  readonly userId?: string;
  readonly anonymousId?: string;
  readonly profile: unknown;
}

/** Every page of the listing, in order; throws UsageError for an answer that is not 200. */
async function* pages(options: ExportOptions, token: string): AsyncGenerator<ListedProfile[]> {
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ kind: options.kind, limit: '1000', ...(cursor !== undefined ? { cursor } : {}) });
    let response: Response;
    try {
      response = await fetch(`${options.url}/v1/admin/profiles?${query}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });
    } catch (error) {
      throw new UsageError(`cannot reach ${options.url}: ${(error as Error).message}`);
    }
    const body = (await response.json().catch(() => undefined)) as { profiles?: ListedProfile[]; next?: string; error?: { message?: string } } | undefined;
    if (response.status !== 200 || !Array.isArray(body?.profiles)) {
      throw new UsageError(`${options.url} answered ${response.status} ${body?.error?.message ?? ''}`.trim());
    }
    yield body.profiles;
    cursor = body.next;
  } while (cursor !== undefined);
}

/** Export as the options say; returns the lines written and, with labels, the labelled ids not found. */
export async function exportProfiles(options: ExportOptions, token: string, write: (line: string) => void): Promise<{ lines: number; missing: string[] }> {
  const labels = options.labels !== undefined ? parseLabels(readText(options.labels, 'labels file'), options.labels) : undefined;
  const found = new Set<string>();
  let lines = 0;
  for await (const page of pages(options, token)) {
    for (const listed of page) {
      if (labels) {
        const label = listed.userId !== undefined ? labels.get(listed.userId) : undefined;
        if (!label || listed.userId === undefined) continue;
        found.add(listed.userId);
        write(JSON.stringify({ profile: listed.profile, churned: label.churned, ...(label.at !== undefined ? { at: label.at } : {}) }));
      } else {
        write(JSON.stringify(listed));
      }
      lines++;
    }
  }
  return { lines, missing: labels ? [...labels.keys()].filter((id) => !found.has(id)) : [] };
}

/** The command: 0 done, 2 a usage or input mistake (one line on stderr), 1 anything else. */
export async function main(argv: readonly string[]): Promise<number> {
  return runCommand('export-profiles', async () => {
    const options = parseExportArgs(argv);
    if (options === 'help') {
      process.stdout.write(USAGE);
      return;
    }
    const token = process.env.KAIROS_ADMIN_TOKEN;
    if (!token) throw new UsageError('set KAIROS_ADMIN_TOKEN to the admin token');
    if (options.out !== undefined && !options.force && existsSync(options.out)) {
      throw new UsageError(`${options.out} exists; choose another --out file, or add --force to replace it`);
    }
    const out: string[] = [];
    const { lines, missing } = await exportProfiles(options, token, (line) => (options.out !== undefined ? out.push(line) : process.stdout.write(`${line}\n`)));
    if (options.out !== undefined) writeFileSync(options.out, out.length ? `${out.join('\n')}\n` : '');
    console.error(`exported ${lines} profile(s)${options.out !== undefined ? ` to ${options.out}` : ''}`);
    if (missing.length > 0) console.error(`no profile for ${missing.length} labelled id(s), e.g. ${missing.slice(0, 3).join(', ')}`);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main(process.argv.slice(2));
