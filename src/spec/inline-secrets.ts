/**
 * Finds credential material written into a spec. A spec names where a credential lives,
 * never the credential itself. Findings carry only the kind of secret, never the value.
 */
import { isMap, isPair, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter } from 'yaml'
import type { Problem } from './problems.js'
import { dotPath, type PathSeg } from './locate.js'

const KNOWN: ReadonlyArray<[kind: string, pattern: RegExp]> = [
  ['a private key block', /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----/],
  ['an AWS access key id', /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16}(?![A-Z0-9])/],
  ['a GitHub token', /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})/],
  ['a Slack token', /(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}/],
  ['a Slack webhook URL', /hooks\.slack\.com\/services\/[A-Za-z0-9/]{20,}/],
  ['a JSON Web Token', /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/],
  ['a Vault or OpenBao token', /(?<![A-Za-z0-9])hv[sbr]\.[A-Za-z0-9_-]{20,}/],
  ['a credential in a URL', /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]{3,}@/i],
]

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>()
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) {
    const p = n / s.length
    h -= p * Math.log2(p)
  }
  return h
}

const HEX = /^[0-9a-fA-F]+$/
const TOKEN_SPLIT = /[\s"'`,;:()<>[\]{}|\\/=?&#]+/

/** True when a single token looks like random key material. */
function highEntropyToken(token: string): boolean {
  if (token.length < 20) return false
  const compact = token.replace(/-/g, '')
  if (HEX.test(compact)) return compact.length >= 32 && entropy(compact) >= 3.0
  if (!/[0-9]/.test(token) || !/[A-Za-z]/.test(token)) return false
  // Random base62/base64 of 20+ characters sits near log2(len) bits; identifiers and words sit far below.
  const threshold = Math.min(4.2, Math.log2(token.length) - 0.55)
  return entropy(token) >= threshold
}

/** The kind of secret the string contains, or undefined. */
export function detectSecret(value: string): string | undefined {
  for (const [kind, pattern] of KNOWN) if (pattern.test(value)) return kind
  for (const token of value.split(TOKEN_SPLIT)) if (highEntropyToken(token)) return 'a high-entropy string'
  return undefined
}

/** Every scalar key and value in the document that looks like a secret. */
export function inlineSecretProblems(
  file: string,
  doc: Document.Parsed,
  lineCounter: LineCounter,
): Problem[] {
  const out: Problem[] = []
  const stack: Array<[unknown, PathSeg[]]> = [[doc.contents, []]]
  const report = (node: { range?: [number, number, number] | null }, path: PathSeg[], kind: string) => {
    const pos = lineCounter.linePos(node.range?.[0] ?? 0)
    out.push({
      file,
      line: pos.line,
      col: pos.col,
      code: 'INLINE_SECRET',
      path: dotPath(path) || '(root)',
      message: `looks like ${kind}. A spec must never hold a credential: remove it, and treat that credential as exposed (rotate it) if it was ever committed or pushed`,
    })
  }
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    if (isScalar(node)) {
      if (typeof node.value === 'string') {
        const kind = detectSecret(node.value)
        if (kind) report(node, path, kind)
      }
    } else if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const keyText = isScalar(pair.key) ? String(pair.key.value) : '?'
        const keyKind =
          isScalar(pair.key) && typeof pair.key.value === 'string' ? detectSecret(pair.key.value) : undefined
        if (keyKind) report(pair.key as never, [...path, '<key>'], keyKind)
        stack.push([pair.value, [...path, keyKind ? '<key>' : keyText]])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push([item, [...path, i]]))
    }
  }
  return out
}
