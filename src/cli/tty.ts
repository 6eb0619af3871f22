/** Whether output goes to a person at a terminal, where ink views are drawn instead of plain lines. */
export function isInteractiveOutput(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb'
}
