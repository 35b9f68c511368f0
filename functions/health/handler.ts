import { httpHandler } from '#shared/http/middleware.ts';
import { config } from '#shared/config.ts';

/** GET /v1/health: no credential; 200 once the function can serve. */
export const handler = httpHandler(async () => ({ status: 200, body: { ok: true, version: config.KAIROS_VERSION } }), {
  maxBodyBytes: 0,
  cors: true,
  body: 'none',
});
