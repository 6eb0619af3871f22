/** Entry point of the new-spec wizard. Imported lazily: ink and React load only when it runs. */
import { render } from 'ink'
import type { Answers } from '../new/fields.js'
import type { NewSpecSession } from '../new/new-spec.js'
import { NewSpecWizard } from './components/NewSpecWizard.js'

/** Runs the wizard in the terminal; resolves with complete answers, or undefined when cancelled. */
export async function renderNewSpecWizard(session: NewSpecSession): Promise<Answers | undefined> {
  let result: Answers | undefined
  const app = render(<NewSpecWizard session={session} onDone={(a) => (result = a)} />, { exitOnCtrlC: true })
  await app.waitUntilExit()
  return result
}
