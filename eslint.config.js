// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      'openapi/',
      // The typed GraphQL client's generated types and build (test/e2e/graphql-client.test.ts makes them).
      'test/graphql-client/generated/',
      'test/graphql-client/out/',
      // The generated REST client's types, when made by hand (test/client/tsconfig.json says how).
      'test/client/generated/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/it return promises the runner itself tracks.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // CommonJS config files (dependency-cruiser reads them with require).
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['scripts/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Tests assert order, state and outcome, never a duration (timings go to the bench
    // scripts), and never sleep to synchronise: they wait for a condition with a deadline
    // through the one helper, test/support/wait.ts. A timer that is not synchronisation
    // (a fake peer's late reply, a watchdog on a child) is allowed line by line, with an
    // eslint-disable comment that says why; `npm run lint` counts them.
    files: ['test/**/*.ts'],
    ignores: ['test/support/wait.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.name=/^set(Timeout|Interval|Immediate)$/]',
          message:
            'A fixed sleep or timer in a test: wait for a condition with waitFor (test/support/wait.ts), or say in an eslint-disable comment why this timer is not synchronisation.',
        },
        {
          selector: 'ImportDeclaration[source.value=/^(node:)?timers(\\/promises)?$/]',
          message: 'Timers in a test: wait for a condition with waitFor (test/support/wait.ts).',
        },
        {
          // `now() - started` inside an assertion, or a duration measured before it.
          selector:
            "CallExpression[callee.object.name='assert'] :matches(BinaryExpression[operator='-'][left.type='CallExpression'][left.callee.property.name='now'], Identifier[name=/^(elapsed|elapsedMs|tookMs|durationMs|detectedMs|stopMs)$/], MemberExpression[property.name=/^(ms|elapsed|elapsedMs|durationMs)$/])",
          message:
            'A timed assertion: assert order, state and outcome, never a duration (timings belong in the bench scripts).',
        },
        {
          // A hand-made deadline (`assert.ok(Date.now() < deadline)` in a polling loop).
          selector:
            "CallExpression[callee.object.name='assert'] BinaryExpression[operator=/^[<>]=?$/] > CallExpression[callee.property.name='now']",
          message: 'A hand-made polling deadline: wait with waitFor (test/support/wait.ts).',
        },
      ],
    },
  },
);
