import js from '@eslint/js';
import vitest from '@vitest/eslint-plugin';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { kairosPlugin } from './eslint-rules.js';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.kairos/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    plugins: { kairos: kairosPlugin },
    rules: {
      // One import alias per folder (package.json "imports"), relative only inside a folder.
      'kairos/one-alias-per-folder': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['warn', 'error'] }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportDeclaration[source.value=/^zod/] > :matches(ImportSpecifier[imported.name='z'], ImportDefaultSpecifier)",
          message: "Use `import * as z from 'zod'`: the `z` object pulls every locale into the bundle (~450 KB).",
        },
      ],
    },
  },
  // Layers point down (docs/design.md): functions → http → store → domain.
  {
    files: ['shared/domain/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(#(shared|store|http|lambda|local|infra|scripts|test)/|(\\.\\./)+(store|http|lambda)/|(\\.\\./)+(config|functions)\\.ts$|(\\.\\./)+(functions|local|infra|scripts|test)/|@aws-sdk/|@middy/|@aws-lambda-powertools/|aws-lambda$)',
              message: 'shared/domain is pure: it imports only the domain (and libraries without I/O), never the store, HTTP, configuration or AWS.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/store/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(#(http|local|infra|scripts|test)/|(\\.\\./)+(http|local|infra|scripts|test|functions)/)',
              message: 'shared/store imports the domain and configuration, never the HTTP edge, the functions or the local stack.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/http/**', 'shared/bus/**', 'shared/*.ts', 'shared/lambda/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(#(local|infra|scripts|test)/|(\\.\\./)+(local|infra|scripts|test|functions)/)',
              message: 'shared/ never imports the functions, the local stack, infra, scripts or tests.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['functions/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./(admin|decide|dispatcher|health|ingest|profile)/|#(local|infra|scripts|test)/|(\\.\\./)+(local|infra|scripts|test)/)',
              message: 'A function imports shared/ and its own folder, never another function, the local stack or infra.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['local/**', 'bench/**', 'infra/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['test/**'],
    plugins: { vitest },
    rules: {
      ...vitest.configs.recommended.rules,
      // A focused or skipped test silences the suite: forbidden.
      'vitest/no-focused-tests': 'error',
      'vitest/no-disabled-tests': 'error',
      'vitest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expect*', 'assert*', 'fc.assert'] }],
    },
  },
);
