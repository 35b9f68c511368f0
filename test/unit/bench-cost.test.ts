/**
 * The cost table's arithmetic (bench/cost.ts) against values worked by hand
 * from the list prices of bench/prices.ts.
 */
import { describe, expect, it } from 'vitest';
import { ONE_VCPU_MB, billedDurationMs, costPerMillion, lambdaDurationMs, readUnits, writeUnits } from '#bench/cost.ts';

describe('capacity units', () => {
  it.each([
    [100, {}, 0.5],
    [4096, {}, 0.5],
    [4097, {}, 1],
    [4097, { consistent: true }, 2],
    [9000, { transactional: true }, 6],
  ])('a read of %i bytes %o is %f RRU', (bytes, options, units) => {
    expect(readUnits(bytes, options)).toBe(units);
  });

  it.each([
    [1, {}, 1],
    [1024, {}, 1],
    [1025, {}, 2],
    [3000, { transactional: true }, 6],
  ])('a write of %i bytes %o is %f WRU', (bytes, options, units) => {
    expect(writeUnits(bytes, options)).toBe(units);
  });
});

describe('a million decisions', () => {
  it('one HTTP request, one 4.2 ms invocation at 1,769 MB, one eventually consistent read, 300 bytes of log', () => {
    const lines = costPerMillion({
      httpRequests: 1,
      lambdas: [{ name: 'decide', invocations: 1, durationMs: 4.2, memoryMb: 1769 }],
      readUnits: 0.5,
      writeUnits: 0,
      logBytes: 300,
      firehoseRecords: 0.01,
      firehoseRecordBytes: 30_000,
    });
    const usd = Object.fromEntries(lines.map((l) => [l.item.split(' (')[0], l.usdPerMillion]));
    // 5 ms billed × 1769/1024 GB × 1e6 = 8,637.6953125 GB-s × $0.0000133334 + $0.20 of requests.
    expect(usd['Lambda decide']).toBeCloseTo(8637.6953125 * 0.0000133334 + 0.2, 9);
    expect(usd['API Gateway HTTP API requests']).toBe(1);
    expect(usd['DynamoDB on-demand reads']).toBeCloseTo(0.0625, 12);
    expect(usd['DynamoDB on-demand writes']).toBe(0);
    // 300 B × 1e6 = 0.2794 GB × $0.50.
    expect(usd['CloudWatch Logs ingestion']).toBeCloseTo((3e8 / 1024 ** 3) * 0.5, 12);
    // 10,000 records of 30,000 B billed as 30,720 B: 0.2861 GB × $0.029.
    expect(usd['Firehose ingestion']).toBeCloseTo(((10_000 * 30_720) / 1024 ** 3) * 0.029, 12);
    const total = lines.at(-1);
    expect(total?.item).toBe('total');
    expect(total?.usdPerMillion).toBeCloseTo(lines.slice(0, -1).reduce((s, l) => s + l.usdPerMillion, 0), 12);
  });

  it('S3: the stored bytes for the retention months at the GB-month price, and a PUT per 5 MB at the request price', () => {
    const lines = costPerMillion({ httpRequests: 0, lambdas: [], readUnits: 0, writeUnits: 0, logBytes: 0, firehoseRecords: 0, firehoseRecordBytes: 0, s3Bytes: 500, s3Months: 3 });
    const s3 = lines.find((l) => l.item.startsWith('S3'));
    // 500 B × 1e6 = 0.4657 GB × $0.023 × 3 months; 5e8 B / 5 MiB = 95.37 PUTs × $0.005 / 1,000.
    expect(s3?.usdPerMillion).toBeCloseTo(((5e8 / 1024 ** 3) * 0.023 * 3 + (5e8 / (5 * 1024 * 1024) / 1000) * 0.005), 12);
  });
});

describe('a Lambda duration at a memory size', () => {
  it('stretches the CPU part by 1,769 MB / memory below one vCPU, never shrinks it above, and leaves the waiting as measured', () => {
    expect(ONE_VCPU_MB).toBe(1769);
    // 8 ms measured, 2 ms of it CPU: at 1,769 MB as measured; at 884.5 MB the CPU part doubles; at 3,538 MB no faster.
    expect(lambdaDurationMs({ durationMs: 8, cpuMs: 2, memoryMb: 1769 })).toBe(8);
    expect(lambdaDurationMs({ durationMs: 8, cpuMs: 2, memoryMb: 884.5 })).toBeCloseTo(10, 12);
    expect(lambdaDurationMs({ durationMs: 8, cpuMs: 2, memoryMb: 3538 })).toBe(8);
    // Without a CPU figure, all of it is CPU: the most a lower memory can cost.
    expect(lambdaDurationMs({ durationMs: 8, memoryMb: 884.5 })).toBeCloseTo(16, 12);
    // CPU above the wall time (other threads) counts as the wall time.
    expect(lambdaDurationMs({ durationMs: 8, cpuMs: 9, memoryMb: 884.5 })).toBeCloseTo(16, 12);
  });

  it('bills the stretched duration, rounded up to the millisecond, at the configured memory', () => {
    const lines = costPerMillion({ httpRequests: 0, lambdas: [{ name: 'decide', invocations: 1, durationMs: 6.2, cpuMs: 1.5, memoryMb: 512 }], readUnits: 0, writeUnits: 0, logBytes: 0, firehoseRecords: 0, firehoseRecordBytes: 0 });
    // 4.7 ms waiting + 1.5 ms × 1769/512 = 9.8828 ms → 10 ms billed × 0.5 GB × 1e6 = 5,000 GB-s.
    expect(lines.find((l) => l.item.startsWith('Lambda decide'))?.usdPerMillion).toBeCloseTo(5000 * 0.0000133334 + 0.2, 9);
    expect(lines.find((l) => l.item.startsWith('Lambda decide'))?.item).toContain('10 ms billed');
  });
});

describe('billed duration of invocations measured one by one', () => {
  it('rounds each invocation up to its millisecond and takes the mean, not the mean rounded up', () => {
    // 2.1, 2.9, 3.0 and 3.2 ms at 1,769 MB: billed 3, 3, 3 and 4 ms, a mean of 3.25 (the mean, 2.8, rounded up is 3).
    const invocationsMeasured = [2.1, 2.9, 3.0, 3.2].map((durationMs) => ({ durationMs, cpuMs: 1 }));
    expect(billedDurationMs({ durationMs: 2.8, cpuMs: 1, memoryMb: 1769, invocationsMeasured })).toBeCloseTo(3.25, 12);
    // At 884.5 MB each CPU millisecond counts twice: 3.1, 3.9, 4.0, 4.2 → 4, 4, 4, 5.
    expect(billedDurationMs({ durationMs: 2.8, cpuMs: 1, memoryMb: 884.5, invocationsMeasured })).toBeCloseTo(4.25, 12);
    // Without them: the mean rounded up.
    expect(billedDurationMs({ durationMs: 2.8, cpuMs: 1, memoryMb: 1769 })).toBe(3);
    const lines = costPerMillion({ httpRequests: 0, lambdas: [{ name: 'decide', invocations: 1, durationMs: 2.8, cpuMs: 1, memoryMb: 1024, invocationsMeasured }], readUnits: 0, writeUnits: 0, logBytes: 0, firehoseRecords: 0, firehoseRecordBytes: 0 });
    // At 1,024 MB: 1,769/1,024 = 1.7275 per CPU ms: 2.83, 3.63, 3.73, 3.93 → 3, 4, 4, 4 = 3.75 ms × 1 GB × 1e6 = 3,750 GB-s.
    const lambda = lines.find((l) => l.item.startsWith('Lambda decide'));
    expect(lambda?.usdPerMillion).toBeCloseTo(3750 * 0.0000133334 + 0.2, 9);
    expect(lambda?.item).toContain('3.75 ms billed');
  });
});
