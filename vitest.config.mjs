import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.mjs'],
    pool: 'forks',
    testTimeout: 30000,
    hookTimeout: 30000,
  },
})
