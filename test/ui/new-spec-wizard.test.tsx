import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { render } from 'ink-testing-library'
import { afterEach, describe, expect, it } from 'vitest'
import { NewSpecWizard } from '../../src/ui/components/NewSpecWizard.js'
import { createNewSpec, openNewSpecSession, type NewSpecOptions } from '../../src/new/new-spec.js'
import type { Answers } from '../../src/new/fields.js'
import { initRepo } from '../../src/init/scaffold.js'
import { validateSpecs } from '../../src/spec/validate.js'
import { tempRepo } from '../helpers/temp-repo.js'
import { PROJECT_ROOT } from '../helpers/cli.js'

const NOW = new Date('2026-03-04T05:06:07Z')
const ENTER = '\r'
const DOWN = '\u001B[B'
const ESC = '\u001B'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function initDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-ui-'))
  dirs.push(dir)
  initRepo({ dir, force: false, version: '0.1.0', securityTeam: '@acme/security' })
  return dir
}

function options(cwd: string, answers: Answers = {}): NewSpecOptions {
  return {
    cwd,
    answers,
    now: NOW,
    random: () => '0a1b',
    packageRoot: PROJECT_ROOT,
    gitIdentity: () => ({ email: 'alice@example.com' }),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const tick = () => sleep(50)

type Ui = { stdin: { write(s: string): void }; lastFrame(): string | undefined }

/**
 * Types each keystroke group, waits for the frame to change, then lets React run the new
 * components' effects: a component mounted by the previous key subscribes to input only then,
 * and a key sent earlier would be lost (as it would be for a person typing that fast).
 */
async function keys(ui: Ui, ...groups: string[]) {
  for (const g of groups) {
    const before = ui.lastFrame()
    ui.stdin.write(g)
    for (let waited = 0; ui.lastFrame() === before && waited < 500; waited += 10) await sleep(10)
    await tick()
  }
}

/** Answers for a local api-key request, in wizard order. */
const LOCAL_RUN = [
  'payments-api-key',
  ENTER, // identity
  ENTER, // type: api-key (first)
  'team-payments',
  ENTER, // owner
  ENTER, // risk: low (first)
  ENTER, // provider: local
  ENTER, // mechanism: local
  'payments/api-key',
  ENTER, // path
  ENTER, // action: rotate
  'The key was printed in a build log.',
  ENTER, // reason
  'SEC-42',
  ENTER, // ticket
  ENTER, // requester: from git
  ENTER, // requester kind: human
  ENTER, // expires in: 7d
  ENTER, // retain previous: 24h
]

describe('the new-spec wizard', () => {
  it('asks the first question with its position', async () => {
    const session = openNewSpecSession(options(initDir()))
    const ui = render(<NewSpecWizard session={session} onDone={() => {}} />)
    await tick()
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover new: a recovery request
      [1/13] Name of the identity (e.g. payments-api-key)
      >
      Enter to confirm, Esc to cancel"
    `)
    ui.unmount()
  })

  it('walks through every question, shows the valid result and writes only on confirmation', async () => {
    // Given a freshly init-ed repo
    const dir = initDir()
    // When a person answers every question and confirms
    let frame = ''
    const result = await createNewSpec({
      ...options(dir),
      ask: (session) =>
        new Promise<Answers | undefined>((resolve) => {
          const ui = render(<NewSpecWizard session={session} onDone={resolve} />)
          void (async () => {
            await tick()
            await keys(ui, ...LOCAL_RUN)
            frame = ui.lastFrame() ?? ''
            await keys(ui, ENTER)
          })()
        }),
    })
    // Then the review showed the answers and the file, and the written spec passes validate
    expect(frame).toMatchInlineSnapshot(`
      "nhi-recover new: a recovery request
      Identity: payments-api-key
      Type: api-key
      Owner: team-payments
      Risk: low
      Provider: local
      Mechanism: local
      Path: payments/api-key
      Action: rotate
      Reason: The key was printed in a build log.
      Ticket: SEC-42
      Requester: alice@example.com
      Requester kind: human
      Expires in: 7d
      Retain previous: 24h
      ✔ Valid. The request rr-payments-api-key-20260304-0a1b will be written to
      recovery-specs/rr-payments-api-key-20260304-0a1b.yaml.
      ❯ Write recovery-specs/rr-payments-api-key-20260304-0a1b.yaml
        Change an answer
        Cancel (write nothing)"
    `)
    expect(result.file).toBe('recovery-specs/rr-payments-api-key-20260304-0a1b.yaml')
    expect(readFileSync(join(dir, result.file), 'utf8')).toContain(
      'reason: The key was printed in a build log.\n',
    )
    expect(validateSpecs({ cwd: dir, paths: [], now: NOW }).problems).toEqual([])
  })

  it('shows the validation problems inline, offers no write, and lets the answer be changed', async () => {
    const dir = initDir()
    const session = openNewSpecSession(options(dir))
    const done: Array<Answers | undefined> = []
    const ui = render(<NewSpecWizard session={session} onDone={(a) => done.push(a)} />)
    await tick()
    // An owner with a space is not a valid principal
    const badRun = [...LOCAL_RUN]
    badRun[3] = 'team payments'
    await keys(ui, ...badRun)
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover new: a recovery request
      Identity: payments-api-key
      Type: api-key
      Owner: team payments
      Risk: low
      Provider: local
      Mechanism: local
      Path: payments/api-key
      Action: rotate
      Reason: The key was printed in a build log.
      Ticket: SEC-42
      Requester: alice@example.com
      Requester kind: human
      Expires in: 7d
      Retain previous: 24h
      ✖ Not valid yet; nothing will be written until these are fixed:
        recovery-specs/rr-payments-api-key-20260304-0a1b.yaml:15:10: identity.owner: must be a login or
      principal of [A-Za-z0-9_.@+-] characters [INVALID_FORMAT]
      ❯ Change an answer
        Cancel (write nothing)"
    `)
    // Change an answer → owner → fix it
    await keys(ui, ENTER, DOWN, DOWN, ENTER)
    await keys(ui, ...Array(13).fill('\u007F'), 'team-payments', ENTER)
    const fixed = ui.lastFrame() ?? ''
    expect(fixed).toContain('✔ Valid. The request rr-payments-api-key-20260304-0a1b will be written to')
    await keys(ui, ENTER)
    expect(done).toHaveLength(1)
    expect(done[0]?.owner).toBe('team-payments')
    ui.unmount()
  })

  it('offers only the configured tiers and the providers and mechanisms that fit the identity type', async () => {
    // Given the example config, with local, vault and AWS providers
    const repo = tempRepo()
    dirs.push(repo.root)
    const session = openNewSpecSession(options(repo.root))
    const ui = render(<NewSpecWizard session={session} onDone={() => {}} />)
    await tick()
    // When the identity is an approle
    await keys(ui, 'billing-worker', ENTER, DOWN, DOWN, ENTER, 'team-billing', ENTER)
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover new: a recovery request
      [4/13] Risk tier
      ❯ low
        medium
        high
        critical
      Enter to confirm, Esc to cancel"
    `)
    await keys(ui, ENTER)
    // Then only the vault provider can serve it, and only with approle-secret-id
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover new: a recovery request
      [5/13] Provider that holds the credential
      ❯ bao (vault)
      Enter to confirm, Esc to cancel"
    `)
    await keys(ui, ENTER)
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover new: a recovery request
      [6/13] Rotation mechanism
      ❯ approle-secret-id
      Enter to confirm, Esc to cancel"
    `)
    ui.unmount()
  })

  it('hides a secret-looking answer in the review and never offers to write it', async () => {
    // Given a person who pastes a (canary) token into the reason
    const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
    const canary = 'ghp_' + [...randomBytes(36)].map((b) => alnum[b % alnum.length]).join('')
    const session = openNewSpecSession(options(initDir()))
    const ui = render(<NewSpecWizard session={session} onDone={() => {}} />)
    await tick()
    const run = [...LOCAL_RUN]
    run[run.indexOf('The key was printed in a build log.')] = `Token ${canary} leaked`
    // When the review shows
    await keys(ui, ...run)
    const review = ui.lastFrame() ?? ''
    // Then the value is hidden, the problem is named, and there is no write choice
    expect(review).not.toContain(canary)
    expect(review).toContain('Reason: (hidden: looks like a secret)')
    expect(review).toMatch(/reason: looks like a GitHub token/)
    expect(review).not.toContain('Write recovery-specs/')
    ui.unmount()
  })

  it('does not ask again for answers given as flags', async () => {
    const session = openNewSpecSession(
      options(initDir(), { identity: 'payments-api-key', type: 'api-key', owner: 'team-payments' }),
    )
    const ui = render(<NewSpecWizard session={session} onDone={() => {}} />)
    await tick()
    expect(ui.lastFrame()).toContain('[1/10] Risk tier')
    ui.unmount()
  })

  it('cancels on Esc and hands back nothing', async () => {
    const session = openNewSpecSession(options(initDir()))
    const done: Array<Answers | undefined> = []
    const ui = render(<NewSpecWizard session={session} onDone={(a) => done.push(a)} />)
    await tick()
    await keys(ui, 'half-typed', ESC)
    expect(done).toEqual([undefined])
    ui.unmount()
  })

  it('a required text answer cannot be left empty', async () => {
    const session = openNewSpecSession(options(initDir()))
    const ui = render(<NewSpecWizard session={session} onDone={() => {}} />)
    await tick()
    await keys(ui, ENTER)
    expect(ui.lastFrame()).toContain('An answer is required.')
    expect(ui.lastFrame()).toContain('[1/13] Name of the identity')
    ui.unmount()
  })
})
