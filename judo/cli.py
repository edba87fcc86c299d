"""The `judo` command: one entry point, each subcommand implemented in the module that owns the idea.

Subcommand modules are imported only when run, so `judo --help` stays instant and a missing optional
dependency of one subcommand never breaks the others. Each module exposes `main(argv) -> int`.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line help). Order is the order shown by `judo --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "app": ("judo.app.server", "serve the inspection app (Gradio)"),
    "tiny": (
        "judo.synthetic.tiny_model",
        "build a tiny random Qwen2.5-VL checkpoint offline (tests, plumbing demos)",
    ),
    "synth": ("judo.synthetic.cli", "write a small synthetic dataset in MMAD's on-disk layout"),
    "data": ("judo.data.cli", "build the stage 1/2/3 training datasets with a teacher model"),
    "eval": ("judo.evaluate.run", "run an engine over an MMAD root with the 1-shot protocol"),
    "score": ("judo.evaluate.score_cli", "score eval records into the paper's table (official + strict)"),
    "compare": ("judo.evaluate.compare", "compare several eval runs side by side"),
    "inspect": ("judo.inspect_cli", "inspect one query/template pair from the command line"),
}


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: judo <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `judo <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from judo import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"judo: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
