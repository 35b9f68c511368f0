/**
 * Helpers for the infra tier: read a synthesized template the way a reviewer
 * would (which role may do what on which table, which function a route
 * reaches). Plain JSON walking, no CDK internals.
 */
import type { Template } from 'aws-cdk-lib/assertions';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
  readonly Metadata?: Record<string, unknown>;
}

export interface PolicyStatement {
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: unknown;
}

export const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export function resourcesOfType(template: Template, type: string): Record<string, CfnResource> {
  return template.findResources(type) as Record<string, CfnResource>;
}

/** The logical id a `{Ref}` or `{Fn::GetAtt: [id, attr]}` points at, if it is one. */
export function referencedLogicalId(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return v.Ref;
    const getAtt = v['Fn::GetAtt'];
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  }
  return undefined;
}

/** Every logical id referenced anywhere inside `value` (Ref and GetAtt), with the GetAtt attribute. */
export function referencesIn(value: unknown): { id: string; attribute?: string }[] {
  const found: { id: string; attribute?: string }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(walk);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === 'string') found.push({ id: o.Ref });
    const getAtt = o['Fn::GetAtt'];
    if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') {
      found.push({ id: getAtt[0], attribute: typeof getAtt[1] === 'string' ? getAtt[1] : undefined });
    }
    Object.values(o).forEach(walk);
  };
  walk(value);
  return found;
}

/** All Allow statements of the inline policies attached to a role. */
export function roleStatements(template: Template, roleLogicalId: string): PolicyStatement[] {
  const statements: PolicyStatement[] = [];
  for (const policy of Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))) {
    const roles = asArray(policy.Properties?.Roles as unknown[]).map(referencedLogicalId);
    if (!roles.includes(roleLogicalId)) continue;
    const doc = policy.Properties?.PolicyDocument as { Statement: PolicyStatement[] };
    statements.push(...doc.Statement.filter((s) => s.Effect === 'Allow'));
  }
  return statements;
}

/**
 * For each table logical id, the actions a role is allowed on it (table or
 * index resources), and separately on its stream.
 */
export function tableActions(
  statements: readonly PolicyStatement[],
  tableLogicalIds: readonly string[],
): { table: Map<string, Set<string>>; stream: Map<string, Set<string>>; index: Map<string, Set<string>> } {
  const table = new Map<string, Set<string>>();
  const stream = new Map<string, Set<string>>();
  const index = new Map<string, Set<string>>();
  const add = (map: Map<string, Set<string>>, id: string, actions: string[]) => {
    const set = map.get(id) ?? new Set<string>();
    actions.forEach((a) => set.add(a));
    map.set(id, set);
  };
  for (const statement of statements) {
    const actions = asArray(statement.Action);
    for (const resource of asArray(statement.Resource as unknown[])) {
      for (const ref of referencesIn(resource)) {
        if (!tableLogicalIds.includes(ref.id)) continue;
        const isIndex = JSON.stringify(resource).includes('/index/');
        if (ref.attribute === 'StreamArn') add(stream, ref.id, actions);
        else if (isIndex) add(index, ref.id, actions);
        else add(table, ref.id, actions);
      }
    }
  }
  return { table, stream, index };
}

/** DynamoDB actions that change data. */
export const DYNAMODB_WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:PartiQLInsert',
  'dynamodb:PartiQLUpdate',
  'dynamodb:PartiQLDelete',
  'dynamodb:DeleteTable',
  'dynamodb:UpdateTable',
] as const;
