/**
 * No import circle (docs/design.md, "Layers"): dependency-cruiser follows
 * every import of the repository's TypeScript, type-only imports included
 * (`tsPreCompilationDeps`), through the folder aliases of package.json
 * "imports" (#domain/…, #store/…), and refuses any module that reaches
 * itself. Run by `npm run lint`. The layers themselves are ESLint's
 * (eslint.config.js, "layers").
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module that imports itself through others: move what both sides need into a module both import.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
