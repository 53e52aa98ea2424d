"""Shell completion: the bash and zsh scripts, and ``specloop __complete LINE``, which they
call for the candidates (commands, sub-commands, options, config groups, a group's options
after ``group=``, spec keys after ``key.`` and their accepted values after ``key=``)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

BASH = r"""# bash completion for specloop: source <(specloop completion bash)
# or: specloop completion bash > ~/.local/share/bash-completion/completions/specloop
_specloop_complete() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local tok="${line##*[[:space:]]}"
    local pre="${tok%"$cur"}"
    local IFS=$'\n' c
    local -a cands
    cands=($(command specloop __complete "$line" 2>/dev/null))
    COMPREPLY=()
    for c in "${cands[@]}"; do
        COMPREPLY+=("${c#"$pre"}")
        [[ "$c" == *[=.,/] ]] && compopt -o nospace 2>/dev/null
    done
    return 0
}
complete -o default -o bashdefault -F _specloop_complete specloop
"""

ZSH = r"""#compdef specloop
# zsh completion for specloop: source <(specloop completion zsh)
# or: specloop completion zsh > "${fpath[1]}/_specloop"
_specloop() {
    local -a cands spaced nospace
    local c
    cands=("${(@f)$(command specloop __complete "$LBUFFER" 2>/dev/null)}")
    for c in $cands; do
        [[ -z "$c" ]] && continue
        if [[ "$c" == *[=.,/] ]]; then nospace+=("$c"); else spaced+=("$c"); fi
    done
    (( $#spaced )) && compadd -Q -- $spaced
    (( $#nospace )) && compadd -Q -S '' -- $nospace
    (( $#spaced + $#nospace )) || _files
}
if (( ! $+functions[compdef] )); then autoload -Uz compinit && compinit; fi
compdef _specloop specloop
"""


def script(shell: str) -> str:
    """The completion script for ``shell``."""
    return BASH if shell == "bash" else ZSH


# -- the parser --------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    """The ``specloop`` command tree: the engine's commands and every plugin's."""
    from specloop import command_parser

    return command_parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return dict(parser._option_string_actions)


def _walk(words: list[str]) -> tuple[argparse.ArgumentParser, list[str], str | None, list]:
    """The innermost (sub-)parser the words reach, its positional words so far, the option
    waiting for a value (if any), and the command path."""
    parser, path, positional = _parser(), [], []
    pending = None
    for word in words:
        if pending is not None:
            pending = None
            continue
        if word.startswith("-") and word != "-":
            action = _options(parser).get(word.split("=", 1)[0])
            if action is not None and action.nargs != 0 and "=" not in word:
                pending = action
            continue
        subs = _subcommands(parser)
        if subs and word in subs and not positional:
            parser = subs[word]
            path.append(word)
            continue
        positional.append(word)
    return parser, positional, pending, path


# -- spec keys -------------------------------------------------------------------------------
class Keys:
    """Spec keys and their values, read from the project's schema document."""

    def __init__(self, document: dict) -> None:
        self.doc = document

    def _resolve(self, schema: dict) -> dict:
        ref = schema.get("$ref", "")
        if ref.startswith("#/definitions/"):
            return self._resolve(self.doc["definitions"][ref.split("/", 2)[2]])
        return schema

    def properties(self, schema: dict) -> dict[str, dict]:
        """Every key a node may hold, across its kinds and alternatives."""
        schema = self._resolve(schema)
        out: dict[str, dict] = {}
        for key, value in schema.get("properties", {}).items():
            out.setdefault(key, value)
        for part in ("else",):
            if isinstance(schema.get(part), dict):
                for key, value in self.properties(schema[part]).items():
                    out.setdefault(key, value)
        for branch in schema.get("allOf", []):
            for key, value in self.properties(branch.get("then", {})).items():
                out.setdefault(key, value)
        for alt in schema.get("anyOf", []):
            for key, value in self.properties(alt).items():
                out.setdefault(key, value)
        return out

    def node(self, dotted: str) -> dict | None:
        """The schema of the node at ``a.b.c`` (``None`` if there is no such key)."""
        schema: dict = self.doc
        for part in [p for p in dotted.split(".") if p]:
            props = self.properties(schema)
            if part not in props:
                return None
            schema = props[part]
        return self._resolve(schema)

    def is_object(self, schema: dict) -> bool:
        schema = self._resolve(schema)
        types_ = schema.get("type")
        return bool(self.properties(schema)) or types_ == "object" or any(
            self.is_object(a) for a in schema.get("anyOf", []) if a.get("type") != "string")

    def values(self, schema: dict) -> list[str]:
        """The values a leaf accepts, when they are a closed set."""
        schema = self._resolve(schema)
        out: list[str] = []
        for s in [schema, *schema.get("anyOf", [])]:
            s = self._resolve(s)
            out += ["null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                    for v in s.get("enum", [])]
            if "const" in s and s["const"] != "none":
                out.append(str(s["const"]))
            if s.get("type") == "boolean" or "boolean" in (s.get("type") or []):
                out += ["true", "false"]
        return list(dict.fromkeys(out))


def _override(cur: str, project: Path) -> list[str]:
    from ._catalog import Catalog
    from ._jsonschema import SchemaBuilder

    sign = re.match(r"^(\+\+|\+|~)?", cur).group(0)
    body = cur[len(sign):]
    cat = Catalog(project)
    options = cat.options()
    keys = Keys(SchemaBuilder(cat).document())
    if "=" in body:
        key, value = body.split("=", 1)
        done, _, last = value.rpartition(",")
        done = done + "," if done else ""
        if key in options:
            values = list(options[key])
        else:
            node = keys.node(key)
            values = keys.values(node) if node is not None else []
        return [f"{sign}{key}={done}{v}" for v in values if v.startswith(last)]
    parent, _, leaf = body.rpartition(".")
    out = []
    if not parent:
        out += [f"{sign}{g}=" for g in cat.groups()]
    node = keys.node(parent) if parent else keys.doc
    if node is not None:
        for key, schema in keys.properties(node).items():
            if key in ("defaults", "hydra", "kind") and not parent:
                continue
            full = f"{parent}.{key}" if parent else key
            out.append(f"{sign}{full}." if keys.is_object(schema) and not keys.values(schema)
                       else f"{sign}{full}=")
    return sorted({c for c in out if c[len(sign):].startswith(body)})


def complete(line: str) -> list[str]:
    """The candidates for the last word of ``line`` (a ``specloop …`` command line cut at
    the cursor), each a whole word that starts with it."""
    cur = re.split(r"\s", line)[-1]
    head = line[:len(line) - len(cur)]
    try:
        words = shlex.split(head)
    except ValueError:
        words = head.split()
    words = words[1:]  # the program
    parser, positional, pending, path = _walk(words)
    project = Path(".")
    for i, word in enumerate(words[:-1]):
        if word == "--project":
            project = Path(words[i + 1])
        elif word.startswith("--project="):
            project = Path(word.split("=", 1)[1])
    if pending is not None:
        return [str(c) for c in pending.choices or [] if str(c).startswith(cur)]
    if cur.startswith("-"):
        return sorted(o for o in _options(parser) if o.startswith(cur))
    subs = _subcommands(parser)
    if subs and not positional:
        return sorted(s for s in subs if s.startswith(cur) and not s.startswith("__"))
    names = {a.dest: a for a in parser._actions if not a.option_strings}
    if "overrides" in names:
        return _override(cur, project)
    if path == ["options"] and not positional:
        from ._catalog import Catalog

        return [g for g in Catalog(project).groups() if g.startswith(cur)]
    for action in names.values():
        if action.choices and not isinstance(action, argparse._SubParsersAction):
            return [str(c) for c in action.choices if str(c).startswith(cur)]
    return []
