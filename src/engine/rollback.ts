/** Finds the approved-path spec that undoes a request: action rollback, rollbackOf that request. */
import { loadRepoConfig, displayPath } from '../config/repo.js'
import { UserError } from '../errors.js'
import { collectSpecFiles, validateSpecFile } from '../spec/validate.js'
import type { RecoveryRequest } from '../spec/schema.js'

export function findRollbackSpec(cwd: string, requestId: string, configPath?: string): RecoveryRequest {
  const loaded = loadRepoConfig(cwd, configPath)
  const matches: RecoveryRequest[] = []
  for (const abs of collectSpecFiles(loaded.repoRoot, loaded.repoRoot, [])) {
    const spec = validateSpecFile(abs, displayPath(cwd, abs), loaded, new Date()).parsed?.value
    if (spec?.action === 'rollback' && spec.rollbackOf === requestId) matches.push(spec)
  }
  if (matches.length === 0) {
    throw new UserError(
      'ROLLBACK_SPEC_MISSING',
      `No spec with action rollback and rollbackOf ${requestId} is in this repo.`,
      {
        next: `Create one with "nhi-recover new --action rollback --rollback-of ${requestId}", get it approved and merged, then run this again.`,
      },
    )
  }
  if (matches.length > 1) {
    throw new UserError(
      'ROLLBACK_SPEC_AMBIGUOUS',
      `${matches.length} specs roll back ${requestId}: ${matches.map((m) => m.id).join(', ')}.`,
      {
        next: 'Keep one rollback spec per request.',
      },
    )
  }
  return matches[0]!
}
