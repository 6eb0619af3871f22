// One competing process for the local store race test: stages a version for its own request id.
import { LocalSecretStore } from '../../providers/secret-stores/local.js'
import { Secret } from '../../src/secret.js'

const [dir, keyB64, requestId, value] = process.argv.slice(2) as [string, string, string, string]
const store = new LocalSecretStore({ name: 'local', dir, key: Buffer.from(keyB64, 'base64') })
try {
  const v = await store.prepare(
    { provider: 'local', mechanism: 'local', path: 'race/key' },
    { requestId, value: new Secret(value) },
  )
  process.stdout.write(JSON.stringify({ ok: true, version: v.id, requestId: v.requestId }))
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, code: (err as { code?: string }).code }))
}
