/**
 * Catalog validation: the shape, every refusal kind with its path (and its
 * position inside CEL and Liquid), and the compiled result of a valid one.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { loadCatalog, windowToMs } from '#domain/catalog/load.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import type { CatalogProblem, LoadResult } from '#domain/catalog/compiled.ts';

const action = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: id,
  content: { web: { title: 'Hello' } },
  ...extra,
});

const minimal = (extra: Partial<Record<keyof CatalogInput, unknown>> = {}): Record<string, unknown> => ({
  tags: ['promo', 'service'],
  segments: [{ id: 'vip', rule: 'has(profile.traits.tier) && profile.traits.tier == "VIP"' }],
  personas: [{ id: 'p1', name: 'P1', rule: 'true' }],
  actions: [action('a1', { tags: ['promo'] })],
  ...extra,
});

function problemsOf(result: LoadResult): readonly CatalogProblem[] {
  if (result.ok) throw new Error('expected the catalog to be refused');
  return result.problems;
}

function refused(doc: unknown, format: 'object' | 'json' | 'yaml' = 'object'): readonly CatalogProblem[] {
  return problemsOf(loadCatalog(doc, format));
}

describe('a valid catalog', () => {
  it('compiles with defaults applied and indexes built', () => {
    const result = loadCatalog(minimal(), 'object');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { catalog } = result;
    expect(catalog.version).toBe(0);
    expect(catalog.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(catalog.policies.consentRequired).toEqual(new Set(['email', 'sms', 'push']));
    expect(catalog.learning).toMatchObject({ enabled: true, exploration: 0.1, prior: { alpha: 1, beta: 1 } });
    expect(catalog.actionsByChannel.web.map((a) => a.id)).toEqual(['a1']);
    expect(catalog.actionsByChannel.email).toEqual([]);
    const a1 = catalog.actionsById.get('a1');
    expect(a1).toMatchObject({ value: 1, priority: 0, weight: 1, validFrom: -Infinity, validTo: Infinity });
    expect(a1?.eligibility).toBeUndefined();
  });

  it('reads YAML and JSON text alike', () => {
    const json = loadCatalog(JSON.stringify(minimal()), 'json');
    const yaml = loadCatalog(
      [
        'tags: [promo, service]',
        'segments:',
        '  - id: vip',
        "    rule: 'has(profile.traits.tier) && profile.traits.tier == \"VIP\"'",
        'personas: [{ id: p1, name: P1, rule: "true" }]',
        'actions:',
        '  - id: a1',
        '    name: a1',
        '    tags: [promo]',
        '    content: { web: { title: Hello } }',
      ].join('\n'),
      'yaml',
    );
    expect(json.ok && yaml.ok && yaml.catalog.hash === json.catalog.hash).toBe(true);
  });

  it('turns caps, windows and validity into milliseconds', () => {
    const result = loadCatalog(
      minimal({
        actions: [
          action('a1', {
            caps: ['1/day', { max: 3, per: '7d' }, '2/12h'],
            validity: { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00+01:00' },
          }),
        ],
      }),
      'object',
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const a1 = result.catalog.actionsById.get('a1');
    expect(a1?.caps.map((c) => [c.max, c.windowMs])).toEqual([
      [1, 86_400_000],
      [3, 7 * 86_400_000],
      [2, 12 * 3_600_000],
    ]);
    expect(a1?.validFrom).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(a1?.validTo).toBe(Date.parse('2026-01-31T23:00:00Z'));
    expect(windowToMs('month')).toBe(30 * 86_400_000);
    expect(windowToMs('30m')).toBe(30 * 60_000);
  });

  it('orders segments so hasSegment dependencies come first', () => {
    const result = loadCatalog(
      minimal({
        segments: [
          { id: 'lapsed-vip', rule: 'hasSegment("vip") && daysSince(profile.stats.lastPurchaseAt) > 30.0' },
          { id: 'vip', rule: 'true' },
        ],
      }),
      'object',
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.catalog.segments.map((s) => s.id)).toEqual(['vip', 'lapsed-vip']);
  });
});

describe('refusals, each with its path', () => {
  it('a CEL syntax error, with its position', () => {
    const problems = refused(minimal({ actions: [action('a1', { eligibility: 'profile.stats.orders > ' })] }));
    expect(problems).toEqual([{ path: 'actions[0].eligibility', message: expect.stringMatching(/^CEL error: /), position: 23 }]);
  });

  it('a CEL type error against the profile shape, with its position', () => {
    const typo = refused(minimal({ actions: [action('a1', { eligibility: 'profile.stat.orders > 1.0' })] }));
    expect(typo).toEqual([{ path: 'actions[0].eligibility', message: 'CEL error: No such key: stat', position: 8 }]);
    const mismatch = refused(minimal({ segments: [{ id: 'vip', rule: 'profile.stats.orders == "many"' }] }));
    expect(mismatch[0]).toMatchObject({ path: 'segments[0].rule', message: expect.stringContaining('no such overload') });
    // At the operand that does not go with the other: "many".
    expect(mismatch[0]?.position).toBe(24);
  });

  it('a condition that is not a bool, an unknown variable or helper', () => {
    const problems = refused(
      minimal({
        segments: [
          { id: 'a', rule: 'profile.stats.orders' },
          { id: 'b', rule: 'customer.orders > 1' },
          { id: 'c', rule: 'nope(1)' },
          { id: 'd', rule: 'eventCount("Order Completed", "2d") > 0.0' },
        ],
      }),
    );
    expect(problems.map((p) => p.path)).toEqual(['segments[0].rule', 'segments[1].rule', 'segments[2].rule', 'segments[3].rule']);
    expect(problems[0]?.message).toContain('must be a condition (bool)');
    expect(problems[1]?.message).toContain('Unknown variable: customer');
    expect(problems[3]).toMatchObject({ message: expect.stringContaining('window must be one of'), position: 30 });
  });

  it('unknown segment, persona, action, tag and model references', () => {
    const problems = refused(
      minimal({
        segments: [
          { id: 'vip', rule: 'hasSegment("ghost")' },
          { id: 'risk', rule: 'aboveThreshold("nomodel")' },
        ],
        actions: [
          action('a1', {
            tags: ['promo', 'vipx'],
            targeting: { segments: ['ghost'], excludeSegments: ['vip'], personas: ['nobody'] },
            propensityModel: 'nomodel',
          }),
        ],
        policies: { suppressions: [{ id: 's1', tags: ['nope'], when: 'true' }] },
        arbitration: { weights: { tags: { unknown: 2 }, actions: { ghost: 2 } } },
        experiments: [{ id: 'e1', kind: 'actions', arms: [{ id: 'x', action: 'a1' }, { id: 'y', action: 'ghost' }] }],
      }),
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['segments[0].rule', 'unknown segment "ghost"'],
      ['segments[1].rule', 'unknown model "nomodel"'],
      ['actions[0].tags[1]', 'unknown tag "vipx" (declare it under tags)'],
      ['actions[0].targeting.segments[0]', 'unknown segment "ghost"'],
      ['actions[0].targeting.personas[0]', 'unknown persona "nobody"'],
      ['actions[0].propensityModel', 'unknown model "nomodel"'],
      ['policies.suppressions[0].tags[0]', 'unknown tag "nope" (declare it under tags)'],
      ['arbitration.weights.tags.unknown', 'unknown tag "unknown"'],
      ['arbitration.weights.actions.ghost', 'unknown action "ghost"'],
      ['experiments[0].arms[1].action', 'unknown action "ghost"'],
    ]);
  });

  it('duplicate ids', () => {
    const problems = refused(
      minimal({
        tags: ['promo', 'promo'],
        segments: [
          { id: 'vip', rule: 'true' },
          { id: 'vip', rule: 'false' },
        ],
        actions: [action('a1'), action('a2'), action('a1')],
      }),
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['tags[1].id', 'duplicate tag id "promo" (first at tags[0])'],
      ['segments[1].id', 'duplicate segment id "vip" (first at segments[0])'],
      ['actions[2].id', 'duplicate action id "a1" (first at actions[0])'],
    ]);
  });

  it('malformed caps and windows, unknown channels, invalid time windows', () => {
    const problems = refused(
      minimal({
        actions: [
          action('a1', {
            caps: ['0/day', '3/fortnight', { max: 2, per: '7x' }, 'often'],
            validity: { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' },
            content: { fax: { title: 'x' } },
          }),
        ],
        policies: {
          channelCaps: [{ channel: 'pigeon', max: 1, per: '1d' }],
          quietHours: [
            { channels: ['sms'], from: '25:00', to: '09:00' },
            { channels: ['sms'], from: '21:00', to: '21:00' },
          ],
        },
      }),
    );
    const paths = problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'actions[0].caps[0]',
        'actions[0].caps[1]',
        'actions[0].caps[2].per',
        'actions[0].caps[3]',
        'actions[0].validity.to',
        'actions[0].content.fax',
        'policies.channelCaps[0].channel',
        'policies.quietHours[0].from',
        'policies.quietHours[1].to',
      ]),
    );
    expect(problems.find((p) => p.path === 'actions[0].content.fax')?.message).toBe('unknown field "fax"');
    expect(problems.find((p) => p.path === 'actions[0].validity.to')?.message).toBe('"from" must be before "to"');
  });

  it('a Liquid template error, with its position', () => {
    const problems = refused(
      minimal({ actions: [action('a1', { content: { email: { templateId: '1', subject: 'Hola {{ firstName | shout }}' } } })] }),
    );
    expect(problems).toEqual([
      // At the filter's name, not at the start of its output.
      { path: 'actions[0].content.email.subject', message: expect.stringContaining('undefined filter: shout'), position: 20 },
    ]);
  });

  it('exclusive groups, cycles, experiments and models that make no sense', () => {
    const problems = refused(
      minimal({
        segments: [
          { id: 'a', rule: 'hasSegment("b")' },
          { id: 'b', rule: 'hasSegment("a")' },
          { id: 'c', rule: 'true' },
        ],
        exclusiveGroups: [
          { id: 'g1', segments: ['c', 'ghost'] },
          { id: 'g2', segments: ['c', 'a'] },
        ],
        models: [
          {
            id: 'm',
            kind: 'logistic',
            intercept: 0,
            features: [{ name: 'f', expression: 'hasSegment("c")', weight: 1 }],
          },
        ],
        actions: [action('a1', { variants: [{ id: 'v1', content: { push: { title: 't', body: 'b', deepLink: 'x://' } } }] })],
        experiments: [{ id: 'e', kind: 'variants', action: 'a1', arms: [{ id: 'x', variant: 'v1' }, { id: 'y', variant: 'v9' }] }],
      }),
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual(
      expect.arrayContaining([
        ['exclusiveGroups[0].segments[1]', 'unknown segment "ghost"'],
        ['exclusiveGroups[1].segments[0]', 'segment "c" is already in exclusive group "g1"'],
        ['models[0].features[0].expression', expect.stringContaining('models are evaluated before segments')],
        ['segments[0].rule', 'segments depend on each other in a cycle: a → b → a'],
        ['actions[0].variants[0].content.push', 'the action has no push content to vary'],
        ['experiments[0].arms[1].variant', 'unknown variant "v9" of action "a1"'],
      ]),
    );
  });

  it('unknown fields, wrong types and a non-object document', () => {
    expect(refused(minimal({ colour: 'blue' } as never))).toEqual([{ path: 'colour', message: 'unknown field "colour"' }]);
    expect(refused(minimal({ actions: [{ ...action('a1'), value: 'lots' }] }))[0]?.path).toBe('actions[0].value');
    expect(refused([1, 2], 'object')).toEqual([{ path: '(root)', message: 'the catalog must be an object (a mapping)' }]);
    expect(refused('"just a string"', 'json')[0]?.message).toContain('must be an object');
  });

  it('malformed JSON and YAML', () => {
    expect(refused('{"actions": [', 'json')[0]?.message).toMatch(/^not valid JSON/);
    const yaml = refused('actions:\n  - id: a\n   name: b\n  bad: [', 'yaml');
    expect(yaml[0]).toMatchObject({ path: '(root)', message: expect.stringMatching(/^not valid YAML/) });
    expect(yaml[0]?.position).toEqual(expect.any(Number));
    expect(refused('a: 1\na: 2', 'yaml')[0]?.message).toMatch(/^not valid YAML/);
  });

  it('a YAML key that is not text (a list, a mapping, an alias of one) is refused at the key, and the YAML library prints nothing', () => {
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const text = 'actions:\n  - id: a1\n    name: A\n    content: { web: { title: Hello } }\n    ? [a, b]\n    : 1\n';
      expect(refused(text, 'yaml')).toEqual([
        { path: '(root)', message: 'not valid YAML: a key must be text, not a list', position: text.indexOf('[a, b]'), line: 5, column: 7, excerpt: '    ? [a, b]' },
      ]);
      const mapping = 'tags: [promo]\n? {a: 1}\n: x\n';
      expect(refused(mapping, 'yaml')).toEqual([
        { path: '(root)', message: 'not valid YAML: a key must be text, not a mapping', position: 16, line: 2, column: 3, excerpt: '? {a: 1}' },
      ]);
      const alias = 'tags: &t [promo]\n*t : x\n';
      expect(refused(alias, 'yaml')).toMatchObject([{ path: '(root)', message: 'not valid YAML: a key must be text, not a list', line: 2, column: 1 }]);
      expect(warned).not.toHaveBeenCalled();
    } finally {
      warned.mockRestore();
    }
  });

  it('an alias key stands for the last node anchored with its name before it, as the YAML library resolves it', () => {
    // Re-anchored: the key *k is the scalar after the list, so it is text (only the duplicate is refused).
    expect(refused('x: &k [1]\ny: &k a\nz: {*k : 1, a: 2}\n', 'yaml').map((p) => p.message)).toEqual(['not valid YAML: duplicate key "a"']);
    // The other way round: the list is the last anchored, so the key is a list.
    expect(refused('x: &k a\ny: &k [1]\nz: {*k : 1}\n', 'yaml').map((p) => p.message)).toEqual(['not valid YAML: a key must be text, not a list']);
  });

  it('a YAML text of thousands of alias keys is read in one pass over the document, not one per alias (validate and publish answer)', { timeout: 20_000 }, () => {
    // Resolving each alias key on its own walked the whole document again: 127 KB of these took two minutes.
    const text = `x: &k a\n${Array.from({ length: 5_000 }, (_, i) => `m${i}: {*k : 1}`).join('\n')}\n`;
    expect(text.length).toBeGreaterThan(70_000);
    expect(refused(text, 'yaml').every((p) => !/key must be text|duplicate key/.test(p.message))).toBe(true);
  });

  it('a JSON key given twice is refused where it is given again, as in YAML (JSON.parse would keep the last silently)', () => {
    const text = '{\n  "actions": [{"id": "a1", "name": "A", "content": {"web": {"title": "Hello"}}}],\n  "actions": []\n}';
    expect(refused(text, 'json')).toEqual([
      { path: '(root)', message: 'not valid JSON: duplicate key "actions"', position: text.lastIndexOf('"actions"'), line: 3, column: 3, excerpt: '  "actions": []' },
    ]);
    const nested = JSON.stringify(minimal()).replace('"name":"a1"', '"name":"a1","name":"a2"');
    expect(refused(nested, 'json').map((p) => p.message)).toEqual(['not valid JSON: duplicate key "name"']);
  });

  it('JSON without a repeated key is never taken for one with a repeated key', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(0, 2), (value, indent) => {
        const result = loadCatalog(JSON.stringify(value, null, indent), 'json');
        const problems = result.ok ? [] : result.problems;
        expect(problems.filter((p) => p.message.includes('duplicate key'))).toEqual([]);
      }),
      { numRuns: 300 },
    );
    expect(loadCatalog(JSON.stringify(minimal({ description: 'a \\/ "quoted" \u00e9 \t tab' })), 'json').ok).toBe(true);
  });

  it('reports every problem at once, not only the first', () => {
    const problems = refused(
      minimal({
        segments: [{ id: 'vip', rule: '1 +' }],
        actions: [action('a1', { tags: ['nope'], eligibility: 'x >' }), action('a1')],
      }),
    );
    expect(new Set(problems.map((p) => p.path))).toEqual(
      new Set(['actions[1].id', 'segments[0].rule', 'actions[0].tags[0]', 'actions[0].eligibility']),
    );
    expect(problems).toHaveLength(4);
  });
});

describe('hostile input', () => {
  it('never throws and always answers with problems or a catalog', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), fc.constantFrom('json' as const, 'yaml' as const), (text, format) => {
        const result = loadCatalog(text, format);
        expect(result.ok || result.problems.length > 0).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const result = loadCatalog(value, 'object');
        // Only an empty catalog ({} or with empty lists) can be valid by chance.
        expect(result.ok ? result.catalog.actions.length === 0 : result.problems.length > 0).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a YAML alias bomb and deep nesting without hanging', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)},*${String.fromCharCode(96 + i)}]`);
    expect(loadCatalog(bomb.join('\n'), 'yaml').ok).toBe(false);
    expect(loadCatalog('['.repeat(50_000), 'yaml').ok).toBe(false);
    expect(loadCatalog(`${'['.repeat(50_000)}${']'.repeat(50_000)}`, 'json').ok).toBe(false);
  });

  it('refuses a CEL expression with an oversized AST and an unsafe fallback key', () => {
    const huge = Array.from({ length: 1_500 }, (_, i) => `profile.stats.orders > ${i}.0`).join(' || ');
    expect(refused(minimal({ segments: [{ id: 'vip', rule: huge }] }))[0]?.path).toBe('segments[0].rule');
    expect(refused(minimal({ actions: [action('a1', { fallbacks: { 'profile.__proto__.x': 'y' } })] }))[0]?.path).toBe('actions[0].fallbacks');
  });
});

describe('the stored normalised document', () => {
  it('compiles, after a JSON round trip and without the validator, to the catalog the validator gave', async () => {
    const { compileDocument } = await import('#domain/catalog/compile.ts');
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8');
    const loaded = loadCatalog(text, 'yaml', { version: 3 });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
    const compiled = compileDocument(JSON.parse(JSON.stringify(loaded.source)), { version: 3 });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems.slice(0, 3)));
    expect(compiled.catalog.hash).toBe(loaded.catalog.hash);
    expect(compiled.catalog.actions.map((a) => a.id)).toEqual(loaded.catalog.actions.map((a) => a.id));
    expect(compiled.source).toEqual(loaded.source);
    // Its templates are parsed on first render (no Liquid at compile time) and render the same text.
    const { renderContent } = await import('#domain/catalog/template.ts');
    const scope = { firstName: 'Luis', traits: { firstName: 'Luis' }, profile: { traits: { firstName: 'Luis' } }, context: { city: 'Madrid' }, channel: 'web', placement: '' };
    let templated = 0;
    loaded.catalog.actions.forEach((action, i) => {
      const other = compiled.catalog.actions[i]!;
      for (const channel of action.channels) {
        const eager = action.content[channel]!;
        const lazy = other.content[channel]!;
        templated += Object.values(lazy.fields).filter((t) => t.literal === undefined && t.parsed === undefined).length;
        expect(renderContent(lazy, scope, other.fallbacks)).toEqual(renderContent(eager, scope, action.fallbacks));
      }
    });
    expect(templated).toBeGreaterThan(0);
  });

  it('a deferred template that does not parse fails its render, not the compilation', async () => {
    const { compileDocument } = await import('#domain/catalog/compile.ts');
    const { renderContent } = await import('#domain/catalog/template.ts');
    const loaded = loadCatalog(minimal({ actions: [action('a1')] }), 'object');
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const doc = structuredClone(loaded.source);
    (doc.actions[0]!.content as { web: { title: string } }).web.title = 'Hola {{ firstName ';
    const compiled = compileDocument(doc);
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
    expect(() => renderContent(compiled.catalog.actions[0]!.content.web!, {})).toThrow();
    expect(loadCatalog(doc, 'object').ok).toBe(false);
  });

  it("decide's empty catalog is the schema's normalised empty document", async () => {
    const { catalogSchema } = await import('#domain/catalog/schema.ts');
    const { emptyCatalog } = await import('#domain/decide/empty-catalog.ts');
    const { defaultCatalogDocument } = await import('#domain/catalog/default-document.ts');
    expect(defaultCatalogDocument()).toEqual(catalogSchema.parse({}));
    expect(emptyCatalog().document).toEqual(catalogSchema.parse({}));
    expect(emptyCatalog().actions).toEqual([]);
  });
});
