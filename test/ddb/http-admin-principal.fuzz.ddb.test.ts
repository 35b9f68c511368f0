/**
 * Fuzz test of the admin principal middleware (shared/http/admin-principal.ts)
 * against DynamoDB Local, where it looks a write key up: any Authorization
 * header and any IAM authorizer context either puts the caller on
 * `context.principal` (the IAM user ARN or access key, or `local-admin` for
 * the admin token) or is refused with 401 (no operator credential) or 403 (a
 * live write key) — never another error, never a hang.
 */
import middy from '@middy/core';
import fc from 'fast-check';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { HttpContext } from '#http/handler-adapter.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';

const ADMIN_TOKEN = 'fuzz-admin-token-0123456789';
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
const { httpAdminPrincipal } = await import('#http/admin-principal.ts');
const { ApiError } = await import('#http/errors.ts');
const { clearWriteKeyCache } = await import('#http/auth.ts');
const keys = await import('#store/write-keys.ts');

let liveKey = '';
let revokedKey = '';

beforeAll(async () => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
  clearWriteKeyCache();
  liveKey = (await keys.createWriteKey({ name: 'principal fuzz' })).secret;
  const revoked = await keys.createWriteKey({ name: 'principal fuzz, revoked' });
  await keys.revokeWriteKey(revoked.key.keyId);
  revokedKey = revoked.secret;
});

type Credential = { kind: 'token' } | { kind: 'live' } | { kind: 'revoked' } | { kind: 'other'; header: string };

const credentialArb: fc.Arbitrary<Credential | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom<Credential>({ kind: 'token' }, { kind: 'live' }, { kind: 'revoked' }),
  fc
    .oneof(
      fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`),
      fc.string({ maxLength: 60 }).map((s) => basicAuth(s)),
      fc.string({ maxLength: 60 }).map((s) => `Basic ${s}`),
      fc.constant(`Bearer ${ADMIN_TOKEN}x`),
      fc.constant(`bearer  ${ADMIN_TOKEN.slice(1)}`),
      fc.string({ maxLength: 80 }),
    )
    .map((header) => ({ kind: 'other' as const, header })),
);
const iamArb = fc.option(
  fc.record({ userArn: fc.option(fc.string({ minLength: 1, maxLength: 60 }), { nil: undefined }), accessKey: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }) }),
  { nil: undefined },
);

describe('httpAdminPrincipal fuzz', () => {
  it('resolves the principal once, on the context, or refuses with 401/403 only', async () => {
    await fc.assert(
      fc.asyncProperty(credentialArb, iamArb, fc.constantFrom('authorization', 'Authorization', 'AUTHORIZATION'), async (credential, iam, headerName) => {
        const header =
          credential === undefined
            ? undefined
            : credential.kind === 'token'
              ? `Bearer ${ADMIN_TOKEN}`
              : credential.kind === 'live'
                ? basicAuth(liveKey)
                : credential.kind === 'revoked'
                  ? basicAuth(revokedKey)
                  : credential.header;
        const event = apiGatewayEvent({ method: 'GET', path: '/v1/admin/catalog', headers: header === undefined ? {} : { [headerName]: header } });
        if (iam) (event.requestContext as unknown as { authorizer: unknown }).authorizer = { iam };
        const context = lambdaContext() as HttpContext;
        let calls = 0;
        const chain = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
          .use(httpAdminPrincipal())
          .handler(async () => {
            calls++;
            return { statusCode: 200 };
          });
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          chain(event, context).then(
            () => ({ principal: context.principal }),
            (error: unknown) => ({ status: error instanceof ApiError ? error.status : -1, error: String(error) }),
          ),
          new Promise((resolve) => {
            timer = setTimeout(() => resolve({ hung: true }), 10_000);
          }),
        ]);
        clearTimeout(timer);
        const expected = iam
          ? { principal: iam.userArn ?? iam.accessKey ?? 'iam' }
          : credential?.kind === 'token'
            ? { principal: 'local-admin' }
            : credential?.kind === 'live'
              ? { status: 403 }
              : { status: 401 };
        expect(outcome).toMatchObject(expected);
        expect(calls).toBe('principal' in expected ? 1 : 0);
      }),
      { numRuns: 150 },
    );
  });
});
