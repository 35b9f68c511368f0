/**
 * Creates the tables on DynamoDB Local from the same definitions the CDK
 * stack uses (shared/store/tables.ts), and adds to a kept table the
 * indexes its definition gained since it was created.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type AttributeDefinition,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { tables, type TableDefinition } from '#store/tables.ts';

export function physicalName(table: TableDefinition, prefix = ''): string {
  return `${prefix}${table.localName}`;
}

export function createTableInput(table: TableDefinition, name: string): CreateTableCommandInput {
  const attributes = new Map<string, AttributeDefinition>();
  const add = (k: { name: string; type: 'S' | 'N' | 'B' }) =>
    attributes.set(k.name, { AttributeName: k.name, AttributeType: k.type });
  add(table.partitionKey);
  if (table.sortKey) add(table.sortKey);
  for (const index of table.globalSecondaryIndexes ?? []) {
    add(index.partitionKey);
    if (index.sortKey) add(index.sortKey);
  }
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes.values()],
    KeySchema: [
      { AttributeName: table.partitionKey.name, KeyType: 'HASH' },
      ...(table.sortKey ? [{ AttributeName: table.sortKey.name, KeyType: 'RANGE' as const }] : []),
    ],
    ...(table.globalSecondaryIndexes
      ? {
          GlobalSecondaryIndexes: table.globalSecondaryIndexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: [
              { AttributeName: index.partitionKey.name, KeyType: 'HASH' as const },
              ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' as const }] : []),
            ],
            Projection: { ProjectionType: index.projection },
          })),
        }
      : {}),
    ...(table.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: table.stream } } : {}),
  };
}

/**
 * Create every table that does not exist yet, and the indexes a kept table
 * lacks (`onKept` is told of each table that existed already, with the
 * names of the indexes added to it); returns the physical names by table
 * id.
 */
export async function ensureTables(
  client: DynamoDBClient,
  prefix = '',
  onKept: (table: TableDefinition['id'], addedIndexes: readonly string[]) => void = () => {},
): Promise<Record<TableDefinition['envVar'], string>> {
  const names = {} as Record<TableDefinition['envVar'], string>;
  for (const table of tables) {
    const name = physicalName(table, prefix);
    names[table.envVar] = name;
    let kept = false;
    try {
      await client.send(new CreateTableCommand(createTableInput(table, name)));
      if (table.timeToLiveAttribute) {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: name,
            TimeToLiveSpecification: { AttributeName: table.timeToLiveAttribute, Enabled: true },
          }),
        );
      }
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
      kept = true;
    }
    const described = await client.send(new DescribeTableCommand({ TableName: name }));
    const added = await addMissingIndexes(client, table, name, described.Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName ?? '') ?? []);
    if (kept) onKept(table.id, added);
  }
  return names;
}

/**
 * Whether every index of the table `name` can be written and read
 * (`ACTIVE`), waiting up to `timeoutMs` (polling every 100 ms): an index
 * just added to a kept table is built first, and DynamoDB Local refuses
 * writes of its key attributes meanwhile.
 */
export async function indexesActive(client: DynamoDBClient, name: string, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if ((Table?.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE')) return true;
    if (Date.now() >= until) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A table kept in a data folder from an earlier version lacks the indexes
 * its definition gained since (the Outbox table's and the Profiles table's
 * `byProfile`): each one missing is added (UpdateTable, one at a time, as
 * DynamoDB allows). Returns the names of those added.
 */
async function addMissingIndexes(client: DynamoDBClient, table: TableDefinition, name: string, existing: readonly string[]): Promise<string[]> {
  const input = createTableInput(table, name);
  const added: string[] = [];
  for (const index of input.GlobalSecondaryIndexes ?? []) {
    if (existing.includes(index.IndexName ?? '')) continue;
    await client.send(new UpdateTableCommand({ TableName: name, AttributeDefinitions: input.AttributeDefinitions, GlobalSecondaryIndexUpdates: [{ Create: index }] }));
    added.push(index.IndexName ?? '');
  }
  return added;
}
