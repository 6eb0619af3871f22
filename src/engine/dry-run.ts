/**
 * --dry-run: a store that reads through to the real one but records every change instead of
 * making it, so the plan shows exactly what would happen and nothing changes.
 */
import { Secret } from '../secret.js'
import { describeTargetRef } from './target-ref.js'
import { stages, type SecretStore, type VersionInfo } from './secret-store.js'

export interface RecordedCall {
  provider: string
  target: string
  call: 'revoke' | 'prepare' | 'verify' | 'promote' | 'discard' | 'rollback' | 'retire'
  detail: string
}

export function recordingStore(store: SecretStore, log: RecordedCall[]): SecretStore {
  const rec = (target: Parameters<SecretStore['describe']>[0], call: RecordedCall['call'], detail: string) =>
    log.push({ provider: store.name, target: describeTargetRef(target), call, detail })
  const planned = (requestId: string): VersionInfo => ({
    id: '(new)',
    stages: ['pending'],
    created: new Date().toISOString(),
    requestId,
  })
  return {
    name: store.name,
    describe: (t) => store.describe(t),
    async prepare(t, r) {
      rec(t, 'prepare', `would stage a new version for ${r.requestId}`)
      return planned(r.requestId)
    },
    async verify(t, r) {
      rec(t, 'verify', `would verify version ${r.versionId}`)
    },
    async read() {
      // Configured checks would run against the new value; a dry run has none to offer.
      return new Secret('dry-run-placeholder')
    },
    async promote(t, r) {
      rec(
        t,
        'promote',
        `would make version ${r.versionId} current (expecting ${r.expectedCurrent ?? 'none'} to be current now)`,
      )
    },
    async discard(t, r) {
      rec(t, 'discard', `would discard version ${r.versionId}`)
    },
    async rollback(t, r) {
      const s = stages(await store.describe(t))
      rec(t, 'rollback', `would make version ${s.previous?.id ?? '(none)'} current again for ${r.requestId}`)
      return s.previous ?? planned(r.requestId)
    },
    async retire(t, r) {
      rec(t, 'retire', `would retire version ${r.versionId}`)
    },
    ...(store.revoke
      ? {
          async revoke(t, r) {
            const current = stages(await store.describe(t)).current
            rec(
              t,
              'revoke',
              `would disable the current credential (version ${current?.id ?? 'none'}) at once for ${r.requestId}`,
            )
            return { versionId: current?.id ?? '(none)' }
          },
        }
      : {}),
  }
}
