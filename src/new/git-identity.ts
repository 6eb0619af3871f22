/** The default requester: the user's git identity, read only when no requester was given. */
import { execFileSync } from 'node:child_process'

export interface GitIdentity {
  email?: string
  name?: string
}

function gitConfig(cwd: string, key: string): string | undefined {
  try {
    const out = execFileSync('git', ['config', '--get', key], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    }).trim()
    return out || undefined
  } catch {
    // No git, or the key is unset: there is simply no default.
    return undefined
  }
}

/** Reads user.email and user.name from git config. */
export function readGitIdentity(cwd: string): GitIdentity {
  const email = gitConfig(cwd, 'user.email')
  const name = gitConfig(cwd, 'user.name')
  return { ...(email ? { email } : {}), ...(name ? { name } : {}) }
}
