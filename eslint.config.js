// Lint rules: typescript-eslint's recommended set, plus the layering rule that keeps
// database access below the HTTP layer (src/http never imports pg).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.strata/**', 'fixtures/**/*.mjs', 'coverage/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The console's browser modules (src/web/): plain ES modules run by the browser.
    files: ['src/web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(['window', 'document', 'navigator', 'location', 'history', 'sessionStorage', 'fetch', 'Headers',
        'URL', 'URLSearchParams', 'XMLHttpRequest', 'Event', 'Node', 'CSS', 'ResizeObserver', 'crypto', 'devicePixelRatio',
        'setTimeout', 'clearTimeout', 'performance', 'Blob', 'console'].map((g) => [g, 'readonly'])),
    },
  },
  {
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'pg', message: 'src/http must not touch the database directly; go through a module below it.' }] }],
    },
  },
);
