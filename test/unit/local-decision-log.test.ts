/**
 * The local stack's decision log (local/decision-log.ts): record lines
 * appended to `<yyyy-mm-dd>.jsonl` by UTC day, continued in `.1`, `.2`…
 * past the size limit (and after a restart, in the day's last part), listed
 * oldest first; and the capture of this process's stdout, which diverts
 * only the decide function's decision record lines and lets every other
 * write through; lines are written DECISION_LOG_FLUSH_MS after they are
 * appended, and on close or exit.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { captureDecisionRecords, DECISION_LOG_FLUSH_MS, decisionLogFiles, LocalDecisionLog } from '#local/decision-log.ts';

const execFileAsync = promisify(execFile);
const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-decision-log-test-'));
  folders.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

describe('LocalDecisionLog', () => {
  it('rotates by UTC day and by size, and a new instance continues the day\'s last part', () => {
    const dir = folder();
    let now = new Date('2026-11-30T23:59:59.000Z');
    const line = (n: number) => JSON.stringify({ message: 'decision record', n, pad: 'x'.repeat(40) });
    const size = Buffer.byteLength(`${line(0)}\n`);
    const log = new LocalDecisionLog(dir, { maxBytes: size * 3, now: () => now });
    for (let n = 0; n < 7; n++) log.append(line(n));
    now = new Date('2026-12-01T00:00:00.500Z');
    log.append(line(7));
    log.close();
    expect(decisionLogFiles(dir).map((f) => basename(f))).toEqual(['2026-11-30.jsonl', '2026-11-30.1.jsonl', '2026-11-30.2.jsonl', '2026-12-01.jsonl']);
    expect(decisionLogFiles(dir).map((f) => lines(f).map((l) => (JSON.parse(l) as { n: number }).n))).toEqual([[0, 1, 2], [3, 4, 5], [6], [7]]);

    now = new Date('2026-11-30T23:59:59.900Z');
    const again = new LocalDecisionLog(dir, { maxBytes: size * 3, now: () => now });
    again.append(line(8));
    again.append(line(9));
    again.append(line(10));
    again.close();
    expect(lines(join(dir, '2026-11-30.2.jsonl'))).toHaveLength(3);
    expect(lines(join(dir, '2026-11-30.3.jsonl'))).toHaveLength(1);
  });

  it('a day\'s file an earlier run left mid-line is continued on a new line: the fragment is one unreadable line, the next record whole', () => {
    const dir = folder();
    const now = new Date('2026-11-30T10:00:00.000Z');
    const line = (n: number) => JSON.stringify({ message: 'decision record', n });
    writeFileSync(join(dir, '2026-11-30.jsonl'), `${line(0)}\n${line(1).slice(0, 20)}`);
    const written: { offset: number; text: string }[] = [];
    const log = new LocalDecisionLog(dir, { now: () => now, onWrite: (_file, offset, text) => void written.push({ offset, text }) });
    log.append(line(2));
    log.close();
    const text = readFileSync(join(dir, '2026-11-30.jsonl'), 'utf8');
    expect(text.split('\n')).toEqual([line(0), line(1).slice(0, 20), line(2), '']);
    // The write handed to the counter starts where it was written.
    expect(written).toEqual([{ offset: text.indexOf(line(2)), text: `${line(2)}\n` }]);
  });

  it('lists day files oldest first (parts in number order) and ignores anything else', () => {
    const dir = folder();
    for (const name of ['2026-11-30.10.jsonl', '2026-11-30.2.jsonl', '2026-11-29.jsonl', '2026-11-30.jsonl', 'notes.txt', '2026-11-30.jsonl.tmp']) {
      writeFileSync(join(dir, name), '');
    }
    expect(decisionLogFiles(dir).map((f) => basename(f))).toEqual(['2026-11-29.jsonl', '2026-11-30.jsonl', '2026-11-30.2.jsonl', '2026-11-30.10.jsonl']);
    expect(decisionLogFiles(join(dir, 'missing'))).toEqual([]);
  });
});

describe('captureDecisionRecords', () => {
  it('diverts the decide function\'s record lines (compact or indented) and nothing else', () => {
    const dir = folder();
    const log = new LocalDecisionLog(dir, { now: () => new Date('2026-11-30T10:00:00Z') });
    const passed: string[] = [];
    const original = process.stdout.write;
    // Stand-in for the terminal: what the capture lets through.
    process.stdout.write = ((chunk: string | Uint8Array) => {
      passed.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    const release = captureDecisionRecords(log);
    try {
      // As the decide function writes them (level, message and the record: no standard keys).
      const record = { level: 'INFO', message: 'decision record', decision: { decisionId: 'd2.x' } };
      process.stdout.write(`${JSON.stringify(record)}\n`);
      process.stdout.write(`${JSON.stringify({ ...record, decision: { decisionId: 'd2.y' } }, null, 4)}\n`);
      process.stdout.write(Buffer.from(`${JSON.stringify({ ...record, decision: { decisionId: 'd2.z' } })}\n`));
      // Another function's standard logger (its keys in Powertools' order) logging the same message: not a record line.
      process.stdout.write(`${JSON.stringify({ level: 'INFO', message: 'decision record', timestamp: '2026-11-30T10:00:00.000Z', service: 'kairos-admin', decision: { decisionId: 'd2.w' } })}\n`);
      process.stdout.write(`${JSON.stringify({ level: 'WARN', message: 'profile read failed', service: 'kairos-decide' })}\n`);
      process.stdout.write('plain text mentioning a decision record\n');
    } finally {
      release();
      process.stdout.write = original;
    }
    log.close();
    const written = lines(join(dir, '2026-11-30.jsonl')).map((l) => JSON.parse(l) as { decision: { decisionId: string } });
    expect(written.map((r) => r.decision.decisionId)).toEqual(['d2.x', 'd2.y', 'd2.z']);
    expect(passed).toHaveLength(3);
    expect(passed[0]).toContain('kairos-admin');
    expect(passed[2]).toBe('plain text mentioning a decision record\n');
  });
});

describe('writes off the request path', () => {
  it('queues lines and writes them DECISION_LOG_FLUSH_MS later, in order; close writes what is queued', async () => {
    const dir = folder();
    const log = new LocalDecisionLog(dir, { now: () => new Date('2026-11-30T10:00:00Z') });
    const file = join(dir, '2026-11-30.jsonl');
    log.append('{"n":1}');
    log.append('{"n":2}');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines(file)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, DECISION_LOG_FLUSH_MS * 2));
    expect(lines(file)).toEqual(['{"n":1}', '{"n":2}']);
    log.append('{"n":3}');
    log.close();
    expect(lines(file)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
  });

  it('a process that exits while its records are diverted writes what is queued', async () => {
    const dir = folder();
    const script = [
      `import { captureDecisionRecords, LocalDecisionLog } from ${JSON.stringify(new URL('../../local/decision-log.ts', import.meta.url).pathname)};`,
      `const log = new LocalDecisionLog(${JSON.stringify(dir)}, { now: () => new Date('2026-11-30T10:00:00Z') });`,
      'captureDecisionRecords(log);',
      `process.stdout.write(JSON.stringify({ level: 'INFO', message: 'decision record', decision: { v: 2, id: 'exit' } }) + '\\n');`,
      'process.exit(0);',
    ].join('\n');
    await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname });
    expect(lines(join(dir, '2026-11-30.jsonl')).map((l) => (JSON.parse(l) as { decision: { id: string } }).decision.id)).toEqual(['exit']);
  });

  it('a line past the size limit goes to the next part after the queued lines of the last one are written', () => {
    const dir = folder();
    const line = '{"pad":"' + 'x'.repeat(40) + '"}';
    const log = new LocalDecisionLog(dir, { maxBytes: (line.length + 1) * 2, now: () => new Date('2026-11-30T10:00:00Z') });
    for (let i = 0; i < 5; i++) log.append(line);
    log.close();
    expect(decisionLogFiles(dir).map((f) => lines(f).length)).toEqual([2, 2, 1]);
  });
});
