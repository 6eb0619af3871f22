/**
 * OpenSSH allowed_signers files (ssh-keygen(1), "ALLOWED SIGNERS"), parsed and matched the way
 * `ssh-keygen -Y verify` does: principal patterns with `*`, `?` and `!`, and the options
 * cert-authority, namespaces="…", valid-after="…" and valid-before="…".
 *
 * Validity windows are inclusive at both ends, in whole seconds, exactly as OpenSSH checks
 * them. A timestamp without a trailing Z (or UTC) is local time, as in OpenSSH; write Z.
 */
import { UserError } from '../errors.js'
import { fingerprint, formatPublicKey, parsePublicKey, sameKey, type SshPublicKey } from './ssh-keys.js'
import { verify as verifySshsig, type RawVerify, type SshSignature } from './sshsig.js'

/** One line of an allowed_signers file. */
export interface AllowedSigner {
  file: string
  line: number
  /** Comma-separated principal patterns, as written. */
  principals: string
  /** Comma-separated namespace patterns; undefined means every namespace. */
  namespaces?: string
  /** Unix seconds; the key is not valid before this. */
  validAfter?: number
  /** Unix seconds; the key is not valid after this. */
  validBefore?: number
  certAuthority: boolean
  publicKey: SshPublicKey
}

/** Parses an allowed_signers file. Any malformed line is an error naming file:line. */
export function parseAllowedSigners(text: string, file = 'allowed_signers'): AllowedSigner[] {
  const out: AllowedSigner[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1
    const where = `${file}:${line}`
    let cp = raw.replace(/^\s+/, '')
    if (cp === '' || cp.startsWith('#')) return
    const fail = (what: string) =>
      new UserError('ALLOWED_SIGNERS_INVALID', `${where}: ${what}.`, {
        next: 'Each line is: PRINCIPALS [OPTIONS] ssh-ed25519 AAAA… [comment] (see ssh-keygen(1), ALLOWED SIGNERS).',
      })
    const principalsTok = takeToken(cp)
    if (!principalsTok) throw fail('missing principals')
    cp = principalsTok.rest
    const principals = unquote(principalsTok.token)
    if (principals === '') throw fail('empty principals')

    let options: string | undefined
    if (!looksLikeKey(cp)) {
      const optTok = takeOptions(cp)
      if (!optTok) throw fail('invalid options')
      options = optTok.options
      cp = optTok.rest.replace(/^\s+/, '')
      if (cp === '') throw fail('missing key')
    }
    let publicKey: SshPublicKey
    try {
      publicKey = parsePublicKey(cp, where)
    } catch {
      throw fail('invalid public key')
    }
    const signer: AllowedSigner = { file, line, principals, certAuthority: false, publicKey }
    if (options !== undefined) {
      for (const opt of splitOptions(options)) {
        const m = /^([a-z-]+)(?:=(.*))?$/i.exec(opt)
        const name = m?.[1]?.toLowerCase()
        const value = m?.[2]
        if (name === 'cert-authority' && value === undefined) signer.certAuthority = true
        else if (name === 'namespaces' && value !== undefined) signer.namespaces = dequote(value, fail)
        else if ((name === 'valid-after' || name === 'valid-before') && value !== undefined) {
          const t = parseSshTime(dequote(value, fail))
          if (t === undefined) throw fail(`${name} is not a time of the form YYYYMMDD[HHMM[SS]][Z]`)
          if (name === 'valid-after') signer.validAfter = t
          else signer.validBefore = t
        } else throw fail(`unsupported option "${opt}"`)
      }
    }
    out.push(signer)
  })
  return out
}

const KEY_TYPE =
  /^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9-]+@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)\s/

function looksLikeKey(cp: string): boolean {
  return KEY_TYPE.test(cp)
}

function takeToken(cp: string): { token: string; rest: string } | undefined {
  if (cp.startsWith('"')) {
    const end = cp.indexOf('"', 1)
    if (end < 0) return undefined
    return { token: cp.slice(0, end + 1), rest: cp.slice(end + 1).replace(/^\s+/, '') }
  }
  const m = /^(\S+)\s*/.exec(cp)
  return m ? { token: m[1]!, rest: cp.slice(m[0].length) } : undefined
}

/** Options run to the first whitespace outside double quotes (sshkey_advance_past_options). */
function takeOptions(cp: string): { options: string; rest: string } | undefined {
  let quoted = false
  for (let i = 0; i < cp.length; i++) {
    const c = cp[i]!
    if (c === '\\' && cp[i + 1] === '"') i++
    else if (c === '"') quoted = !quoted
    else if (!quoted && (c === ' ' || c === '\t')) return { options: cp.slice(0, i), rest: cp.slice(i) }
  }
  return quoted ? undefined : { options: cp, rest: '' }
}

function splitOptions(options: string): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (const c of options) {
    if (c === '"') quoted = !quoted
    if (c === ',' && !quoted) {
      out.push(cur)
      cur = ''
    } else cur += c
  }
  out.push(cur)
  return out
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s
}

function dequote(value: string, fail: (what: string) => Error): string {
  if (!value.startsWith('"') || !value.endsWith('"') || value.length < 2)
    throw fail(`option value ${value} must be in double quotes`)
  return value.slice(1, -1).replace(/\\"/g, '"')
}

/**
 * OpenSSH's parse_absolute_time: YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with a trailing
 * Z or UTC for UTC and local time otherwise. Returns unix seconds.
 */
export function parseSshTime(text: string): number | undefined {
  let s = text
  let utc = false
  if (/z$/i.test(s) && s.length > 1) {
    utc = true
    s = s.slice(0, -1)
  } else if (/utc$/i.test(s) && s.length > 3) {
    utc = true
    s = s.slice(0, -3)
  }
  if (!/^\d+$/.test(s) || ![8, 12, 14].includes(s.length)) return undefined
  const n = (a: number, b: number) => Number(s.slice(a, b))
  const [y, mo, d, h, mi, se] = [n(0, 4), n(4, 6), n(6, 8), n(8, 10) || 0, n(10, 12) || 0, n(12, 14) || 0]
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return undefined
  const ms = utc ? Date.UTC(y, mo - 1, d, h, mi, se) : new Date(y, mo - 1, d, h, mi, se).getTime()
  return Number.isFinite(ms) && ms >= 0 ? Math.floor(ms / 1000) : undefined
}

/** "YYYYMMDDHHMMSSZ" for a time, the unambiguous form to write into allowed_signers. */
export function formatSshTime(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z')
}

const patterns = new Map<string, RegExp>()

/** glob match with `*` and `?` (OpenSSH match_pattern). */
function matchPattern(s: string, pattern: string): boolean {
  let re = patterns.get(pattern)
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')
    re = new RegExp('^' + body + '$', 's')
    if (patterns.size < 10_000) patterns.set(pattern, re)
  }
  return re.test(s)
}

/** OpenSSH match_pattern_list: true when some pattern matches and no negated `!pattern` does. */
export function matchPatternList(s: string, list: string): boolean {
  let positive = false
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!')
    const pattern = negated ? raw.slice(1) : raw
    if (matchPattern(s, pattern)) {
      if (negated) return false
      positive = true
    }
  }
  return positive
}

export type SignerFailure =
  'unknown-key' | 'principal-mismatch' | 'namespace-not-allowed' | 'not-yet-valid' | 'expired'

export type SignerCheck =
  | { ok: true; signer: AllowedSigner }
  | { ok: false; reason: SignerFailure; detail: string; signer?: AllowedSigner }

const FAILURE_RANK: Record<SignerFailure, number> = {
  'unknown-key': 0,
  'principal-mismatch': 1,
  'namespace-not-allowed': 2,
  'not-yet-valid': 3,
  expired: 3,
}

/**
 * Is `publicKey` allowed to sign in `namespace` at `time` (as `principal`, when given)? Same
 * rules as ssh-keygen -Y verify with -Overify-time; cert-authority lines never match a plain key.
 */
export function checkSigner(
  signers: readonly AllowedSigner[],
  q: { publicKey: SshPublicKey; namespace: string; time: Date; principal?: string },
): SignerCheck {
  const when = Math.floor(q.time.getTime() / 1000)
  // Only failures need the fingerprint; the ledger verifier calls this once per entry.
  let fpCache: string | undefined
  const fpOf = () => (fpCache ??= fingerprint(q.publicKey))
  let best: Extract<SignerCheck, { ok: false }> | undefined
  const unknown = (): Extract<SignerCheck, { ok: false }> => ({
    ok: false,
    reason: 'unknown-key',
    detail: `key ${fpOf()} is not in the allowed signers`,
  })
  const worse = (f: Extract<SignerCheck, { ok: false }>) => {
    if (!best || FAILURE_RANK[f.reason] > FAILURE_RANK[best.reason]) best = f
  }
  for (const s of signers) {
    if (s.certAuthority || !sameKey(s.publicKey, q.publicKey)) continue
    const at = `${s.file}:${s.line}`
    if (q.principal !== undefined && !matchPatternList(q.principal, s.principals)) {
      worse({
        ok: false,
        reason: 'principal-mismatch',
        detail: `key ${fpOf()} is allowed for "${s.principals}", not for principal "${q.principal}" (${at})`,
        signer: s,
      })
      continue
    }
    if (s.namespaces !== undefined && !matchPatternList(q.namespace, s.namespaces)) {
      worse({
        ok: false,
        reason: 'namespace-not-allowed',
        detail: `key ${fpOf()} may sign only namespaces "${s.namespaces}", not "${q.namespace}" (${at})`,
        signer: s,
      })
      continue
    }
    if (s.validAfter !== undefined && when < s.validAfter) {
      worse({
        ok: false,
        reason: 'not-yet-valid',
        detail: `key ${fpOf()} is valid only from ${iso(s.validAfter)}; signed at ${iso(when)} (${at})`,
        signer: s,
      })
      continue
    }
    if (s.validBefore !== undefined && when > s.validBefore) {
      worse({
        ok: false,
        reason: 'expired',
        detail: `key ${fpOf()} was valid only until ${iso(s.validBefore)}; signed at ${iso(when)} (${at})`,
        signer: s,
      })
      continue
    }
    return { ok: true, signer: s }
  }
  return best ?? unknown()
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
}

export type SignedCheck =
  { ok: true; signer: AllowedSigner; signature: SshSignature } | { ok: false; reason: string; detail: string }

/** ssh-keygen -Y verify in-process: a valid SSHSIG by a key the allowed signers accept. */
export function verifyWithAllowedSigners(
  message: Buffer | string,
  armored: string | Buffer | SshSignature,
  signers: readonly AllowedSigner[],
  q: { namespace: string; time: Date; principal?: string; rawVerify?: RawVerify },
): SignedCheck {
  const v = verifySshsig(message, armored, q.namespace, q.rawVerify ? { rawVerify: q.rawVerify } : {})
  if (!v.ok) return v
  const c = checkSigner(signers, {
    publicKey: v.signature.publicKey,
    namespace: q.namespace,
    time: q.time,
    ...(q.principal !== undefined ? { principal: q.principal } : {}),
  })
  return c.ok ? { ok: true, signer: c.signer, signature: v.signature } : c
}

/** One allowed_signers line for a key, e.g. for exporting a transit key or rotating keys. */
export function formatAllowedSigner(o: {
  principals: string
  publicKey: SshPublicKey
  namespaces?: string
  validAfter?: Date
  validBefore?: Date
  comment?: string
}): string {
  const opts: string[] = []
  if (o.namespaces) opts.push(`namespaces="${o.namespaces}"`)
  if (o.validAfter) opts.push(`valid-after="${formatSshTime(o.validAfter)}"`)
  if (o.validBefore) opts.push(`valid-before="${formatSshTime(o.validBefore)}"`)
  return [
    o.principals,
    ...(opts.length ? [opts.join(',')] : []),
    formatPublicKey(o.publicKey, o.comment ?? ''),
  ].join(' ')
}
