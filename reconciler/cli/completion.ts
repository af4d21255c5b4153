// `bpfops completion bash|zsh|fish`: a completion script for the shell, made from the commands
// and options the command line defines (so it never falls behind them).
import type { Command } from "commander";

interface Spec {
  name: string;
  options: string[];
}

function specs(program: Command): Spec[] {
  return program.commands.map((c) => ({ name: c.name(), options: c.options.map((o) => o.long).filter((o): o is string => !!o) }));
}

export function completionScript(program: Command, shell: string): string {
  const cmds = specs(program);
  const names = cmds.map((c) => c.name).join(" ");
  if (shell === "bash") {
    return `# bpfops completion for bash: source <(bpfops completion bash)
_bpfops() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd=\${COMP_WORDS[1]}
  if [ "$COMP_CWORD" -eq 1 ]; then COMPREPLY=($(compgen -W "${names} --help --version" -- "$cur")); return; fi
  case "$cmd" in
${cmds.map((c) => `    ${c.name}) COMPREPLY=($(compgen -W "${c.options.join(" ")} --help" -- "$cur")) ;;`).join("\n")}
  esac
}
complete -o default -F _bpfops bpfops
`;
  }
  if (shell === "zsh") {
    return `#compdef bpfops
# bpfops completion for zsh: bpfops completion zsh > "\${fpath[1]}/_bpfops"
_bpfops() {
  if (( CURRENT == 2 )); then compadd -- ${names} --help --version; return; fi
  case $words[2] in
${cmds.map((c) => `    ${c.name}) compadd -- ${c.options.join(" ")} --help ;;`).join("\n")}
  esac
  _files
}
compdef _bpfops bpfops
`;
  }
  if (shell === "fish") {
    return [
      "# bpfops completion for fish: bpfops completion fish > ~/.config/fish/completions/bpfops.fish",
      ...cmds.map((c) => `complete -c bpfops -n __fish_use_subcommand -a ${c.name} -d ${JSON.stringify(program.commands.find((x) => x.name() === c.name)!.description())}`),
      ...cmds.flatMap((c) => c.options.map((o) => `complete -c bpfops -n "__fish_seen_subcommand_from ${c.name}" -l ${o.slice(2)}`)),
      "",
    ].join("\n");
  }
  throw new Error(`completion for ${shell}: bash, zsh or fish`);
}
