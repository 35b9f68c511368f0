/**
 * The local stand-in for the SQS on-failure destination of the profile
 * function's event source mapping. Each record has the shape of the message
 * Lambda sends there for a DynamoDB stream batch whose retries are exhausted
 * (it points at the records by shard and sequence numbers; it does not carry
 * them). Kept in memory for tests and appended to `failures.jsonl` in the
 * data folder when the stack is persistent.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DynamoDbStreamBatchInfo {
  readonly shardId: string;
  readonly startSequenceNumber: string;
  readonly endSequenceNumber: string;
  readonly approximateArrivalOfFirstRecord: string;
  readonly approximateArrivalOfLastRecord: string;
  readonly batchSize: number;
  readonly streamArn: string;
}

export interface OnFailureRecord {
  readonly requestContext: {
    readonly requestId: string;
    readonly functionArn: string;
    readonly condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded';
    readonly approximateInvokeCount: number;
  };
  readonly responseContext: {
    readonly statusCode: number;
    readonly executedVersion: string;
    /** Present when the function failed (threw or timed out), absent for reported item failures. */
    readonly functionError?: 'Unhandled';
  };
  readonly version: '1.0';
  readonly timestamp: string;
  readonly DDBStreamBatchInfo: DynamoDbStreamBatchInfo;
}

export class FailureQueue {
  readonly #records: OnFailureRecord[] = [];
  readonly #listeners = new Set<(record: OnFailureRecord) => void>();

  /** @param file JSON Lines file to append to; none keeps the records in memory only. */
  constructor(readonly file?: string) {
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  send(record: OnFailureRecord): void {
    this.#records.push(record);
    if (this.file) appendFileSync(this.file, `${JSON.stringify(record)}\n`, 'utf8');
    for (const listener of this.#listeners) listener(record);
  }

  /** The records sent since this queue was created, oldest first. */
  list(): readonly OnFailureRecord[] {
    return [...this.#records];
  }

  /** Called for every record sent from now on; returns an unsubscribe function. */
  onRecord(listener: (record: OnFailureRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
