import { posix, relative } from 'node:path';

/**
 * One import alias per folder (package.json "imports"): an import that leaves
 * its folder names the folder's alias (`#domain/profile/view.ts`, never
 * `../../shared/domain/profile/view.ts` nor `#shared/domain/profile/view.ts`);
 * an import inside a folder stays relative.
 */
const ALIAS_FOLDERS = [
  ['shared/domain', '#domain'], ['shared/store', '#store'], ['shared/http', '#http'], ['shared', '#shared'],
  ['functions', '#functions'], ['local', '#local'], ['infra', '#infra'], ['test', '#test'], ['scripts', '#scripts'], ['bench', '#bench'],
];
const folderOf = (path) => ALIAS_FOLDERS.find(([dir]) => path === dir || path.startsWith(`${dir}/`));
const ALIAS_TARGETS = Object.fromEntries(ALIAS_FOLDERS.map(([dir, alias]) => [alias, dir]));

const oneAliasPerFolder = {
  meta: { type: 'problem', schema: [], messages: { use: 'Import {{spec}} as {{expected}}: one alias per folder, relative only inside a folder.' } },
  create(context) {
    const file = relative(context.cwd, context.filename).split('\\').join('/');
    const from = folderOf(file);
    if (!from) return {};
    const check = (node) => {
      const spec = node?.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
      if (!spec || !(spec.startsWith('.') || spec.startsWith('#'))) return;
      let target;
      if (spec.startsWith('.')) target = posix.normalize(posix.join(posix.dirname(file), spec));
      else {
        const alias = spec.slice(0, spec.indexOf('/'));
        if (!ALIAS_TARGETS[alias]) return;
        target = `${ALIAS_TARGETS[alias]}/${spec.slice(alias.length + 1)}`;
      }
      const to = folderOf(target);
      if (!to) return;
      let expected;
      if (to[0] === from[0]) {
        expected = posix.relative(posix.dirname(file), target);
        if (!expected.startsWith('.')) expected = `./${expected}`;
      } else expected = `${to[1]}/${target.slice(to[0].length + 1)}`;
      if (expected !== spec) context.report({ node, messageId: 'use', data: { spec, expected } });
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => n.source && check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
    };
  },
};

export const kairosPlugin = { rules: { 'one-alias-per-folder': oneAliasPerFolder } };
