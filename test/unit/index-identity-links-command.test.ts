/**
 * scripts/index-identity-links.ts's command line: the Profiles table named,
 * --help, and a caller's mistake as one line and exit code 2 (never a
 * Scan of a default table).
 */
import { describe, expect, it, vi } from 'vitest';
import { UsageError } from '#scripts/cli.ts';
import { main, parseIndexLinksArgs } from '#scripts/index-identity-links.ts';

describe('index-identity-links command line', () => {
  it('takes the Profiles table by --table, and --help', () => {
    expect(parseIndexLinksArgs(['--table', 'Kairos-Profiles-1A2B'])).toEqual({ table: 'Kairos-Profiles-1A2B' });
    expect(parseIndexLinksArgs(['--help'])).toBe('help');
    expect(parseIndexLinksArgs(['-h'])).toBe('help');
  });

  it('refuses no table, an empty one and an unknown option', () => {
    expect(() => parseIndexLinksArgs([])).toThrow(UsageError);
    expect(() => parseIndexLinksArgs(['--table', ''])).toThrow(UsageError);
    expect(() => parseIndexLinksArgs(['--table', 't', '--all'])).toThrow(UsageError);
  });

  it('a mistake is exit code 2 with one line on standard error', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await main([])).toBe(2);
      expect(error).toHaveBeenCalledWith('index-identity-links: --table must name the Profiles table (see --help)');
    } finally {
      error.mockRestore();
    }
  });
});
