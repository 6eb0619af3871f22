import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMoto, type MotoServer } from './moto.js'

// Plain HTTP against moto's JSON protocol, so the harness is checked without our AWS code.
async function sm(
  server: MotoServer,
  action: string,
  body: object,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(server.endpoint, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': `secretsmanager.${action}`,
      Authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(body),
  })
  return { status: r.status, json: (await r.json()) as Record<string, unknown> }
}

describe('moto harness', () => {
  let server: MotoServer
  beforeAll(async () => {
    server = await startMoto()
  })
  afterAll(async () => server?.stop())

  it('starts the real moto server on a loopback port and answers Secrets Manager calls', async () => {
    expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const created = await sm(server, 'CreateSecret', { Name: 'harness/one', SecretString: 'x' })
    expect(created.status).toBe(200)
    expect(created.json.ARN).toMatch(/^arn:aws:secretsmanager:us-east-1:\d{12}:secret:harness\/one-/)
  })

  it('forgets everything on reset', async () => {
    await sm(server, 'CreateSecret', { Name: 'harness/two', SecretString: 'x' })
    expect((await sm(server, 'DescribeSecret', { SecretId: 'harness/two' })).status).toBe(200)
    await server.reset()
    const gone = await sm(server, 'DescribeSecret', { SecretId: 'harness/two' })
    expect(gone.status).toBeGreaterThanOrEqual(400)
    expect(gone.json.__type).toBe('ResourceNotFoundException')
  })

  it('stops the server so the port no longer answers', async () => {
    const own = await startMoto()
    await own.stop()
    await expect(fetch(`${own.endpoint}/moto-api/data.json`)).rejects.toThrow()
  })
})
