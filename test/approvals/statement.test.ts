import { describe, expect, it } from 'vitest'
import {
  formatStatementFile,
  parseStatementFile,
  statementBytes,
  statementPath,
  statementsDir,
  STATEMENT_FILE,
} from '../../src/approvals/statement.js'
import type { ApprovalStatement } from '../../src/policy/types.js'

const statement: ApprovalStatement = {
  type: 'nhi-recover-approval/v1',
  requestId: 'rr-payments-key',
  specPath: 'recovery-specs/rr-payments-key.yaml',
  specSha256: 'a'.repeat(64),
  approver: 'carol@example.com',
  time: '2026-11-22T21:05:00.000Z',
}
const file = (s: Record<string, unknown>) => Buffer.from(JSON.stringify({ statement: s, signature: 'sig' }))

describe('approval statements', () => {
  it('signs the statement as JSON with sorted keys, whatever order it was built in', () => {
    const shuffled = Object.fromEntries(Object.entries(statement).reverse()) as unknown as ApprovalStatement
    expect(statementBytes(shuffled).toString()).toBe(statementBytes(statement).toString())
    expect(statementBytes(statement).toString()).toBe(
      '{"approver":"carol@example.com","requestId":"rr-payments-key","specPath":"recovery-specs/rr-payments-key.yaml","specSha256":"' +
        'a'.repeat(64) +
        '","time":"2026-11-22T21:05:00.000Z","type":"nhi-recover-approval/v1"}',
    )
  })

  it('reads back what it writes', () => {
    expect(parseStatementFile(Buffer.from(formatStatementFile(statement, 'sig')))).toEqual({
      ok: true,
      statement,
      signature: 'sig',
    })
  })

  it('refuses fields that could smuggle markup into reasons and the PR comment', () => {
    expect(parseStatementFile(file({ ...statement, requestId: 'rr-x](https://evil)' }))).toMatchObject({
      ok: false,
    })
    expect(parseStatementFile(file({ ...statement, specPath: 'a b.yaml' }))).toMatchObject({ ok: false })
    expect(parseStatementFile(file({ ...statement, approver: '<img>' }))).toMatchObject({ ok: false })
  })

  it('refuses extra fields, a wrong type, a bad digest, and non-JSON', () => {
    expect(parseStatementFile(file({ ...statement, extra: 1 }))).toMatchObject({ ok: false })
    expect(parseStatementFile(file({ ...statement, type: 'other' }))).toMatchObject({ ok: false })
    expect(parseStatementFile(file({ ...statement, specSha256: 'xyz' }))).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^statement\.specSha256: /),
    })
    expect(parseStatementFile(Buffer.from('not json'))).toEqual({ ok: false, problem: 'not JSON' })
  })

  it('keeps statements beside the spec, one file per approver', () => {
    expect(statementsDir('recovery-specs/rr-x.yaml')).toBe('recovery-specs/rr-x.approvals')
    expect(statementsDir('nhi-recover.yaml')).toBe('nhi-recover.approvals')
    expect(statementsDir('.nhi-recover/allowed_signers')).toBe('.nhi-recover/allowed_signers.approvals')
    expect(statementPath('recovery-specs/rr-x.yml', 'bob')).toBe('recovery-specs/rr-x.approvals/bob.json')
    expect(
      ['bob.json', 'renovate[bot].json', 'a](x).json', 'notes.md'].map((n) => STATEMENT_FILE.test(n)),
    ).toEqual([true, true, false, false])
  })
})
