import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { PROJECT_ROOT } from '../../helpers/cli.js'

const AWS_SDK = /node_modules\/@aws-sdk\//

/** Runs `code` (ESM, TypeScript imports allowed) in a fresh node and returns every module it loaded. */
async function loaded(code: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-trace-aws-'))
  const file = join(dir, 'modules.txt')
  try {
    await execa(
      'node',
      [
        '--require',
        join(PROJECT_ROOT, 'test/helpers/trace-modules.cjs'),
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        code,
      ],
      { cwd: PROJECT_ROOT, env: { NHI_TRACE_FILE: file, AWS_MAX_ATTEMPTS: '1' }, stdin: 'ignore' },
    )
    return readFileSync(file, 'utf8').split('\n').filter(Boolean)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const make = `
  const { createAwsSecretStore } = await import('./providers/secret-stores/aws/index.ts')
  const store = createAwsSecretStore('aws', { aws: { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: 'http://127.0.0.1:9' } })
`

describe('AWS SDK loading', () => {
  it('importing the AWS providers and building a store loads no AWS SDK', async () => {
    const modules = await loaded(make)
    expect(modules.some((m) => m.includes('providers/secret-stores/aws/index.ts'))).toBe(true)
    expect(modules.filter((m) => AWS_SDK.test(m))).toEqual([])
  })

  it('the first call loads the Secrets Manager client, and only that one', async () => {
    const modules = await loaded(
      `${make}\n await store.describe({ provider: 'aws', mechanism: 'secrets-manager', secret: 'x' }).catch(() => {})`,
    )
    expect(modules.some((m) => /@aws-sdk\/client-secrets-manager\//.test(m))).toBe(true)
    expect(modules.some((m) => /@aws-sdk\/client-(iam|sts)\//.test(m))).toBe(false)
  })
})
