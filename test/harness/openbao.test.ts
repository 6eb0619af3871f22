import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startOpenBao, type OpenBaoServer } from './openbao.js'

describe('OpenBao harness', () => {
  let server: OpenBaoServer
  beforeAll(async () => {
    server = await startOpenBao()
  })
  afterAll(async () => server?.stop())

  it('starts a real dev server that answers with its version and accepts the root token', async () => {
    const health = (await (await fetch(`${server.addr}/v1/sys/health`)).json()) as { version: string }
    expect(health).toMatchObject({ initialized: true, sealed: false })
    expect(String(health.version)).toMatch(/^2\./)
    const me = await fetch(`${server.addr}/v1/auth/token/lookup-self`, {
      headers: { 'X-Vault-Token': server.rootToken },
    })
    expect(me.status).toBe(200)
    const denied = await fetch(`${server.addr}/v1/auth/token/lookup-self`, {
      headers: { 'X-Vault-Token': 'wrong' },
    })
    expect(denied.status).toBe(403)
  })

  it('drives the real bao CLI against the server', async () => {
    const r = await server.bao(['secrets', 'list', '-format=json'])
    expect(r.code).toBe(0)
    expect(Object.keys(JSON.parse(r.stdout))).toContain('secret/')
  })
})
