/**
 * Finds credential material written into a spec. A spec names where a credential lives,
 * never the credential itself. Findings carry only the kind of secret, never the value.
 */
import { isCollection, isMap, isPair, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter } from 'yaml'
import { dotPath, type PathSeg, type Problem } from './problems.js'

// Every pattern either starts at a fixed literal or behind a lookbehind, so a long hostile
// value cannot make one of them backtrack quadratically.
const KNOWN: ReadonlyArray<[kind: string, pattern: RegExp]> = [
  ['a private key block', /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----/],
  ['an AWS access key id', /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16}(?![A-Z0-9])/],
  ['a GitHub token', /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})/],
  ['a GitLab token', /(?<![A-Za-z0-9_])glpat-[A-Za-z0-9_-]{20,}/],
  ['a Slack token', /(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}/],
  ['a Slack webhook URL', /hooks\.slack\.com\/services\/[A-Za-z0-9/]{20,}/],
  ['a Stripe key', /(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/],
  ['a Google API key', /(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}/],
  ['an npm token', /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}/],
  ['a JSON Web Token', /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/],
  [
    'a Vault or OpenBao token',
    /(?<![A-Za-z0-9])(?:hv[sbr]\.[A-Za-z0-9_-]{20,}|s\.[A-Za-z0-9]{24}(?![A-Za-z0-9]))/,
  ],
  // scheme://user:password@ ; the user may be empty (redis://:pw@host).
  ['a credential in a URL', /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/],
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

/** Characters that never occur inside a key or token; everything else is kept together. */
const TOKEN_SPLIT = /[^A-Za-z0-9+/=_.-]+/
/** Separators that occur inside both tokens (base64, base64url) and names (paths, kebab-case). */
const SEPARATORS = /[-_./+=]+/
const HEX = /^[0-9a-fA-F]+$/
/** Camel-case segments: a word, an acronym or a number. */
const SEGMENT = /[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g
const VOWEL = /[aeiouyAEIOUY]/
const VOWELS = /[aeiouyAEIOUY]/g
/** A part of a name between separators: lowercase or Capitalised words, then maybe a number. */
const NAME_PART = /^[a-z]*(?:[A-Z][a-z]+)*[0-9]*$/

/** True for `payments`, `DeployUser`, `MyStack`, `gateway2`: words that each have a vowel. */
function isNamePart(run: string): boolean {
  if (run.length < 3 || !NAME_PART.test(run)) return false
  const words = run.replace(/[0-9]+$/, '').match(/[A-Z]?[a-z]+/g) ?? []
  return words.length > 0 && words.every((w) => VOWEL.test(w))
}

/** Tokens shorter than this are never judged by shape: too little signal, too many names. */
export const MIN_TOKEN_LENGTH = 20
/** From this length a mixed-case token with digits is refused unless it reads as words. */
export const LONG_TOKEN_LENGTH = 32

/**
 * True when a run of letters and digits reads as camel-case words (ServiceAccount2024, K8sRole,
 * HTTPServer) rather than random characters: segments average 3+ characters, word segments
 * have a vowel and no four consonants in a row, acronyms are short, and at most one segment
 * is a lone letter.
 */
function readsAsWords(run: string): boolean {
  const segments = run.match(SEGMENT) ?? []
  const letters = run.replace(/[0-9]/g, '')
  // Words are 30-45% vowels; random letters about 23% (y included). Too noisy below 16 letters.
  if (letters.length >= 16 && (letters.match(VOWELS) ?? []).length / letters.length < 0.3) return false
  const minAverage = run.length >= LONG_TOKEN_LENGTH ? 4.5 : 3
  if (segments.length === 0 || run.length / segments.length < minAverage) return false
  let loneLetters = 0
  for (const seg of segments) {
    if (/^[0-9]/.test(seg)) continue
    if (seg.length === 1) {
      if (++loneLetters > 1) return false
    } else if (/^[A-Z]+$/.test(seg)) {
      if (seg.length > 5) return false
    } else if (!VOWEL.test(seg) || /[^aeiouyAEIOUY]{4}/.test(seg)) return false
  }
  return true
}

/** True when a run of [A-Za-z0-9] looks like random key material rather than a name. */
function randomLooking(run: string): boolean {
  const n = run.length
  if (n < MIN_TOKEN_LENGTH) return false
  const upper = /[A-Z]/.test(run)
  const lower = /[a-z]/.test(run)
  const digit = /[0-9]/.test(run)
  if (upper && lower) {
    // Mixed case: refused unless it reads as words. Without digits only from 24 characters.
    return (digit || n >= 24) && !readsAsWords(run)
  }
  if (!digit || !(upper || lower)) return false
  // One case plus digits (base32, lowercase keys). Below 32 characters also judged by entropy,
  // so some random tokens of that length pass; unbroken names of this shape are rare.
  if (readsAsWords(run)) return false
  return n >= LONG_TOKEN_LENGTH || entropy(run) >= Math.min(4.0, Math.log2(n) - 0.7)
}

/** True when a single token looks like random key material. */
function secretLikeToken(token: string): boolean {
  if (token.length < MIN_TOKEN_LENGTH) return false
  const dashless = token.replace(/-/g, '')
  if (HEX.test(dashless) && dashless.length >= 32 && /[0-9]/.test(dashless) && /[a-fA-F]/.test(dashless))
    return entropy(dashless) >= 2.5
  const runs = token.split(SEPARATORS).filter((r) => r.length > 0)
  if (runs.some(randomLooking)) return true
  // base64 and base64url keys carry a few separators (+ / - _) that cut them into short runs.
  // Judge them whole unless most of their characters are in runs that read as words (names).
  const compact = runs.join('')
  if (compact.length < MIN_TOKEN_LENGTH || (token.length - compact.length) * 4 > token.length) return false
  const wordy = runs.filter(isNamePart).reduce((n, r) => n + r.length, 0)
  return wordy * 2 < compact.length && randomLooking(compact)
}

/** The kind of secret the string contains, or undefined. */
export function detectSecret(value: string): string | undefined {
  for (const [kind, pattern] of KNOWN) if (pattern.test(value)) return kind
  for (const token of value.split(TOKEN_SPLIT)) if (secretLikeToken(token)) return 'a high-entropy string'
  return undefined
}

const SAFE_KEY = /^[A-Za-z0-9_.@-]{1,64}$/

/** `key` when it is safe to show in a message; otherwise a placeholder. Never echoes a secret. */
export function safeKey(key: string): string {
  return SAFE_KEY.test(key) && detectSecret(key) === undefined ? key : '<key>'
}

/** The INLINE_SECRET problem for one finding; carries the kind and position, never the value. */
export function inlineSecretProblem(
  file: string,
  pos: { line: number; col: number },
  path: string,
  kind: string,
): Problem {
  return {
    file,
    line: pos.line,
    col: pos.col,
    code: 'INLINE_SECRET',
    path,
    message: `looks like ${kind}. A spec must never hold a credential: remove it, and treat that credential as exposed (rotate it) if it was ever committed or pushed`,
  }
}

type Ranged = { range?: [number, number, number] | null }

/** Every scalar key and value in the document that looks like a secret, keys of any kind included. */
export function inlineSecretProblems(
  file: string,
  doc: Document.Parsed,
  lineCounter: LineCounter,
): Problem[] {
  const out: Problem[] = []
  const stack: Array<[unknown, PathSeg[]]> = [[doc.contents, []]]
  while (stack.length > 0) {
    const [node, path] = stack.pop()!
    if (isScalar(node)) {
      // Plain scalars resolved to numbers or booleans still carry their source text.
      const text =
        typeof node.value === 'string'
          ? node.value
          : typeof (node as { source?: unknown }).source === 'string'
            ? (node as unknown as { source: string }).source
            : undefined
      const kind = text === undefined ? undefined : detectSecret(text)
      if (kind) {
        const pos = lineCounter.linePos((node as Ranged).range?.[0] ?? 0)
        out.push(inlineSecretProblem(file, pos, dotPath(path) || '(root)', kind))
      }
    } else if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const keyText = isScalar(pair.key) ? String(pair.key.value) : undefined
        if (isScalar(pair.key) || isCollection(pair.key)) stack.push([pair.key, [...path, '<key>']])
        stack.push([pair.value, [...path, keyText === undefined ? '<key>' : safeKey(keyText)]])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push([item, [...path, i]]))
    }
  }
  return out
}
