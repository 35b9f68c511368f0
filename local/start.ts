/**
 * `npm start`: the whole of Kairos on this machine. Configured by
 * environment variables (PORT, KAIROS_DATA_DIR, KAIROS_IN_MEMORY,
 * KAIROS_WRITE_KEY, KAIROS_SERVER_KEY, KAIROS_USER_TOKEN_SECRET,
 * KAIROS_DECISION_KEY, KAIROS_ADMIN_TOKEN, KAIROS_CATALOG); SIGINT/SIGTERM stop
 * it cleanly, DynamoDB Local included.
 */
import { startLocalStack, type LocalStack } from './stack.ts';

const quietAccessLog = ['0', 'false', 'off'].includes((process.env.KAIROS_ACCESS_LOG ?? '').toLowerCase());

function banner(stack: LocalStack): string {
  const origin = (generated: boolean) =>
    generated ? (stack.inMemory ? '   (generated for this run)' : '   (generated; kept in the data folder)') : '';
  const lines = [
    '',
    `Kairos is running at ${stack.url}`,
    '',
    `  health        ${stack.url}/v1/health`,
    `  events        POST ${stack.url}/v1/batch  (also /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/alias, /v1/group)`,
    `  decide        POST ${stack.url}/v1/decide`,
    `  operators     ${stack.url}/v1/admin/...`,
    '',
    `  public key    ${stack.writeKey}${origin(stack.generated.writeKey)}`,
    `                (write key for pages and apps: events; decide on web/app/push for an anonymousId,`,
    `                 or a userId with an X-Kairos-User-Token signed with the user-token secret)`,
    `  user-token secret ${stack.userTokenSecret}${origin(stack.generated.userTokenSecret)}`,
    `  server key    ${stack.serverKey}${origin(stack.generated.serverKey)}`,
    `                (write key for back-ends: decide on every channel for any userId, with segments and explain)`,
    `  admin token   ${stack.adminToken}${origin(stack.generated.adminToken)}`,
    `  data          ${stack.inMemory ? 'in memory (KAIROS_IN_MEMORY=1): gone when this stops' : stack.dataDir}`,
    `  catalog       ${stack.catalog.message}`,
    '',
    'Try it:',
    `  curl -s -u '${stack.writeKey}:' -H 'content-type: application/json' \\`,
    `    -d '{"userId":"u-42","event":"Order Completed","properties":{"revenue":42.5}}' ${stack.url}/v1/track`,
    `  curl -s -u '${stack.serverKey}:' -H 'content-type: application/json' \\`,
    `    -d '{"userId":"u-42","channel":"email"}' ${stack.url}/v1/decide`,
    `  curl -s -H 'authorization: Bearer ${stack.adminToken}' ${stack.url}/v1/admin/profiles/u-42`,
    '',
    'Ctrl+C stops it.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  let stack: LocalStack | undefined;
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`\n${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    console.log(`\n${signal}: stopping Kairos...`);
    const done = stack ? stack.stop() : Promise.resolve();
    done.then(
      () => {
        console.log('Kairos stopped.');
        process.exit(0);
      },
      (error: unknown) => {
        console.error('Kairos did not stop cleanly:', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  console.log('Starting Kairos (DynamoDB Local, tables, functions, stream)...');
  try {
    stack = await startLocalStack({
      ...(quietAccessLog ? {} : { accessLog: (line: string) => console.log(line) }),
    });
  } catch (error) {
    console.error(`\nKairos could not start: ${(error as Error).message}`);
    process.exit(1);
  }
  if (stopping) {
    await stack.stop();
    process.exit(0);
  }
  console.log(banner(stack));
}

await main();
