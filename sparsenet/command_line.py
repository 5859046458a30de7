"""Command-line plumbing for cli.py: ``--plugin`` modules imported first, arguments converted to their annotated
types, unknown options refused before any work, and Ctrl-C / SIGTERM turned into one line and the shell's exit
codes."""
import difflib
import functools
import importlib
import importlib.util
import inspect
import os
import signal
import sys
from pathlib import Path

from .train.config import convert

SIMPLE_TYPES = (bool, int, float, str, tuple, bool | None, int | None, float | None, str | None)


def typed(command):
    """Give ``command`` its arguments as their annotated types, or stop in one line naming the argument
    (Fire passes whatever the text parses to: ``--seed abc`` is a string)."""
    signature = inspect.signature(command)

    @functools.wraps(command)
    def run(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            parameter = signature.parameters[name]
            if parameter.kind is parameter.POSITIONAL_OR_KEYWORD and parameter.annotation in SIMPLE_TYPES:
                try:
                    bound.arguments[name] = convert(name, parameter.annotation, value)
                except ValueError as error:
                    raise SystemExit(f"error: {error}")
        return command(*bound.args, **bound.kwargs)
    return run


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, like Ctrl-C (checkpoints are atomic, so any point is safe)."""


def _terminate(signum, frame):
    raise Terminated


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``) in the main thread."""
    signal.signal(signal.SIGTERM, _terminate)


def error_exit(message: str) -> SystemExit:
    """Write ``message`` and its newline to stderr in one write, then the exit to raise (code 1). Unlike
    ``SystemExit(message)``, whose text and newline go out in two writes, lines of processes that share
    stderr (torchrun's ranks) cannot interleave."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    return SystemExit(1)


def interrupted(stop: KeyboardInterrupt, advice: str, what: str = "interrupted", quiet: bool = False) -> SystemExit:
    """Print ``WHAT (Ctrl-C|SIGTERM); ADVICE`` on stderr (unless ``quiet``); the exit to raise: 130 for Ctrl-C,
    143 for SIGTERM."""
    terminated = isinstance(stop, Terminated)
    if not quiet:
        print(f"{what} ({'SIGTERM' if terminated else 'Ctrl-C'}); {advice}", file=sys.stderr)
    return SystemExit(143 if terminated else 130)


PLUGINS_VARIABLE = "SPARSENET_PLUGINS"  # the plugins a process loaded, inherited by the runs it starts


def load_plugins(argv: list[str]) -> list[str]:
    """Import every ``--plugin MODULE`` of ``argv`` (a module name, found from the working directory too, or a
    ``.py`` file) and those of ``$SPARSENET_PLUGINS`` (a parent's, ``os.pathsep``-separated) before any option is
    checked, so the methods and rules it registers are valid names; return ``argv`` without them. The loaded
    plugins (``.py`` files as absolute paths) are written back to ``$SPARSENET_PLUGINS``, so the processes this
    one starts (a sweep's runs, torchrun's workers) load them too."""
    rest, plugins, tokens = [], [], iter(argv)
    inherited = [p for p in os.environ.get(PLUGINS_VARIABLE, "").split(os.pathsep) if p]
    for token in tokens:
        if token == "--plugin" or token.startswith("--plugin="):
            plugins.append(token.partition("=")[2] or next(tokens, ""))
        else:
            rest.append(token)
    loaded = []
    for plugin in inherited + plugins:
        if plugin.endswith(".py"):
            plugin = str(Path(plugin).resolve())
        if plugin in loaded:
            continue
        try:
            if plugin.endswith(".py"):
                spec = importlib.util.spec_from_file_location(Path(plugin).stem, plugin)
                if spec is None or not Path(plugin).is_file():
                    raise ImportError("no such file")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                if os.getcwd() not in sys.path:
                    sys.path.append(os.getcwd())
                    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"),
                                                                             os.getcwd()]))
                importlib.import_module(plugin)
        except (ImportError, ValueError) as error:
            raise SystemExit(f"error: --plugin {plugin or '(missing)'}: {error or 'give a module name or a .py file'}")
        loaded.append(plugin)
    if loaded:
        os.environ[PLUGINS_VARIABLE] = os.pathsep.join(loaded)
    return rest


def check_flags(commands: type, argv: list[str]) -> None:
    """Refuse an unknown command or ``--option`` of the ``commands`` class in one line before anything runs
    (Fire reports unused arguments only after the command has run, e.g. after a whole training run).
    A command taking ``**options`` checks its own."""
    if not argv or argv[0].startswith("-"):
        return
    names = [name for name in vars(commands) if not name.startswith("_")]
    if argv[0] not in names:
        close = difflib.get_close_matches(argv[0], names, n=1)
        raise SystemExit(f"error: unknown command {argv[0]!r}; "
                         f"{f'did you mean {close[0]}?' if close else 'choose from ' + ', '.join(names)}")
    parameters = inspect.signature(getattr(commands, argv[0])).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    valid = set(parameters) - {"self"}
    for token in argv[1:]:
        if token == "--":
            break
        if not token.startswith("--") or token == "--help":
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        if name in valid or (name.startswith("no") and name[2:] in valid):  # Fire's --noflag
            continue
        close = difflib.get_close_matches(name, sorted(valid), n=1)
        hint = f"did you mean --{close[0]}?" if close else f"see python cli.py {argv[0]} --help"
        raise SystemExit(f"error: unknown option --{name} for {argv[0]}; {hint}")
