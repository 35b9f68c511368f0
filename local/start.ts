/**
 * `npm start`: the whole of Kairos on this machine. Configured by
 * environment variables (PORT, KAIROS_DATA_DIR, KAIROS_IN_MEMORY,
 * KAIROS_WRITE_KEY, KAIROS_SERVER_KEY, KAIROS_USER_TOKEN_SECRET,
 * KAIROS_DECISION_KEY, KAIROS_ADMIN_TOKEN, KAIROS_CATALOG, KAIROS_DYNAMODB_HEAP).
 *
 * Stopping: SIGINT or SIGTERM (to this process, or to npm, which forwards
 * them: the start script `exec`s node, so npm's child is this process) stop
 * it cleanly, DynamoDB Local included, within STOP_DEADLINE_MS; past that
 * the rest is ended by force. The same interrupt delivered twice (a
 * terminal's Ctrl+C reaches npm and this process, and npm forwards it) counts
 * once; a second one later ends it at once. Should the process that started
 * this one go away (npm killed, a shell that does not forward signals),
 * this process stops too, rather than keep the ports as an orphan.
 * A DynamoDB Local that dies is restarted; in memory it is not (its data is
 * gone), and this process exits with code 1 saying so.
 */
import { join } from 'node:path';
import { killEmulators } from './dynamodb.ts';
import { startLocalStack, type LocalStack } from './stack.ts';

/** A stop that takes longer than this (a request or a batch that hangs) is finished by force. */
const STOP_DEADLINE_MS = 6_000;
/** A repeat of the same signal within this long is the same interrupt delivered twice. */
const SAME_INTERRUPT_MS = 2_000;
/** How often the parent process is looked for. */
const PARENT_CHECK_MS = 500;

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
    `  decision log  ${join(stack.decisionLog, '<yyyy-mm-dd>.jsonl')}${stack.inMemory ? '  (a temporary folder, removed when this stops)' : ''}`,
    `  dynamodb      ${stack.dynamoEndpoint}   (DynamoDB Local: npm run evaluate -- --dynamodb reads outcomes here)`,
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
  /** Set once started; a stop before that exits at once (the exit handlers end DynamoDB Local if it was launched). */
  const running: { stack?: LocalStack } = {};
  let stopping: { reason: string; at: number } | undefined;
  const stop = (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = { reason, at: Date.now() };
    clearInterval(parentCheck);
    const force = setTimeout(() => {
      console.error(`Kairos did not stop within ${STOP_DEADLINE_MS / 1000} s; ending the rest by force.`);
      killEmulators();
      process.exit(exitCode || 1);
    }, STOP_DEADLINE_MS);
    force.unref();
    const done = running.stack ? running.stack.stop() : Promise.resolve();
    done.then(
      () => {
        console.log('Kairos stopped.');
        process.exit(exitCode);
      },
      (error: unknown) => {
        console.error('Kairos did not stop cleanly:', error);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (stopping.reason === signal && Date.now() - stopping.at < SAME_INTERRUPT_MS) return;
      console.error(`\n${signal} again: exiting now`);
      killEmulators();
      process.exit(130);
    }
    console.log(`\n${signal}: stopping Kairos...`);
    stop(signal, 0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const parent = process.ppid;
  const parentCheck = setInterval(() => {
    if (process.ppid === parent) return;
    console.log('\nThe process that started Kairos is gone: stopping Kairos...');
    stop('parent', 0);
  }, PARENT_CHECK_MS);
  parentCheck.unref();

  console.log('Starting Kairos (DynamoDB Local, tables, functions, stream)...');
  try {
    running.stack = await startLocalStack({
      ...(quietAccessLog ? {} : { accessLog: (line: string) => console.log(line) }),
      onStoreLost: (error) => {
        console.error(`\nKairos stops: ${error.message}`);
        stop('store lost', 1);
      },
    });
  } catch (error) {
    console.error(`\nKairos could not start: ${(error as Error).message}`);
    process.exit(1);
  }
  console.log(banner(running.stack));
}

await main();
