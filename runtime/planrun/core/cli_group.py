"""The click groups of both programs: an interrupt inside a command reaches planrun.core.entry (the
one place that turns it into a line and exit 130); planrun's default command, shown in its help;
completion of an option's value that sees the words before it.

Light on purpose (click and planrun.core.entry only): planc's CLI uses it too, and planc must not
load the runtime to start.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from planrun.core.entry import Interrupted


class Program(click.Group):
    """A program's top-level group."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # click's main would print an empty line and raise Abort; entry says it in one line
            raise Interrupted from None


class CompletingCommand(click.Command):
    """While completing the value of an option (`planrun PLAN --only <TAB>`), the words before
    that option are parsed: click's parser stops at an option without its value, and the
    arguments before it (PLAN, which the candidates come from) would be lost."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing and args and self._takes_a_value(ctx, args[-1]):
            args = args[:-1]
        return super().parse_args(ctx, args)

    def _takes_a_value(self, ctx: click.Context, word: str) -> bool:
        return any(
            isinstance(param, click.Option) and word in param.opts and not param.is_flag
            for param in self.get_params(ctx)
        )


class DefaultCommandProgram(Program):
    """`planrun IR.json …` means `planrun run IR.json …`: the first word decides. A word that
    names no command, or an option of the default command (`planrun --only report PLAN`, where
    `report` is a step, not the command), starts the default command. `--help` says so."""

    command_class = CompletingCommand

    def __init__(self, *args: Any, default_command: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self._starts_default(ctx, args):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def _starts_default(self, ctx: click.Context, args: list[str]) -> bool:
        if not args:
            return False
        first = args[0]
        if not first.startswith("-"):
            return first not in self.commands
        # `--only=x`, and a short option with its value attached (`-j2`)
        name = first.partition("=")[0] if first.startswith("--") else first[:2]
        if name in _option_names(self.get_params(ctx)):  # --help, --version: the program's
            return False
        default = self.commands[self.default_command]
        return name in _option_names(default.get_params(ctx))

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's help, with the default command's usage under the group's (only in the help:
        a usage error's lines stay as they were)."""
        self.format_usage(ctx, formatter)
        pieces = self.commands[self.default_command].collect_usage_pieces(ctx)
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix="  or:  ")
        self.format_help_text(ctx, formatter)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        default = self.commands[self.default_command]
        short_help = default.short_help
        default.short_help = f"(default) {default.get_short_help_str(formatter.width)}"
        try:
            super().format_commands(ctx, formatter)
        finally:
            default.short_help = short_help

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Commands, and the default command's PLAN (files) or options. A file item first: bash
        then offers files only when no command matches; zsh and fish offer both."""
        items = super().shell_complete(ctx, incomplete)
        if not incomplete.startswith("-"):
            return [CompletionItem(incomplete, type="file"), *items]
        default = self.commands[self.default_command].shell_complete(ctx, incomplete)
        offered = {item.value for item in items}
        return [*items, *(item for item in default if item.value not in offered)]


def _option_names(params: list[click.Parameter]) -> set[str]:
    return {name for param in params for name in [*param.opts, *param.secondary_opts]}
