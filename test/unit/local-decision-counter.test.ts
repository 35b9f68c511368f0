/**
 * The local stack's decision counting (local/decision-log.ts `onWrite`,
 * local/decision-counter.ts): every write of the log is handed on with its
 * file and byte offset, so the writes tile each file exactly; consecutive
 * writes of a file are gathered into one chunk named `<run>/<file>@<offset>`; a
 * chunk whose count fails is counted again under the same id, in order,
 * until it succeeds or has failed decisionCountSettings.maxReceiveCount
 * times, when it is set aside (the failure file) and the later chunks go
 * on; `drain` counts what is gathered at once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DECISION_COUNT_FAILURES_FILE, LocalDecisionCounter, type SetAsideChunk } from '#local/decision-counter.ts';
import { decisionCountSettings } from '#shared/functions.ts';
import { decisionLogFiles, LocalDecisionLog } from '#local/decision-log.ts';

const folders: string[] = [];
afterEach(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('LocalDecisionLog onWrite', () => {
  it('hands on each write with its file and offset: the writes of a file, in order, are the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kairos-decision-counter-test-'));
    folders.push(dir);
    const writes: { file: string; offset: number; text: string }[] = [];
    const line = (n: number) => JSON.stringify({ message: 'decision record', n, pad: 'x'.repeat(30) });
    const size = Buffer.byteLength(`${line(0)}\n`);
    const log = new LocalDecisionLog(dir, { maxBytes: size * 3, now: () => new Date('2026-11-30T12:00:00Z'), onWrite: (file, offset, text) => writes.push({ file, offset, text }) });
    for (let n = 0; n < 8; n++) {
      log.append(line(n));
      if (n % 2 === 1) log.flush();
    }
    log.close();
    // An instance started later continues the last part: its offsets continue too.
    const again = new LocalDecisionLog(dir, { maxBytes: size * 100, now: () => new Date('2026-11-30T13:00:00Z'), onWrite: (file, offset, text) => writes.push({ file, offset, text }) });
    again.append(line(8));
    again.close();
    for (const path of decisionLogFiles(dir)) {
      const name = path.slice(dir.length + 1);
      const mine = writes.filter((w) => w.file === name);
      let offset = 0;
      for (const w of mine) {
        expect(w.offset).toBe(offset);
        offset += Buffer.byteLength(w.text);
      }
      expect(mine.map((w) => w.text).join('')).toBe(readFileSync(path, 'utf8'));
    }
    expect(new Set(writes.map((w) => w.file)).size).toBeGreaterThan(1);
  });
});

describe('LocalDecisionCounter', () => {
  it('gathers consecutive writes of a file into one chunk, and starts another for another file or a gap', async () => {
    const counted: [string, string][] = [];
    const counter = new LocalDecisionCounter(async (chunk, text) => void counted.push([chunk, text]), { intervalMs: 60_000, run: 'r1' });
    counter.add('d.jsonl', 0, 'a\n');
    counter.add('d.jsonl', 2, 'b\n');
    counter.add('d.1.jsonl', 0, 'c\n');
    counter.add('d.1.jsonl', 5, 'd\n');
    expect(counter.pending).toBe(3);
    await counter.drain(Date.now() + 5_000);
    expect(counted).toEqual([
      ['r1/d.jsonl@0', 'a\nb\n'],
      ['r1/d.1.jsonl@0', 'c\n'],
      ['r1/d.1.jsonl@5', 'd\n'],
    ]);
    expect(counter.pending).toBe(0);
  });

  it('counts within its interval without being drained', async () => {
    const counted: string[] = [];
    const counter = new LocalDecisionCounter(async (chunk) => void counted.push(chunk), { intervalMs: 20, run: 'r1' });
    counter.add('d.jsonl', 0, 'a\n');
    for (let i = 0; i < 200 && counted.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(counted).toEqual(['r1/d.jsonl@0']);
  });

  it('a chunk whose count fails is counted again under the same id, before any later chunk', async () => {
    const attempts: string[] = [];
    const failures: string[] = [];
    let failuresLeft = 2;
    const counter = new LocalDecisionCounter(
      async (chunk) => {
        attempts.push(chunk);
        if (chunk === 'r1/d.jsonl@0' && failuresLeft-- > 0) throw new Error('store down');
      },
      { intervalMs: 60_000, run: 'r1', retryPauseMs: 20, onFailure: (chunk) => failures.push(chunk) },
    );
    counter.add('d.jsonl', 0, 'a\n');
    counter.add('e.jsonl', 0, 'b\n');
    await counter.drain(Date.now() + 20_000);
    expect(failures).toEqual(['r1/d.jsonl@0', 'r1/d.jsonl@0']);
    expect(attempts).toEqual(['r1/d.jsonl@0', 'r1/d.jsonl@0', 'r1/d.jsonl@0', 'r1/e.jsonl@0']);
    expect(counter.pending).toBe(0);
  });

  it('a chunk that fails for good is set aside after the deployed queue\'s receives (a line in the failure file, told once): the later chunks are counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kairos-decision-counter-test-'));
    folders.push(dir);
    const failureFile = join(dir, DECISION_COUNT_FAILURES_FILE);
    const attempts: string[] = [];
    const counted: string[] = [];
    const told: [SetAsideChunk, unknown][] = [];
    const counter = new LocalDecisionCounter(
      async (chunk) => {
        attempts.push(chunk);
        if (chunk === 'r1/d.jsonl@0') throw new Error('a permanent refusal');
        counted.push(chunk);
      },
      { intervalMs: 60_000, run: 'r1', retryPauseMs: 5, failureFile, onSetAside: (chunk, error) => told.push([chunk, error]) },
    );
    counter.add('d.jsonl', 0, 'a\n');
    counter.add('e.jsonl', 0, 'b\n');
    counter.add('e.jsonl', 7, 'c\n');
    await counter.drain(Date.now() + 20_000);
    expect(counter.pending).toBe(0);
    expect(attempts.filter((a) => a === 'r1/d.jsonl@0')).toHaveLength(decisionCountSettings.maxReceiveCount);
    expect(counted).toEqual(['r1/e.jsonl@0', 'r1/e.jsonl@7']);
    const aside = { chunk: 'r1/d.jsonl@0', file: 'd.jsonl', offset: 0, end: 2, attempts: decisionCountSettings.maxReceiveCount, reason: 'a permanent refusal', at: expect.any(String) };
    expect(told).toEqual([[aside, expect.objectContaining({ message: 'a permanent refusal' })]]);
    expect(counter.setAside).toEqual([aside]);
    expect(readFileSync(failureFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([aside]);
  });
});
