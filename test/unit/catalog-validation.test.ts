/**
 * Catalog validation as an author meets it: a catalog with many mistakes of
 * different kinds gets every one of them, once, with its path, its line and
 * column in the text (YAML and JSON) or its position inside the expression,
 * and a hint for the common slips; rules that can never be true are
 * refused or warned about.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { CatalogProblem, LoadResult } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { jsonPlaces } from '#domain/catalog/locate.ts';
import { closestName, editDistance } from '#domain/catalog/suggest.ts';
import { MAX_PREFIX_SEARCH, jsonSyntaxError, positionIn } from '#domain/text-position.ts';
import { MAX_HOLDOUT_EXPERIMENTS, MAX_REACTIONS_PER_EVENT, MAX_TRANSACTION_ITEMS } from '#domain/transaction-budget.ts';
import { MAX_JOURNEY_ITEMS_PER_EVENT } from '#domain/catalog/compile-journeys.ts';
import { compileDocument, liveHoldoutExperiments } from '#domain/catalog/compile.ts';
import { Assignments } from '#domain/decide/experiments.ts';
import { CONTROL_ARM } from '#domain/catalog/compiled.ts';
import fc from 'fast-check';
import { catalogSchema } from '#domain/catalog/schema.ts';

function problemsOf(result: LoadResult): readonly CatalogProblem[] {
  if (result.ok) throw new Error('expected the catalog to be refused');
  return result.problems;
}

/** 1-based line and column of the first `snippet` in `text`, at `offset` characters into it. */
function place(text: string, snippet: string, offset = 0): { line: number; column: number } {
  const at = text.indexOf(snippet);
  if (at === -1) throw new Error(`the text has no ${snippet}`);
  const before = text.slice(0, at + offset);
  return { line: before.split('\n').length, column: at + offset - before.lastIndexOf('\n') };
}

const push = { title: 'Te echamos de menos', body: 'Vuelve', deepLink: 'x://' };

/** Nine mistakes of different kinds in one catalog, and two rules that can never be true. */
const mistaken = {
  kind: 'kairos/v1',
  tags: ['promo', 'service'],
  segments: [
    { id: 'vip', rule: 'profile.stats.orders > 5.0' },
    { id: 'loyal', rule: 'profile.stats.openComplaints + 1 > 1.0' }, // int + double
  ],
  personas: [{ id: 'saver', name: 'Saver', rule: 'true' }],
  models: [{ id: 'churnRisk', kind: 'logistic', intercept: 0.5, features: [{ name: 'visits', expression: 'profile.stats.visits30d', weight: -0.1 }] }],
  actions: [
    {
      id: 'welcome',
      name: 'Welcome',
      tags: ['promo'],
      eligibilty: 'profile.stats.orders == 0.0', // misspelled field
      content: { email: { templateId: 't1', subject: 'Hola {{ firstName | upcse }}' } }, // Liquid filter typo
    },
    {
      id: 'winback',
      name: 'Win back',
      tags: ['promos'], // unknown tag
      eligibility: 'profile.scores.churn > 0.5 && channel == "whatsapp" && engagementRate("fax") < 0.2', // unknown model; two warnings
      targeting: { segments: ['vips'], personas: ['savers'] }, // unknown segment, unknown persona
      content: { push },
    },
    {
      id: 'capped',
      name: 'Capped',
      caps: ['once a week'], // a cap that is not "<max>/<window>"
      content: { push },
    },
  ],
  policies: {
    quietHours: [{ channels: ['emial'], from: '22:00', to: '08:00', timezone: 'Europe/Madird' }], // bad channel and bad zone, one entry
  },
};

/** Each mistake: its path, the snippet of the text it is at (and how far into it), and what its message says. */
const expected: { path: string; at: string; offset?: number; message: RegExp; hint?: RegExp; position?: number }[] = [
  { path: 'segments[1].rule', at: '+ 1 >', offset: 2, message: /^CEL error: no such overload: double \+ int/, hint: /^write 1\.0 instead of 1/, position: 31 },
  { path: 'actions[0].eligibilty', at: 'eligibilty', message: /^unknown field "eligibilty"/, hint: /^did you mean "eligibility"\?$/ },
  { path: 'actions[0].content.email.subject', at: 'upcse', message: /^template error: undefined filter: upcse/, hint: /^did you mean "upcase"\?$/, position: 20 },
  { path: 'actions[1].tags[0]', at: 'promos', message: /^unknown tag "promos"/, hint: /^did you mean "promo"\?$/ },
  { path: 'actions[1].eligibility', at: 'churn >', message: /^profile\.scores\.churn: unknown model "churn"/, hint: /^did you mean "churnRisk"\?$/, position: 15 },
  { path: 'actions[1].targeting.segments[0]', at: 'vips', message: /^unknown segment "vips"/, hint: /^did you mean "vip"\?$/ },
  { path: 'actions[1].targeting.personas[0]', at: 'savers', message: /^unknown persona "savers"/, hint: /^did you mean "saver"\?$/ },
  { path: 'actions[2].caps[0]', at: 'once a week', message: /^must be "<max>\/<window>"/ },
  { path: 'policies.quietHours[0].channels[0]', at: 'emial', message: /^must be one of "web", "app", "push", "email", "sms", "call_center"/, hint: /^did you mean "email"\?$/ },
  { path: 'policies.quietHours[0].timezone', at: 'Europe/Madird', message: /^must be an IANA time zone/ },
];

function expectEachOnce(text: string, format: 'yaml' | 'json') {
  const result = loadCatalog(text, format);
  const problems = problemsOf(result);
  expect(problems.map((p) => p.path).sort()).toEqual(expected.map((e) => e.path).sort());
  for (const e of expected) {
    const found = problems.filter((p) => p.path === e.path);
    expect(found.map((p) => p.path)).toEqual([e.path]);
    const p = found[0] as CatalogProblem;
    // An unknown field is at its name; a value at its first character (after a quote).
    const where = place(text, e.at, e.offset ?? 0);
    expect({ path: p.path, line: p.line, column: p.column }).toEqual({ path: e.path, ...where });
    expect(p.message).toMatch(e.message);
    expect(p.excerpt).toBe(text.split('\n')[where.line - 1]);
    if (e.hint) expect(p.hint ?? `${e.path}: no hint`).toMatch(e.hint);
    if (e.position !== undefined) expect(p.position).toBe(e.position);
  }
  // In the order of the text.
  const lines = problems.map((p) => p.line as number);
  expect(lines).toEqual([...lines].sort((a, b) => a - b));
  // The rules that can never be true are warnings, at their literal.
  // At the literal's opening quote (in a JSON string, its escape).
  const literal = (name: string) => place(text, format === 'json' ? `\\"${name}` : `"${name}`);
  expect(result.warnings?.map((w) => [w.path, w.message, { line: w.line, column: w.column }])).toEqual([
    ['actions[1].eligibility', expect.stringMatching(/^channel is never "whatsapp": "whatsapp" is not a channel/), literal('whatsapp')],
    ['actions[1].eligibility', expect.stringMatching(/^engagementRate\("fax"\) is always 0: "fax" is not a channel/), literal('fax')],
  ]);
}

describe('a catalog with many mistakes of different kinds', () => {
  it('in YAML: each reported exactly once, with its path, line and column, and its hint', () => {
    expectEachOnce(stringify(mistaken, { lineWidth: 0 }), 'yaml');
  });

  it('in JSON: the same, at the same places', () => {
    expectEachOnce(JSON.stringify(mistaken, null, 2), 'json');
  });

  it('in a literal block: the CEL error at its token, lines below the field', () => {
    const text = [
      'segments:',
      '  - id: loyal',
      '    rule: |',
      '      profile.stats.orders > 2.0 &&',
      '      profile.stats.openComplaints + 1 > 2.0',
      '',
    ].join('\n');
    const [p] = problemsOf(loadCatalog(text, 'yaml'));
    expect(p).toMatchObject({ path: 'segments[0].rule', line: 5, column: 38, hint: expect.stringMatching(/^write 1\.0 instead of 1/) });
  });

  it('an entry whose shape fails is left out of the deeper checks; the others are checked, their paths as written', () => {
    const problems = problemsOf(
      loadCatalog(
        {
          segments: [{ id: 'vip', rule: 'true', colour: 'x', exclude: 42 }],
          actions: [
            { id: 'broken', name: 'B', priority: 'high', eligibility: 'nonsense >', content: { push } },
            { id: 'fine', name: 'F', eligibility: 'hasSegment("vip") && 1 +', targeting: { segments: ['vip'] }, content: { push } },
          ],
          experiments: [{ id: 'e', kind: 'actions', arms: [{ id: 'x', action: 'broken' }, { id: 'y', action: 'fine' }] }],
        },
        'object',
      ),
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['segments[0].exclude', 'expected a text, got the number 42'],
      ['segments[0].colour', 'unknown field "colour"'],
      ['actions[0].priority', 'expected a number, got the text "high"'],
      // actions[0] is left out: its CEL is not compiled; the segment and action it names are not "unknown".
      ['actions[1].eligibility', expect.stringMatching(/^CEL error: /)],
    ]);
  });

  it('a misspelled required field is one mistake, not also a missing one', () => {
    const problems = problemsOf(loadCatalog({ segments: [{ id: 'vip', rul: 'true' }] }, 'object'));
    expect(problems).toEqual([{ path: 'segments[0].rul', message: 'unknown field "rul"; did you mean "rule"?', hint: 'did you mean "rule"?' }]);
  });

  it('what was expected, in words: lengths, counts, bounds, whole numbers', () => {
    const problems = problemsOf(
      loadCatalog(
        {
          segments: [{ id: 's', rule: 'true', name: 'x'.repeat(201) }],
          exclusiveGroups: [{ id: 'g', segments: ['s'] }],
          learning: { exploration: 2, prior: { alpha: 0 } },
          actions: [{ id: 'a', name: '', priority: 1.5, content: { web: { title: 'x' } } }],
        },
        'object',
      ),
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['segments[0].name', 'must be at most 200 characters (it has 201)'],
      ['exclusiveGroups[0].segments', 'must have at least 2 items (it has 1)'],
      ['actions[0].name', 'must not be empty'],
      ['actions[0].priority', 'expected a whole number, got the number 1.5'],
      ['learning.exploration', 'must be at most 1, got the number 2'],
      ['learning.prior.alpha', 'must be more than 0, got the number 0'],
    ]);
  });

  it('a value of neither type of a union is one message naming both', () => {
    const problems = problemsOf(loadCatalog({ actions: [{ id: 'a', name: 'A', caps: [3], fallback: 'yes', content: { push } }] }, 'object'));
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['actions[0].caps[0]', 'expected a mapping (fields) or a text, got the number 3'],
      ['actions[0].fallback', 'expected true or false or a list, got the text "yes"'],
    ]);
  });
});

describe('hints', () => {
  const rule = (source: string) => {
    const result = loadCatalog({ segments: [{ id: 's', rule: source }] }, 'object');
    return result.ok ? undefined : result.problems[0];
  };

  it('int vs double, both ways, at the literal', () => {
    expect(rule('profile.stats.orders > 1')).toBeUndefined(); // a comparison mixes them freely
    expect(rule('profile.stats.orders + 1 > 2.0')).toMatchObject({ position: 23, hint: expect.stringMatching(/^write 1\.0 instead of 1: /) });
    expect(rule('size(profile.segments) + 1.0 > 2')).toMatchObject({ position: 25, hint: expect.stringMatching(/^write 1 instead of 1\.0: /) });
    expect(rule('size(profile.segments) + profile.stats.orders > 2.0')).toMatchObject({
      position: 25,
      hint: expect.stringMatching(/^convert one side with double\(…\) or int\(…\)/),
    });
  });

  it('a newcomer’s slips: a misspelled function, method or macro, = for ==, and/or/not, a text without quotes', () => {
    expect(rule('dayssince(profile.stats.lastPurchaseAt) > 30.0')).toMatchObject({
      message: "CEL error: found no matching overload for 'dayssince(string)'; there is no function \"dayssince\"; did you mean \"daysSince\"?",
      hint: 'there is no function "dayssince"; did you mean "daysSince"?',
      position: 0,
    });
    expect(rule('profile.traits.name.startswith("A")')).toMatchObject({ hint: 'there is no function "startswith"; did you mean "startsWith"?' });
    expect(rule('profile.preferences.interests.exist(i, i == "x")')).toMatchObject({ hint: 'there is no function "exist"; did you mean "exists"?' });
    expect(rule('zzzz(1)')).toMatchObject({ hint: 'there is no function "zzzz"' });
    // A function that exists, called with the wrong types: no hint about its name.
    expect(rule('size(1.0) > 1')?.hint).toBeUndefined();
    expect(rule('profile.traits.tier = "VIP"')).toMatchObject({ position: 20, hint: 'compare with "==" (one "=" is not an operator in CEL)' });
    expect(rule('visitsToday > 1.0 AND true')).toMatchObject({ position: 18, hint: 'write "&&" instead of "AND"' });
    expect(rule('visitsToday > 1.0 or true')).toMatchObject({ hint: 'write "||" instead of "or"' });
    expect(rule('has(profile.traits.tier) && profile.traits.tier == VIP')).toMatchObject({
      position: 51,
      hint: 'a text goes in quotes ("VIP"); the variables are profile, context, channel, placement, now, visitsToday, preferredChannel',
    });
  });

  it('a field that takes one value: the value, what was given, no "did you mean" repeating it', () => {
    expect(problemsOf(loadCatalog({ kind: 'kairos/v2' }, 'object'))).toEqual([{ path: 'kind', message: 'must be "kairos/v1", got the text "kairos/v2"' }]);
  });

  it('operands that do not go together: at the right one', () => {
    expect(rule('profile.stats.visitsToday == "x"')).toMatchObject({ message: 'CEL error: no such overload: double == string', position: 29 });
  });

  it('unknown model in aboveThreshold and profile.scores, unknown segment in hasSegment: did you mean, at the literal', () => {
    const doc = (source: string) => ({
      segments: [{ id: 'loyal', rule: 'true' }],
      models: [{ id: 'churnRisk', kind: 'logistic', intercept: 0, threshold: 0.5, features: [{ name: 'f', expression: '1.0', weight: 1 }] }],
      actions: [{ id: 'a', name: 'A', eligibility: source, content: { push } }],
    });
    const first = (source: string) => problemsOf(loadCatalog(doc(source), 'object'))[0];
    expect(first('aboveThreshold("churnrisk")')).toMatchObject({ message: 'unknown model "churnrisk"; did you mean "churnRisk"?', position: 15 });
    expect(first('profile.scores["churn_risk"] > 0.5')).toMatchObject({ hint: 'did you mean "churnRisk"?', position: 15 });
    expect(first('hasSegment("loyl")')).toMatchObject({ message: 'unknown segment "loyl"; did you mean "loyal"?', position: 11 });
    expect(first('hasSegment("zzzzzzzz")')).toEqual({ path: 'actions[0].eligibility', message: 'unknown segment "zzzzzzzz"', position: 11 });
    expect(loadCatalog(doc('profile.scores.churnRisk > 0.5'), 'object').ok).toBe(true);
  });

  it('a misspelled field anywhere: the field the schema has there', () => {
    const problems = problemsOf(
      loadCatalog({ policies: { quietHour: [] }, learning: { exploraton: 0.1 }, actions: [{ id: 'a', name: 'A', content: { push: { ...push, titel: 'x' } } }] }, 'object'),
    );
    expect(problems.map((p) => [p.path, p.hint])).toEqual([
      ['actions[0].content.push.titel', 'did you mean "title"?'],
      ['policies.quietHour', 'did you mean "quietHours"?'],
      ['learning.exploraton', 'did you mean "exploration"?'],
    ]);
  });

  it('a JSON catalog with a trailing comma: line, column, the line and what to do', () => {
    const text = '{\n  "tags": ["promo"],\n  "actions": [],\n}\n';
    expect(problemsOf(loadCatalog(text, 'json'))).toEqual([
      {
        path: '(root)',
        message: expect.stringMatching(/^not valid JSON: .*; remove the comma before "}"/),
        position: 40,
        line: 4,
        column: 1,
        excerpt: '}',
        hint: 'remove the comma before "}": JSON allows no comma after the last item',
      },
    ]);
  });

  it('a YAML bracket never closed: at the end of the last line with text', () => {
    const text = 'tags: [promo]\nactions:\n  - id: a\n    name: A\n    content:\n      web: { title: Spring\n\n';
    expect(problemsOf(loadCatalog(text, 'yaml'))[0]).toMatchObject({ line: 6, column: 27, excerpt: '      web: { title: Spring' });
  });

  it('a YAML syntax error: its line and column and the line, once', () => {
    const text = 'tags: [promo]\nactions:\n  - id: a\n    name: [A\n    content: {}\n';
    const problems = problemsOf(loadCatalog(text, 'yaml'));
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(new Set(problems.map((p) => p.line)).size).toBe(problems.length);
    expect(problems[0]).toMatchObject({ path: '(root)', message: expect.stringMatching(/^not valid YAML: /), line: expect.any(Number), column: expect.any(Number) });
    const first = problems[0] as CatalogProblem;
    expect(first.excerpt).toBe(text.split('\n')[(first.line as number) - 1]);
  });
});

describe('rules that can never be true', () => {
  it('a channel literal that is no channel, compared with channel or preferredChannel or given to engagementRate: a warning, not a refusal', () => {
    const result = loadCatalog(
      {
        segments: [{ id: 's', rule: 'preferredChannel in ["sms", "whatsap"] || engagementRate("emial") > 0.1 || channel != "push"' }],
      },
      'object',
    );
    expect(result.ok).toBe(true);
    expect(result.warnings).toEqual([
      { path: 'segments[0].rule', message: expect.stringMatching(/^preferredChannel is never "whatsap"/), position: 28 },
      { path: 'segments[0].rule', message: expect.stringMatching(/^engagementRate\("emial"\) is always 0: .*; did you mean "email"\?$/), position: 57, hint: 'did you mean "email"?' },
    ]);
  });

  it('a template reading a profile field the profile does not have: a warning at the read, with the field meant; free keys, lists and loop variables are not checked', () => {
    const result = loadCatalog(
      {
        actions: [
          {
            id: 'a',
            name: 'A',
            content: {
              web: {
                title: 'Hola {{ firstNme }}, {{ profile.stat.orders }} {{ profile.stats.ordrs }} {{ profile.stat.orders }}',
                body: '{{ profile.traits.x }} {{ profile.segments.size }} {{ profile.stats.orders }} {{ profile.scores.churn }} {{ profile["stats"]["visitsToday"] }} {% for i in profile.preferences.interests %}{{ i.name }}{% endfor %}',
              },
            },
          },
        ],
      },
      'object',
    );
    expect(result.ok).toBe(true);
    expect(result.warnings).toEqual([
      {
        path: 'actions[0].content.web.title',
        message: 'template: profile has no field "stat": it renders empty for every customer; did you mean "stats"?',
        position: 24,
        hint: 'did you mean "stats"?',
      },
      {
        path: 'actions[0].content.web.title',
        message: 'template: profile.stats has no field "ordrs": it renders empty for every customer; did you mean "orders"?',
        position: 50,
        hint: 'did you mean "orders"?',
      },
    ]);
    // The demo catalog's templates read only fields the profile has.
    expect(loadCatalog(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'), 'yaml').warnings ?? []).toEqual([]);
  });

  it('an output in an unquoted HTML attribute value: a warning at the output (a value with a space is not served); a quoted one, or a text field, warns of nothing', () => {
    const result = loadCatalog(
      {
        actions: [
          {
            id: 'a',
            name: 'A',
            content: {
              call_center: { script: '<p class="{{ tier }}" title={{ firstName }}>Hola</p><img src={{ photo }} alt="">' },
              web: { title: 'title={{ firstName }}' },
            },
          },
        ],
      },
      'object',
    );
    expect(result.ok).toBe(true);
    const message = 'template: an output in an unquoted attribute value: a value with a space (a name like "Ana María") is not served, since it would start another attribute; quote the attribute';
    expect(result.warnings).toEqual([
      { path: 'actions[0].content.call_center.script', message, position: 28 },
      { path: 'actions[0].content.call_center.script', message, position: 61 },
    ]);
  });

  it('a valid catalog has no warnings', () => {
    const result = loadCatalog({ segments: [{ id: 's', rule: 'channel == "push" && engagementRate("email") > 0.1' }] }, 'object');
    expect(result).toMatchObject({ ok: true });
    expect(result.warnings ?? []).toEqual([]);
  });
});

describe('edit distance and did you mean', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(editDistance('eligibilty', 'eligibility')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', 'abc')).toBe(0);
    expect(editDistance('abcdef', 'uvwxyz', 2)).toBe(3);
    // Two neighbours swapped: one slip.
    expect(editDistance('emial', 'email')).toBe(1);
    expect(editDistance('titel', 'title')).toBe(1);
  });

  it('suggests only what is close for the word’s length, case aside', () => {
    expect(closestName('vips', ['vip', 'loyal'])).toBe('vip');
    expect(closestName('VIP', ['vip'])).toBe('vip');
    expect(closestName('ab', ['xy'])).toBeUndefined();
    expect(closestName('churn', ['churnRisk', 'churnRiskV2', 'ltv'])).toBe('churnRisk');
    expect(closestName('ch', ['churnRisk'])).toBeUndefined();
    expect(closestName('whatsapp', ['web', 'app', 'push', 'email', 'sms', 'call_center'])).toBeUndefined();
  });
});

describe('positions in a text', () => {
  it('line, column and the line of an offset', () => {
    expect(positionIn('ab\ncd\nef', 4)).toEqual({ line: 2, column: 2, excerpt: 'cd' });
    expect(positionIn('ab', 99)).toEqual({ line: 1, column: 3, excerpt: 'ab' });
    const long = `${'x'.repeat(500)}!${'y'.repeat(500)}`;
    const at = positionIn(long, 500);
    expect(at.excerpt).toHaveLength(120);
    expect(at.excerpt).toContain('!');
  });

  it('where the values of a JSON text begin, by path', () => {
    const text = '{"a": [1, {"b": "x\\"y", "e": []}], "c": {}, "d": [[true], null]}';
    const places = jsonPlaces(text, ['a[1].b', 'a[1].e', 'c', 'd[0][0]', 'd[1]', 'zz']);
    const at = (path: string) => places(path)?.start;
    expect([at('(root)'), at('a'), at('a[1]'), at('a[1].b'), at('a[1].e'), at('c'), at('d[0][0]'), at('d[1]'), at('zz')]).toEqual([
      0,
      6,
      10,
      16,
      29,
      40,
      51,
      58,
      undefined,
    ]);
    expect(places('a[1].b')).toEqual({ start: 16, key: 11, style: 'double' });
  });

  it('a JSON error the parser gives no position for is found by its prefix', () => {
    const text = '{"a": [1,\n 2,,]}';
    let error: unknown;
    try {
      JSON.parse(text);
    } catch (e) {
      error = e;
    }
    expect(jsonSyntaxError(text, error)).toMatchObject({ position: 13, line: 2, column: 4, excerpt: ' 2,,]}' });
    // The parser's quote of the text is left out of the message, however it is cut.
    const long = `{"actions": [${'{"id": "a"}, '.repeat(20)}]}`;
    try {
      JSON.parse(long);
    } catch (e) {
      error = e;
    }
    expect(jsonSyntaxError(long, error)).toMatchObject({ message: expect.not.stringContaining('is not valid JSON'), hint: expect.stringMatching(/^remove the comma before "\]"/) });
  });

  it('a JSON error in a long text: where the parser quotes it, or no place rather than a long search', () => {
    const parseError = (text: string): unknown => {
      try {
        JSON.parse(text);
      } catch (e) {
        return e;
      }
      throw new Error('expected a syntax error');
    };
    // Quoted with text cut before it, once in the text: found without searching, however long the text.
    const unique = `[${Array.from({ length: 60_000 }, (_, i) => `"item ${i}"`).join(', ')}, x]`;
    expect(unique.length).toBeGreaterThan(MAX_PREFIX_SEARCH);
    expect(jsonSyntaxError(unique, parseError(unique))).toMatchObject({ position: unique.length - 2, line: 1 });
    // Quoted with text cut after it: from the start.
    const start = `[1, 2, x${' '.repeat(30)}]`;
    expect(jsonSyntaxError(start, parseError(start))).toMatchObject({ message: "Unexpected token 'x'", position: 7, column: 8 });
    // The quote is everywhere in a text too long to search (the text after the mistake repeats it): the parser's words, no place.
    const repeated = `[${'0, 0, 0, 1,,2, '.repeat(40_000)}`;
    expect(repeated.length).toBeGreaterThan(MAX_PREFIX_SEARCH);
    const started = performance.now();
    expect(jsonSyntaxError(repeated, parseError(repeated))).toEqual({ message: "Unexpected token ','" });
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('placements a trigger or a journey names', () => {
  const catalog = (triggerPlacement: string | undefined, actPlacement: string | undefined) => ({
    actions: [
      { id: 'hero', name: 'Hero', content: { web: { title: 'Hola', placements: ['home_hero', 'cart_banner'] } } },
      {
        id: 'tip',
        name: 'Tip',
        content: { app: { title: 'Consejo' } },
        variants: [{ id: 'b', content: { app: { title: 'Consejo B', placements: ['feed_card'] } } }],
      },
    ],
    triggers: [{ id: 'welcome', on: { event: 'Signed Up' }, decide: { channel: 'web', ...(triggerPlacement ? { placement: triggerPlacement } : {}) } }],
    journeys: [
      {
        id: 'onboarding',
        entry: { event: 'Signed Up' },
        steps: [{ id: 'wait', wait: '1d' }, { id: 'nudge', act: { channel: 'app', ...(actPlacement ? { placement: actPlacement } : {}) } }],
      },
    ],
  });

  it('a trigger or a journey act step naming a placement no content of its channel names: a warning at the placement, with the one meant', () => {
    const result = loadCatalog(catalog('home_hreo', 'home_hero'), 'object');
    expect(result.ok).toBe(true);
    expect(result.warnings).toEqual([
      {
        path: 'triggers[0].decide.placement',
        message: 'placement "home_hreo" is named by no web content (its placements: cart_banner, home_hero); only web content without placements fills it; did you mean "home_hero"?',
        hint: 'did you mean "home_hero"?',
      },
      {
        path: 'journeys[0].steps[1].act.placement',
        message: 'placement "home_hero" is named by no app content (its placements: feed_card); only app content without placements fills it',
      },
    ]);
  });

  it('placements some content names (a variant\'s too), and no placement, warn of nothing', () => {
    expect(loadCatalog(catalog('cart_banner', 'feed_card'), 'object').warnings ?? []).toEqual([]);
    expect(loadCatalog(catalog('home_hero', undefined), 'object').warnings ?? []).toEqual([]);
  });
});

describe('experiments with a holdout: as many as one transaction holds the control cells of', () => {
  /** A catalog of `n` actions experiments (two actions each), each holding `holdout` of customers out. */
  const withExperiments = (n: number, holdout: number) =>
    JSON.stringify({
      kind: 'kairos/v1',
      actions: Array.from({ length: 2 * n }, (_, i) => ({ id: `a${i}`, name: `A${i}`, content: { web: { title: `A${i}` } } })),
      experiments: Array.from({ length: n }, (_, i) => ({
        id: `exp-${i}`,
        kind: 'actions',
        holdout,
        arms: [
          { id: 'one', action: `a${2 * i}` },
          { id: 'two', action: `a${2 * i + 1}` },
        ],
      })),
    });

  it(`takes ${MAX_HOLDOUT_EXPERIMENTS}, and any number without a holdout; refuses one more, naming experiments`, () => {
    expect(loadCatalog(withExperiments(MAX_HOLDOUT_EXPERIMENTS, 0.1), 'json').ok).toBe(true);
    expect(loadCatalog(withExperiments(MAX_HOLDOUT_EXPERIMENTS + 10, 0), 'json').ok).toBe(true);
    const refused = loadCatalog(withExperiments(MAX_HOLDOUT_EXPERIMENTS + 1, 0.1), 'json');
    expect(refused.ok).toBe(false);
    expect(problemsOf(refused).map((p) => [p.path, p.message])).toEqual([
      ['experiments', expect.stringMatching(new RegExp(`^${MAX_HOLDOUT_EXPERIMENTS + 1} experiments can hold customers out .* more than ${MAX_HOLDOUT_EXPERIMENTS}`))],
    ]);
  });

  it('a live document published before the bound still compiles where functions load it (compileDocument `published`)', () => {
    const document = catalogSchema.parse(JSON.parse(withExperiments(MAX_HOLDOUT_EXPERIMENTS + 1, 0.1)));
    expect(compileDocument(document, { version: 1, published: true }).ok).toBe(true);
    expect(compileDocument(document, { version: 1 }).ok).toBe(false);
  });

  /** `live` experiments with a holdout, then `ended` ones (ended before PUBLISH), `paused` ones and `later` ones (starting after PUBLISH). */
  const PUBLISH = Date.parse('2026-12-01T10:00:00Z');
  const history = (counts: { live: number; ended?: number; paused?: number; later?: number; endingAt?: number }) => {
    const kinds = [
      ...Array.from({ length: counts.live }, () => ({})),
      ...Array.from({ length: counts.ended ?? 0 }, (_, i) => ({ validity: { from: '2025-01-01T00:00:00Z', to: new Date(PUBLISH - (i + 1) * 86_400_000).toISOString() } })),
      ...Array.from({ length: counts.paused ?? 0 }, () => ({ status: 'paused' })),
      ...Array.from({ length: counts.later ?? 0 }, () => ({ validity: { from: new Date(PUBLISH + 86_400_000).toISOString() } })),
      ...(counts.endingAt === undefined ? [] : [{ validity: { to: new Date(counts.endingAt).toISOString() } }]),
    ];
    return JSON.stringify({
      kind: 'kairos/v1',
      actions: Array.from({ length: 2 * kinds.length }, (_, i) => ({ id: `a${i}`, name: `A${i}`, content: { web: { title: `A${i}` } } })),
      experiments: kinds.map((extra, i) => ({
        id: `exp-${i}`,
        kind: 'actions',
        holdout: 0.5,
        arms: [
          { id: 'one', action: `a${2 * i}` },
          { id: 'two', action: `a${2 * i + 1}` },
        ],
        ...extra,
      })),
    });
  };

  it(`published at an instant: counts only the experiments that can still hold a customer out then — ${MAX_HOLDOUT_EXPERIMENTS} live and any number ended or paused are taken`, () => {
    const many = history({ live: MAX_HOLDOUT_EXPERIMENTS, ended: 40, paused: 5 });
    expect(loadCatalog(many, 'json', { at: PUBLISH }).ok).toBe(true);
    // One ending exactly at the publish instant assigns nothing from then on (validity.to is excluded).
    expect(loadCatalog(history({ live: MAX_HOLDOUT_EXPERIMENTS, ended: 3, endingAt: PUBLISH }), 'json', { at: PUBLISH }).ok).toBe(true);
    // One more that can still assign — running now, one ending later, or one starting later — is refused.
    for (const more of [{ live: MAX_HOLDOUT_EXPERIMENTS + 1 }, { live: MAX_HOLDOUT_EXPERIMENTS, endingAt: PUBLISH + 1 }, { live: MAX_HOLDOUT_EXPERIMENTS, later: 1 }]) {
      const refused = loadCatalog(history({ ...more, ended: 40 }), 'json', { at: PUBLISH });
      expect({ more, ok: refused.ok }).toEqual({ more, ok: false });
      expect(problemsOf(refused).map((p) => [p.path, p.message])).toEqual([
        ['experiments', expect.stringMatching(new RegExp(`^${MAX_HOLDOUT_EXPERIMENTS + 1} experiments can hold customers out .* at 2026-12-01T10:00:00.000Z\\), more than`))],
      ]);
    }
    // With no instant (a document checked for no publish), every experiment with a holdout counts.
    expect(loadCatalog(many, 'json').ok).toBe(false);
  });

  it('property: a decision made at or after the publish instant is held out only of experiments the bound counted (the runtime agrees with publish)', () => {
    const experiment = fc.record({
      holdout: fc.constantFrom(0, 0.3, 0.9),
      status: fc.constantFrom('running', 'paused'),
      from: fc.option(fc.integer({ min: -30, max: 30 }), { nil: undefined }),
      days: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(experiment, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 40 * 86_400_000 }),
        fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 10 }),
        (list, after, customers) => {
          const day = (n: number) => new Date(PUBLISH + n * 86_400_000).toISOString();
          const document = JSON.stringify({
            kind: 'kairos/v1',
            actions: Array.from({ length: 2 * list.length }, (_, i) => ({ id: `a${i}`, name: `A${i}`, content: { web: { title: `A${i}` } } })),
            experiments: list.map((e, i) => ({
              id: `exp-${i}`,
              kind: 'actions',
              holdout: e.holdout,
              status: e.status,
              arms: [
                { id: 'one', action: `a${2 * i}` },
                { id: 'two', action: `a${2 * i + 1}` },
              ],
              ...(e.from !== undefined || e.days !== undefined
                ? { validity: { ...(e.from !== undefined ? { from: day(e.from) } : {}), ...(e.days !== undefined ? { to: day((e.from ?? -31) + e.days + 1) } : {}) } }
                : {}),
            })),
          });
          const loaded = loadCatalog(document, 'json', { at: PUBLISH });
          expect(loaded.ok).toBe(true);
          if (!loaded.ok) return;
          const counted = new Set(liveHoldoutExperiments(loaded.catalog.experiments, PUBLISH).map((e) => e.id));
          for (const customer of customers) {
            const assignments = new Assignments(customer, PUBLISH + after);
            for (const e of loaded.catalog.experiments) {
              const arm = assignments.armOf(e);
              // An experiment the bound did not count never assigns an arm then, the control group least of all.
              expect(arm === undefined || counted.has(e.id) || e.holdout === 0, `${e.id} assigned ${arm}`).toBe(true);
              expect(arm !== CONTROL_ARM || counted.has(e.id)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is what the rest of an event\'s transaction leaves: 100 items less the profile, marker, tombstones, served cell, sends and journeys', () => {
    expect(MAX_HOLDOUT_EXPERIMENTS).toBe(MAX_TRANSACTION_ITEMS - 5 - MAX_REACTIONS_PER_EVENT - (MAX_JOURNEY_ITEMS_PER_EVENT + 1));
    expect(MAX_HOLDOUT_EXPERIMENTS).toBeGreaterThan(0);
  });
});
