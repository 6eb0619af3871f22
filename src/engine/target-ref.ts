import type { Target } from '../spec/schema.js'

/** A reference to a target that is safe to print and audit: where the credential lives, never a value. */
export function describeTargetRef(t: Target): string {
  switch (t.mechanism) {
    case 'local':
      return `${t.provider}:${t.path}`
    case 'kv-v2':
      return `${t.provider}:${t.mount}/${t.path}#${t.field}`
    case 'approle-secret-id':
      return `${t.provider}:auth/${t.mount}/role/${t.role}`
    case 'database-static-role':
      return `${t.provider}:${t.mount}/static-roles/${t.role}`
    case 'secrets-manager':
      return `${t.provider}:${t.secret}`
    case 'iam-access-key':
      return `${t.provider}:user/${t.user}`
  }
}
