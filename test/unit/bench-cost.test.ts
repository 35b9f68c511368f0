/**
 * The cost table's arithmetic (bench/cost.ts) against values worked by hand
 * from the list prices of bench/prices.ts.
 */
import { describe, expect, it } from 'vitest';
import { costPerMillion, readUnits, writeUnits } from '#bench/cost.ts';

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
