/** Turns answers into the YAML text of a spec. Pure: the checks run on exactly this text. */
import { Document } from 'yaml'
import { SPEC_API_VERSION } from '../spec/schema.js'
import type { Answers } from './fields.js'
import { MOUNT_MECHANISMS } from './fields.js'

export interface SpecTimes {
  created: string
  expires: string
}

/** Drops empty answers, so an unanswered optional field is left out rather than written as "". */
function given(value: string | undefined): string | undefined {
  const v = value?.trim()
  return v ? v : undefined
}

function target(a: Answers): Record<string, unknown> {
  const base: Record<string, unknown> = { provider: given(a.provider), mechanism: given(a.mechanism) }
  const mount = MOUNT_MECHANISMS.has(a.mechanism ?? '') ? given(a.mount) : undefined
  switch (a.mechanism) {
    case 'local':
      return { ...base, path: given(a.path) }
    case 'kv-v2':
      return { ...base, mount, path: given(a.path) }
    case 'approle-secret-id':
      return { ...base, mount, role: given(a.role), deliverTo: { path: given(a.path) } }
    case 'database-static-role':
      return { ...base, mount, role: given(a.role) }
    case 'secrets-manager':
      return { ...base, secret: given(a.secret) }
    case 'iam-access-key':
      return { ...base, user: given(a.user), secret: given(a.secret) }
    default:
      return base
  }
}

/** The spec as plain data, keys in the order a reviewer reads them. Undefined values are omitted. */
export function specData(a: Answers, id: string, times: SpecTimes): Record<string, unknown> {
  return {
    apiVersion: SPEC_API_VERSION,
    kind: 'RecoveryRequest',
    id,
    requester: { name: given(a.requester), kind: given(a.requesterKind) },
    reason: given(a.reason),
    ticket: given(a.ticket),
    created: times.created,
    expires: times.expires,
    identity: { name: given(a.identity), type: given(a.type), owner: given(a.owner), risk: given(a.risk) },
    target: target(a),
    action: given(a.action),
    rollbackOf: a.action === 'rollback' ? given(a.rollbackOf) : undefined,
    rotation: {
      verification: [{ kind: 'provider' }],
      retainPrevious: given(a.retainPrevious) ?? '24h',
    },
  }
}

/** YAML text of a spec, led by the editor's schema line. */
export function renderSpecYaml(data: Record<string, unknown>, schemaRef: string): string {
  const doc = new Document(data)
  doc.commentBefore = ` yaml-language-server: $schema=${schemaRef}`
  // lineWidth 0: never fold long values, so each field stays on the line validate reports.
  return doc.toString({ lineWidth: 0 }).replace(/^(# yaml-language-server: [^\n]*\n)\n/, '$1')
}
