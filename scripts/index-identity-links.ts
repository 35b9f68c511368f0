/**
 * Index the identity links written before links carried the customer's
 * profile key (store/profiles.ts `indexIdentityLinks`), so that the export
 * and the erasure find every anonymous id merged into a customer, not only
 * the 50 newest the profile names. A one-off step after upgrading a
 * deployed stack (the local stack does it itself when it adds the index to
 * a kept data folder); running it again indexes only what is left.
 *
 * `npx tsx scripts/index-identity-links.ts --help` prints the usage. AWS
 * credentials and region come from the environment (AWS_REGION,
 * AWS_ACCESS_KEY_ID, …), as for the AWS CLI's environment variables.
 */
import { fileURLToPath } from 'node:url';
import { parseCommandLine, runCommand, UsageError } from './cli.ts';

export const USAGE = `Usage: npx tsx scripts/index-identity-links.ts --table <Profiles table name>

Gives every identity link (the tombstone of an anonymous id merged into a
user) written before links were indexed the user's profile key, so that
GET /v1/admin/profiles/{userId}/export and DELETE /v1/admin/profiles/{userId}
find it. Reads the whole Profiles table (a Scan) once; safe to run again.

  --table <name>   the deployed Profiles table's physical name
  -h, --help       this text
`;

/** The command line, checked; 'help' for -h/--help. Throws UsageError. */
export function parseIndexLinksArgs(argv: readonly string[]): { readonly table: string } | 'help' {
  const values = parseCommandLine(argv, { table: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } });
  if (values.help) return 'help';
  if (values.table === undefined || values.table.length === 0) throw new UsageError('--table must name the Profiles table (see --help)');
  return { table: values.table };
}

export async function main(argv: readonly string[]): Promise<number> {
  return runCommand('index-identity-links', async () => {
    const options = parseIndexLinksArgs(argv);
    if (options === 'help') {
      process.stdout.write(USAGE);
      return;
    }
    const { indexIdentityLinks } = await import('#store/profiles.ts');
    const { indexed } = await indexIdentityLinks({ tableName: options.table });
    console.error(`indexed ${indexed} identity link(s) of ${options.table}`);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main(process.argv.slice(2));
