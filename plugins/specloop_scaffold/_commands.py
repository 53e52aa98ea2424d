"""The command-line side: ``new``, ``schema``, ``options``, ``completion`` and ``__complete``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TASKS = ("classification", "regression")


def _project_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=".", metavar="DIR",
                   help="project folder holding conf/ (default: current folder)")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the commands to ``specloop``."""
    new = subparsers.add_parser("new", help="start a project, or a plugin")
    nsub = new.add_subparsers(dest="new_cmd", metavar="{project,plugin}", required=True)
    p = nsub.add_parser("project", help="a project that validates and runs at once")
    p.add_argument("name", metavar="NAME", help="the project's folder and model name")
    p.add_argument("--task", choices=TASKS,
                   help="classification or regression (default: from the CSV's target, or "
                        "classification)")
    p.add_argument("--from-csv", metavar="PATH", dest="from_csv",
                   help="train on this CSV (copied to data/train.csv); default: a small "
                        "generated data set with incoming batches")
    p.add_argument("--target", metavar="COL",
                   help="the label column of --from-csv (default: a column named target, "
                        "label, y, class or outcome)")
    p.add_argument("--dir", default=".", metavar="PARENT",
                   help="where the project folder is made (default: current folder)")
    p.set_defaults(handler=cmd_new_project)
    p = nsub.add_parser("plugin", help="an installable plugin made from the template")
    p.add_argument("name", metavar="NAME",
                   help="the plugin's name: the package is specloop_NAME, the entry point NAME")
    p.add_argument("--dir", default=".", metavar="PARENT",
                   help="where the plugin folder (specloop-NAME) is made (default: current "
                        "folder)")
    p.set_defaults(handler=cmd_new_plugin)

    p = subparsers.add_parser("schema", help="the JSON Schema of the project's config, for "
                                             "YAML editors")
    _project_arg(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="FILE",
                     help="write the schema to FILE (default: print it)")
    out.add_argument("--write", action="store_true",
                     help="(re)write the project's schema/ folder, which its files and "
                          ".vscode/settings.json point at")
    p.set_defaults(handler=cmd_schema)

    p = subparsers.add_parser("options", help="a config group's options, one line each")
    p.add_argument("group", metavar="GROUP", nargs="?",
                   help="the group (model, data, retrain …); none: list the groups")
    _project_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_options)

    p = subparsers.add_parser("completion", help="print a shell completion script "
                                                 "(bash or zsh)")
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(handler=cmd_completion)

    p = subparsers.add_parser("__complete")  # no help: hidden; the completion scripts call it
    p.add_argument("line", nargs="?", default="", help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_complete)


def cmd_new_project(args: argparse.Namespace) -> int:
    """``specloop new project``."""
    from ._project import new_project

    path, notes = new_project(args.name, parent=Path(args.dir), task=args.task,
                              from_csv=args.from_csv, target=args.target)
    print(f"made {path}")
    for line in notes:
        print(f"  {line}")
    rel = path if not path.is_relative_to(Path.cwd()) else path.relative_to(Path.cwd())
    print(f"next: cd {rel} && specloop validate && specloop run && specloop loop")
    return 0


def cmd_new_plugin(args: argparse.Namespace) -> int:
    """``specloop new plugin``."""
    from ._plugin import new_plugin

    path, info = new_plugin(args.name, parent=Path(args.dir))
    print(f"made {path}")
    print(f"  distribution {info['dist']}, package {info['package']}, entry point "
          f"{info['entry_point']}, component retrain/{info['kind']}")
    print(f"next: pip install -e '{path}[test]' && (cd {path} && pytest) && specloop plugins")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """``specloop schema``."""
    from ._jsonschema import build, vscode_settings, write_project_schema

    project = Path(args.project)
    document = build(project)
    if args.write:
        for path in write_project_schema(project, document):
            print(f"wrote {path}")
        settings = project / ".vscode" / "settings.json"
        if not settings.exists():
            settings.parent.mkdir(exist_ok=True)
            settings.write_text(json.dumps(vscode_settings(document), indent=2) + "\n")
            print(f"wrote {settings}")
        return 0
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_options(args: argparse.Namespace) -> int:
    """``specloop options [GROUP]``."""
    from specloop import ConfigError

    from ._catalog import Catalog

    cat = Catalog(Path(args.project))
    options = cat.options()
    if args.group is None:
        rows = [{"group": g, "options": list(options.get(g, {}))} for g in cat.groups()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            width = max(len(r["group"]) for r in rows)
            for r in rows:
                print(f"{r['group']:<{width}}  {', '.join(r['options']) or '(no options)'}")
        return 0
    group = args.group.strip("/")
    if group not in options:
        import difflib

        close = difflib.get_close_matches(group, list(options), n=1)
        raise ConfigError(f"unknown config group {group!r}", key=group,
                          expected="one of: " + ", ".join(options),
                          fix=f"specloop options {close[0]}" if close else
                          "specloop options (lists the groups)",
                          extra=[("did you mean", close[0])] if close else [])
    rows = []
    for name, opt in options[group].items():
        kind, text = cat.describe(opt)
        source = opt.source if opt.source != "project" else \
            f"project {opt.path.relative_to(cat.project)}"
        if opt.shadows:
            source += " (hides " + ", ".join(opt.shadows) + ")"
        rows.append({"option": name, "kind": kind, "description": text, "from": source})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = [max(len(r[k]) for r in rows) for k in ("option", "kind")]
    for r in rows:
        print(f"{r['option']:<{w[0]}}  {r['kind']:<{w[1]}}  {r['description'] or '-'}"
              f"  [{r['from']}]")
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    """``specloop completion bash|zsh``."""
    from ._completion import script

    sys.stdout.write(script(args.shell))
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    """``specloop __complete LINE``: the candidates for the last word of LINE, one a line."""
    from ._completion import complete

    try:
        for candidate in complete(args.line):
            print(candidate)
    except Exception:  # a completion never prints a traceback into the user's shell
        return 0
    return 0
