import type { Command } from 'commander';

/** The names of a command as typed after `ai-cost`: ['prices', 'set'] for `ai-cost prices set`. */
export function commandNames(command: Command): string[] {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) names.unshift(at.name());
  return names;
}
