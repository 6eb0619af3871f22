import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cryptoHex, generateId, idStem } from '../../src/new/id.js'
import { detectSecret } from '../../src/spec/inline-secrets.js'
import { createNewSpec } from '../../src/new/new-spec.js'
import { initRepo } from '../../src/init/scaffold.js'
import { SAFE_ID } from '../../src/spec/schema.js'
import { PROJECT_ROOT } from '../helpers/cli.js'

const NOW = new Date('2026-03-04T05:06:07.890Z')

/** Random hex that replays the given values, so a collision can be staged. */
function replay(...values: string[]) {
  const calls: number[] = []
  const fn = (bytes: number) => {
    calls.push(bytes)
    const v = values.shift()
    if (v === undefined) throw new Error('replay ran out of values')
    return v
  }
  return Object.assign(fn, { calls })
}

describe('request ids', () => {
  it('are rr-<identity>-<yyyymmdd>-<4 hex>', () => {
    expect(generateId('payments-api-key', NOW, () => false, replay('0a1b'))).toBe(
      'rr-payments-api-key-20260304-0a1b',
    )
  })

  it('skip a value that is taken and draw again', () => {
    const taken = new Set(['rr-svc-20260304-aaaa'])
    const random = replay('aaaa', 'bbbb')
    expect(generateId('svc', NOW, (id) => taken.has(id), random)).toBe('rr-svc-20260304-bbbb')
    expect(random.calls).toEqual([2, 2])
  })

  it('widen to eight hex digits after sixteen collisions', () => {
    const random = replay(...Array(16).fill('aaaa'), 'deadbeef')
    expect(generateId('svc', NOW, (id) => id.endsWith('-aaaa'), random)).toBe('rr-svc-20260304-deadbeef')
  })

  it('skip a draw that would make the id look like a secret to validate', () => {
    // Given a suffix that tips rr-svc-key-20260304-XXXX over the high-entropy threshold
    const flagged = [...Array(0x10000).keys()]
      .map((n) => n.toString(16).padStart(4, '0'))
      .find((hex) => detectSecret(`rr-svc-key-20260304-${hex}`))!
    expect(flagged).toBeDefined()
    // When it is drawn first, the next draw is used instead
    expect(generateId('svc-key', NOW, () => false, replay(flagged, '0000'))).toBe('rr-svc-key-20260304-0000')
  })

  it('never yield an id the inline-secret scan refuses, over many real draws', () => {
    for (const identity of ['svc-key', 'payments-api-key', 'x9', 'k8s-sa-7f']) {
      const seen = new Set<string>()
      for (let i = 0; i < 2000; i++) {
        const id = generateId(identity, NOW, (c) => seen.has(c), cryptoHex)
        seen.add(id)
        expect(detectSecret(id), id).toBeUndefined()
      }
    }
  })

  it.each([
    ['Payments API Key', 'payments-api-key'],
    ['--x--', 'x'],
    ['!!!', 'request'],
    ['a'.repeat(200), 'a'.repeat(59)],
    ['ghp_' + 'aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5', 'request'],
  ])('make a safe stem of %j', (identity, stem) => {
    expect(idStem(identity)).toBe(stem)
    expect(SAFE_ID.test(generateId(identity, NOW, () => false, cryptoHex))).toBe(true)
  })
})

describe('new, when the generated id collides with an existing spec', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('picks another id and leaves the existing spec alone', async () => {
    // Given a repo whose existing spec (under another file name) holds the id the first draw gives
    const dir = mkdtempSync(join(tmpdir(), 'nhi-id-'))
    dirs.push(dir)
    initRepo({ dir, force: false, version: '0.1.0', securityTeam: '@acme/security' })
    writeFileSync(join(dir, 'recovery-specs/older.yaml'), 'id: rr-svc-key-20260304-aaaa\n')
    // When new draws that id first
    const result = await createNewSpec({
      cwd: dir,
      answers: {
        identity: 'svc-key',
        type: 'api-key',
        owner: 'team-a',
        risk: 'low',
        provider: 'local',
        mechanism: 'local',
        path: 'svc/key',
        action: 'rotate',
        reason: 'Rotate after the incident.',
        ticket: 'INC-1',
        requester: 'alice',
        requesterKind: 'human',
      },
      now: NOW,
      random: replay('aaaa', 'bbbb'),
      packageRoot: PROJECT_ROOT,
      gitIdentity: () => ({}),
    })
    // Then it takes the next draw
    expect(result.id).toBe('rr-svc-key-20260304-bbbb')
    expect(result.file).toBe('recovery-specs/rr-svc-key-20260304-bbbb.yaml')
  })
})
