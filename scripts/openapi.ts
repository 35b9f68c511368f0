/**
 * The OpenAPI 3.1 document of the public HTTP API, generated from the one
 * route table (shared/http/routes.ts) and the zod schemas that check each
 * request body, so the published description cannot drift from what the
 * stack serves.
 *
 *   npm run openapi           writes docs/openapi.json
 *   npm run openapi -- --check  exits 1 when docs/openapi.json is not current
 *
 * Request bodies are the zod schemas' input JSON Schema (zod 4
 * `toJSONSchema`, `io: "input"`); error answers are the API.md §6 shape with
 * the codes of shared/http/errors.ts. Answers without a zod schema are
 * described in words.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as z from 'zod/mini';
import * as zc from 'zod';
import { catalogSchema } from '#domain/catalog/schema.ts';
import { CONTEXT_LIMITS, decideRequestSchema, simulateRequestSchema } from '#domain/decide/request.ts';
import { batchEnvelopeSchema, messageSchema } from '#domain/ingest/schema.ts';
import { ERROR_STATUS, type ErrorCode } from '#http/errors.ts';
import { SHORT_EVENT_ROUTES, methodsOf, routeKey, routes, type Route, type ServedMethod } from '#http/routes.ts';
import { rollbackSchema } from '#functions/admin/catalog.ts';
import { createKeySchema, setUserTokenSecretSchema } from '#functions/admin/keys.ts';

type JsonSchema = Record<string, unknown>;

/** A zod schema's JSON Schema as a client must send it; opaque custom checks read as "a JSON object". */
function inputSchema(schema: z.core.$ZodType): JsonSchema {
  const json = zc.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      // The one custom schema of the request bodies is the Segment JSON object (properties, traits, context).
      if (zodSchema._zod.def.type === 'custom') jsonSchema.type = 'object';
    },
  }) as JsonSchema;
  delete json.$schema;
  return json;
}

/**
 * The request context's bounds that JSON Schema can state (CONTEXT_LIMITS: keys, key length), on a
 * schema whose `context` is the custom check (its JSON size, depth and values are checked by the
 * server and cannot be said here).
 */
function withContextBounds(schema: JsonSchema): JsonSchema {
  const properties = schema.properties as Record<string, JsonSchema>;
  properties.context = { ...properties.context, maxProperties: CONTEXT_LIMITS.keys, propertyNames: { maxLength: CONTEXT_LIMITS.keyLength } };
  return schema;
}

interface Operation {
  readonly summary: string;
  /** Named component schema of the JSON body, if the route takes one. */
  readonly body?: keyof typeof bodySchemas;
  /** The body may also be YAML (the catalog). */
  readonly yaml?: boolean;
  readonly success: { readonly status: number; readonly description: string };
  readonly query?: readonly { name: string; description: string }[];
  /** Error codes the route answers besides those of its kind (`errorCodes`). */
  readonly errors?: readonly ErrorCode[];
}

const bodySchemas = {
  Message: () => inputSchema(messageSchema),
  Batch: () => {
    const envelope = inputSchema(batchEnvelopeSchema);
    const properties = envelope.properties as Record<string, JsonSchema>;
    properties.batch = { ...properties.batch, items: { $ref: '#/components/schemas/Message' } };
    return envelope;
  },
  DecideRequest: () => withContextBounds(inputSchema(decideRequestSchema())),
  SimulateRequest: () => withContextBounds(inputSchema(simulateRequestSchema())),
  Catalog: () => inputSchema(catalogSchema),
  CreateKey: () => inputSchema(createKeySchema),
  UserTokenSecret: () => inputSchema(setUserTokenSecretSchema),
  Rollback: () => inputSchema(rollbackSchema),
} as const;

const single = (type: string): Operation => ({
  summary: `One ${type} message (Segment Spec)`,
  body: 'Message',
  success: { status: 200, description: '`{success, accepted, duplicates, rejected[]}`: accepted messages are durably stored' },
});

/** The `kind` query parameter of the admin routes of one customer (functions/admin/profiles.ts `operatorIdKind`). */
const ID_KIND_QUERY = {
  name: 'kind',
  description:
    'what the path names: user (a userId, the default) or anonymous (an anonymousId: its visitor, or the user it was merged into); a userId never reaches an anonymous visitor, nor an anonymousId the user of the same text (404, saying to name it as the other kind)',
};

/** What each route of the table does; a route missing here fails generation (and the test). */
const operations: Readonly<Record<string, Operation>> = {
  'POST /v1/batch': {
    summary: 'A batch of Segment Spec messages',
    body: 'Batch',
    success: { status: 200, description: '`{success, accepted, duplicates, rejected[]}`: valid messages are stored even when others are refused' },
  },
  'POST /v1/track': single('track'),
  'POST /v1/identify': single('identify'),
  'POST /v1/page': single('page'),
  'POST /v1/screen': single('screen'),
  'POST /v1/alias': single('alias'),
  'POST /v1/group': single('group'),
  'POST /v1/decide': {
    summary:
      'The next best action for a customer on a channel. A public key: web, app and push only, no explain, and a userId only with an `X-Kairos-User-Token` (HS256 JWT `{sub, iat?, exp}`, living at most KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS, a day by default; a refused token is a 401 that says why)',
    body: 'DecideRequest',
    success: {
      status: 200,
      description: '`{decisionId, channel, placement, actions[], …}` (API.md §4); for a public key only decisionId, channel, placement, fallback, degraded and per action actionId, variant, content, experiment',
    },
  },
  'GET /v1/health': { summary: 'Readiness of the stack', success: { status: 200, description: '`{"ok": true, "version": …}`' } },
  'GET /v1/admin/profiles': {
    summary: 'Every stored profile, in pages (a bulk export: training data for a model)',
    query: [
      { name: 'kind', description: 'user (default), anonymous or all' },
      { name: 'limit', description: 'profiles per page, 1 to 1000 (default 100)' },
      { name: 'cursor', description: 'the `next` of the previous page' },
    ],
    success: { status: 200, description: '`{profiles[{userId?, anonymousId?, anonymousIds, profile}], next?}`; follow `next` until it is absent' },
  },
  'GET /v1/admin/profiles/{userId}': {
    summary: "A customer's profile, their journeys and last events",
    query: [ID_KIND_QUERY],
    success: { status: 200, description: '`{profile, journeys[{journey, run, step?, enteredAt, stepAt, waitingUntil?, ended?{how, at, reason?}, merged?{run, enteredAt, ended{how, at, reason}}}], events[]}`' },
  },
  'GET /v1/admin/profiles/{userId}/export': {
    summary: 'Everything held about a customer (right of access), in pages',
    query: [
      ID_KIND_QUERY,
      { name: 'limit', description: 'events per page, 1 to 1000' },
      { name: 'cursor', description: 'the `next` of the previous page' },
    ],
    success: {
      status: 200,
      description:
        '`{exportedAt, customer, profile, stored, linkedAnonymousIds, events, next?}`: one page of the export, with `next` while more remain; `linkedAnonymousIds`: the anonymous ids merged into the customer whose events this page read (at most 1000 a page; over all pages, every one, where `customer.anonymousIds` keeps the profile\'s newest 50)',
    },
  },
  'DELETE /v1/admin/profiles/{userId}': {
    summary: 'Erase a customer (right to erasure)',
    query: [ID_KIND_QUERY],
    success: {
      status: 200,
      description:
        '`{erasedAt, resumed, previousErasedAt?, customer, events}`: `resumed` true when the request went on with an erasure of the customer still in progress (its `erasedAt`: nothing after it is erased); one begun more than 15 minutes before the request is completed and followed by a new erasure at the request\'s instant (`erasedAt`, `previousErasedAt` the one completed first); after an erasure has completed, a request is a new one. `events`: the events this request deleted, of both erasures with `previousErasedAt` (not those the 503s before it deleted: their messages give them; nor those a request erasing the same customer at the same time deleted: each event is counted by the one request whose delete removed it). A history longer than one call erases (events and sends 25 at a time, identity links one at a time, journey runs 99 at a time) is a 503 with Retry-After saying how far the call got: call again until the 200. An id that names nobody (no profile, events, sends or erasure in progress) is a 404 that writes nothing',
    },
  },
  'GET /v1/admin/catalog': { summary: 'The live catalog and its version', success: { status: 200, description: '`{version, catalog}`' } },
  'PUT /v1/admin/catalog': {
    summary: 'Publish a new catalog (JSON, or YAML with Content-Type application/yaml)',
    body: 'Catalog',
    yaml: true,
    success: { status: 200, description: '`{version, live, actions, segments, …, warnings[]}`; a catalog with problems: 400 with every problem in `details`' },
  },
  'POST /v1/admin/catalog/validate': {
    summary: 'Check a catalog without storing it',
    body: 'Catalog',
    yaml: true,
    success: { status: 200, description: '`{valid: true, actions, segments, …, warnings[]}` (warnings: parts of rules that can never be true, in the shape of the error details); a catalog with problems: 400 with every problem in `details`' },
  },
  'GET /v1/admin/catalog/versions': {
    summary: 'Every published catalog version, newest first, in pages',
    query: [
      { name: 'limit', description: 'versions per page, 1 to 100 (default 20)' },
      { name: 'before', description: 'the `next` of the previous page' },
    ],
    success: { status: 200, description: '`{liveVersion, versions[{version, createdAt, format, bytes, sha256, principal, live, rolledBackFrom?}], next?}`' },
  },
  'GET /v1/admin/catalog/versions/{version}': {
    summary: 'One catalog version: its source and document',
    success: { status: 200, description: '`{version, live, createdAt, format, bytes, sha256, catalog, source}`' },
  },
  'POST /v1/admin/catalog/rollback': {
    summary: "Make an earlier version live again (its source published as a new version)",
    body: 'Rollback',
    success: { status: 200, description: '`{version, rolledBackFrom, live}`' },
  },
  'POST /v1/admin/simulate': {
    summary: 'A decision with its explanation, without side effects',
    body: 'SimulateRequest',
    success: { status: 200, description: 'the decision and its explanation' },
  },
  'POST /v1/admin/keys': {
    summary: 'Create a write key (its secret is in this answer only)',
    body: 'CreateKey',
    success: { status: 201, description: 'the key, with `writeKey`' },
  },
  'GET /v1/admin/keys': { summary: 'Every write key, without secrets', success: { status: 200, description: '`{keys[]}`' } },
  'PUT /v1/admin/keys/{keyId}/user-token-secret': {
    summary: "Set or rotate a public key's user-token secret (never returned)",
    body: 'UserTokenSecret',
    success: { status: 200, description: 'the key, with `userTokenSecretSetAt`' },
  },
  'DELETE /v1/admin/keys/{keyId}': { summary: 'Revoke a write key', success: { status: 200, description: 'the revoked key' } },
  'GET /v1/admin/outbox': {
    summary:
      'What the triggers and journeys set off: each emission with its status (now; deferred: a timer, such as a send waiting for the end of quiet hours, decided then; refused by a policy) and what the bus carries',
    query: [
      { name: 'limit', description: 'items read, 1..1000; default 100' },
      { name: 'cursor', description: 'the `next` of the page before' },
      { name: 'status', description: 'only this status: now, deferred or refused' },
    ],
    success: {
      status: 200,
      description:
        '`{emissions[{id, status, sendAt, createdAt, detailType, detail{emissionId, kind, trigger, cause, eventId, customerKey, userId?, anonymousId?, channel, placement?, decidedAt, sendAt, decisionId?, actionId?, variant?, content?, refused?, refusedBy?}}], next?}`',
    },
  },
  'GET /v1/admin/reports/actions': {
    summary: 'Decisions, impressions, clicks and conversions per action, variant, experiment arm and learning context, with 95% intervals, uplift against control and a sample-ratio check (decisions are counted from the decision log and lag by its delivery)',
    query: [
      { name: 'from', description: 'ISO-8601 date-time with an offset, or a date (midnight UTC); default 7 days before `to`; at most 400 days before `to`; a `+hh:mm` offset written unescaped (it arrives as a space) is read as that offset, the same as `%2B`' },
      { name: 'to', description: 'ISO-8601 date-time with an offset, or a date; exclusive; default now; an unescaped `+hh:mm` offset is read as in `from`' },
      { name: 'channel', description: 'only this channel' },
      { name: 'placement', description: 'only this placement' },
      { name: 'experiment', description: 'only this experiment; one neither the live catalog has nor the range\'s statistics name is a 404 `not_found` naming the catalog\'s experiments' },
    ],
    errors: ['not_found'],
    success: {
      status: 200,
      description:
        '`{from, to, reward, rows[{actionId?, variant?, experiment?, arm?, context, channel, placement?, decisions, impressions, clicks, conversions, clickRate, conversionRate}], experiments[{id, inCatalog, kind?, status?, holdout?, arms[{arm, decisions, impressions, clicks, conversions, clickRate, conversionRate, expectedShare?, uplift?}], sampleRatio?}]}`',
    },
  },
  'GET /v1/admin/reports/journeys': {
    summary: "Per journey of the live catalog and per UTC day: runs entered, times each step was reached, runs completed and exited",
    query: [
      { name: 'from', description: 'first day, a date (2026-11-20, UTC); default 6 days before `to`; at most 400 days before `to`' },
      { name: 'to', description: 'last day, a date, included; default today (UTC)' },
      { name: 'journey', description: 'only this journey of the live catalog; one it does not have is a 404 `not_found` naming its journeys' },
    ],
    errors: ['not_found'],
    success: {
      status: 200,
      description: '`{from, to, journeys[{id, name?, totals{entered, steps{<step id>: n}, completed, exited}, days[{day, entered, steps, completed, exited}]}]}`',
    },
  },
};

/** The error codes a route can answer, by its kind (API.md §6) and its description's own. */
function errorCodes(route: Route, op: Operation): ErrorCode[] {
  const codes: ErrorCode[] = ['validation_failed', 'internal', 'unavailable'];
  if (route.auth !== 'none') codes.push('unauthorized', 'forbidden', 'throttled');
  if (route.method === 'POST' || route.method === 'PUT') codes.push('invalid_json', 'payload_too_large', 'unsupported_media_type');
  if (route.path.includes('{')) codes.push('not_found');
  for (const code of op.errors ?? []) if (!codes.includes(code)) codes.push(code);
  return codes;
}

/** A route's answers; on HEAD the GET answers' statuses and descriptions, without content. */
function responses(route: Route, op: Operation, head: boolean): Record<string, unknown> {
  const content = (schema: unknown) => (head ? {} : { content: { 'application/json': { schema } } });
  const out: Record<string, unknown> = {
    [op.success.status]: { description: op.success.description, ...content({}) },
  };
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodes(route, op)) byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[status] = {
      description: codes.map((c) => `\`${c}\``).join(', '),
      ...content({ $ref: '#/components/schemas/Error' }),
    };
  }
  return out;
}

/** A route's description; Segment's short event routes (`/v1/t`) share their long form's. */
function describe(route: Route): Operation | undefined {
  const key = routeKey(route);
  if (operations[key]) return operations[key];
  const short = /^\/v1\/([a-z])$/.exec(route.path)?.[1];
  const long = short !== undefined && Object.hasOwn(SHORT_EVENT_ROUTES, short) ? SHORT_EVENT_ROUTES[short] : undefined;
  const op = long !== undefined ? operations[`POST /v1/${long}`] : undefined;
  return op && { ...op, summary: `${op.summary}; Segment's short form of /v1/${long}` };
}

/** The operation of a route on one of the methods it is served on (routes.ts `methodsOf`: a GET route also on HEAD). */
function operation(route: Route, method: ServedMethod): Record<string, unknown> {
  const head = method === 'HEAD';
  const key = routeKey({ method, path: route.path });
  const described = describe(route);
  if (!described) throw new Error(`scripts/openapi.ts: the route ${routeKey(route)} has no description; add it to \`operations\``);
  const op: Operation = head
    ? { ...described, summary: `${described.summary}: the GET answer's status and headers, without its body (RFC 9110 §9.3.2)` }
    : described;
  const parameters = [
    ...[...route.path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
    ...(op.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, description: q.description, schema: { type: 'string' } })),
  ];
  const ref = op.body ? { $ref: `#/components/schemas/${op.body}` } : undefined;
  return {
    operationId: key.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, ''),
    summary: op.summary,
    tags: [route.function],
    security: route.auth === 'writeKey' ? [{ writeKey: [] }] : route.auth === 'iam' ? [{ admin: [] }] : [],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(ref
      ? {
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: ref },
              ...(op.yaml ? { 'application/yaml': { schema: ref } } : {}),
            },
          },
        }
      : {}),
    responses: responses(route, op, head),
  };
}

/** The OpenAPI 3.1 document of every route of the route table. */
export function buildOpenApi(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    for (const method of methodsOf(route)) (paths[route.path] ??= {})[method.toLowerCase()] = operation(route, method);
  }
  const schemas: Record<string, unknown> = Object.fromEntries(Object.entries(bodySchemas).map(([name, build]) => [name, build()]));
  schemas.Error = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: Object.keys(ERROR_STATUS) },
          message: { type: 'string' },
          details: {
            type: 'array',
            items: {
              type: 'object',
              required: ['path', 'message'],
              properties: {
                path: { type: 'string' },
                message: { type: 'string' },
                position: { type: 'integer', description: 'catalogs: 0-based offset inside a CEL expression or template (in the text for a syntax error)' },
                line: { type: 'integer', description: 'catalogs and JSON syntax errors: 1-based line in the submitted text' },
                column: { type: 'integer', description: '1-based column in that line' },
                excerpt: { type: 'string', description: 'the text of that line' },
                hint: { type: 'string', description: 'for a common slip, what to write instead' },
              },
            },
          },
        },
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Kairos',
      version,
      description: 'Events (Segment Spec), decide (next best action) and operator routes. The contract is API.md; this document is generated from the route table and the request schemas.',
    },
    servers: [{ url: 'http://127.0.0.1:3000', description: 'the local stack (npm start)' }],
    components: {
      securitySchemes: {
        writeKey: { type: 'http', scheme: 'basic', description: 'A write key as the user name and an empty password (Segment’s convention); /v1/batch also takes a body `writeKey`.' },
        admin: { type: 'http', scheme: 'bearer', description: 'Local stack: the admin token `npm start` prints. Deployed: AWS IAM (SigV4) on the route.' },
      },
      schemas,
    },
    paths,
  };
}

export const OPENAPI_FILE = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

/** The document as written to docs/openapi.json. */
export function openApiText(): string {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `${JSON.stringify(buildOpenApi(version), null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = openApiText();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OPENAPI_FILE, 'utf8');
    } catch {
      // missing: not current
    }
    if (current !== text) {
      console.error('docs/openapi.json is not current: run `npm run openapi`');
      process.exit(1);
    }
  } else {
    writeFileSync(OPENAPI_FILE, text);
    console.log(`wrote ${OPENAPI_FILE}`);
  }
}
