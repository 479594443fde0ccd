"""Translate a procmailrc (and its INCLUDERC files) into one self-contained Pigeonhole Sieve script.

Semantics kept (procmailrc(5) vs RFC 5228 and Pigeonhole):
- A delivering recipe without `c` ends procmail: `action; stop;`. With `c` the action takes
  `:copy` and processing goes on.
- Falling off the end delivers to $DEFAULT: Sieve's implicit keep (INBOX) when DEFAULT is the
  mail root, else an explicit `fileinto`/`discard` at the end.
- Folders are resolved against $MAILDIR as procmail would and named relative to the mail root:
  `.A.B/`, `A/B/` and `A.B` all become the folder `A/B`; the root itself is INBOX.
- `/dev/null` -> `discard`; `! addr` -> `redirect`; `| prog args` -> `pipe` (vnd.dovecot.pipe,
  the program's basename looked up in sieve_pipe_bin_dir).
- Flags `A`/`a`/`E` chain recipes: the referenced recipe records that it ran in a variable.
- Nested `{ }` blocks become `if` blocks; assignments inside a block that change MAILDIR or
  DEFAULT make them unknown afterwards (they depend on whether the block ran).
- Weighted conditions with exponent 0 (`* w^0 re`) become the disjunction of the combinations
  whose total weight is positive.

Anything else that changes the outcome and has no Sieve equivalent is a `Gap` with its
file:line: filters (`f`), `e` (error branches), partial feeds (`h` or `b` alone), `\\/` captures
used later through $MATCH, values from backticks or the environment, program conditions (`?`),
pipelines and formail.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from cutover.errors import Problem
from cutover.parsers.procmailrc import Action, Assignment, Condition, Node, Recipe, parse
from cutover.rules import regex as procmail_regex

MAX_INCLUDE_DEPTH = 8
MAX_WEIGHTED = 8
UNKNOWN = object()  # a variable whose value the converter cannot know (backticks, env)
_SHELL_META = re.compile(r"[|;&<>`()]|\$\(")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}"
                       r"|([A-Za-z_][A-Za-z0-9_]*))")
_START_ENV = {"SHELL": "/bin/sh", "SENDMAIL": "/usr/sbin/sendmail", "SENDMAILFLAGS": "-oi",
              "LOCKEXT": ".lock"}


class Untranslatable(Exception):  # noqa: N818 - carries the reason for a Gap
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass
class Conversion:
    """The generated script, the gaps (with --allow-partial they are commented in the script),
    syntax problems (always fatal) and the mail root the folder names are relative to."""

    script: str
    gaps: list[Problem]
    syntax_problems: list[Problem]
    maildir_root: str
    files: list[str] = field(default_factory=list)


def folder_name(relative: str) -> str:
    """A folder path relative to the mail root -> its Sieve name (`.A.B/`, `A/B/`, `A.B` -> A/B)."""
    parts = [part for part in re.split(r"[/.]+", relative.strip("/")) if part]
    if not parts or (len(parts) == 1 and parts[0].lower() == "inbox"):
        return "INBOX"
    return "/".join(parts)


def sieve_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sieve_list(values: list[str]) -> str:
    return sieve_string(values[0]) if len(values) == 1 else \
        "[" + ", ".join(sieve_string(v) for v in values) + "]"


class _Converter:
    def __init__(self, home: Path, maildir_root: str | None, allow_partial: bool):
        self.home = str(home)
        self.allow_partial = allow_partial
        self.requires: set[str] = set()
        self.gaps: list[Problem] = []
        self.syntax: list[Problem] = []
        self.files: list[str] = []
        self.counter = itertools.count(1)
        self.explicit_root = maildir_root
        self.root = ""
        self.match_used = False

    # --- variables --------------------------------------------------------------------
    def expand(self, text: str, env: dict[str, object], line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(4)
            operator, default = match.group(2), match.group(3) or ""
            value = env.get(name)
            if value is UNKNOWN:
                raise Untranslatable(line, f"${name} comes from a command or the environment")
            if operator in (":-", "-"):
                if value is None or (operator == ":-" and value == ""):
                    return self.expand(default, env, line)
                return str(value)
            if operator in (":+", "+"):
                present = value is not None and (operator == "+" or value != "")
                return self.expand(default, env, line) if present else ""
            if name == "MATCH":
                raise Untranslatable(line, "$MATCH (a \\/ capture) has no Sieve equivalent here")
            if value is None:
                raise Untranslatable(line, f"${name} is not set in the rc file; its value "
                                           "would come from the environment")
            return str(value)

        if "`" in text:
            raise Untranslatable(line, "backticks run a command when procmail reads the rc")
        return _VARIABLE.sub(replace, text)

    def assign(self, node: Assignment, env: dict[str, object]) -> None:
        if node.value is None:
            env.pop(node.name, None)
            return
        try:
            env[node.name] = node.value if node.quoted else self.expand(node.value, env,
                                                                         node.line)
        except Untranslatable:
            env[node.name] = UNKNOWN

    # --- paths --------------------------------------------------------------------------
    def mail_root(self, nodes: list[Node], env: dict[str, object]) -> str:
        if self.explicit_root:
            root = self.explicit_root.replace("~", self.home, 1) if \
                self.explicit_root.startswith("~") else self.expand(self.explicit_root, env, 0)
            return posixpath.normpath(posixpath.join(self.home, root))
        probe = dict(env)
        for node in nodes:
            if isinstance(node, Assignment):
                self.assign(node, probe)
                if node.name == "MAILDIR" and isinstance(probe.get("MAILDIR"), str):
                    return posixpath.normpath(posixpath.join(self.home, str(probe["MAILDIR"])))
        return posixpath.join(self.home, "Maildir")

    def folder(self, raw: str, env: dict[str, object], line: int) -> str | None:
        """A folder as procmail resolves it -> Sieve name; None for /dev/null."""
        path = self.expand(raw, env, line)
        if path == "/dev/null":
            return None
        base = env.get("MAILDIR")
        if base is UNKNOWN:
            raise Untranslatable(line, "MAILDIR is unknown here (set from a command, or "
                                       "inside a block that may not run)")
        absolute = posixpath.normpath(posixpath.join(str(base), path.rstrip("/") or "/"))
        if path.endswith("/."):
            absolute = posixpath.normpath(absolute)
        relative = posixpath.relpath(absolute, self.root)
        if relative == ".." or relative.startswith("../"):
            raise Untranslatable(line, f"folder {path} is outside the mail root {self.root} "
                                       "(set --maildir-root)")
        return folder_name("" if relative == "." else relative)

    # --- conversion -------------------------------------------------------------------
    def convert_file(self, path: Path, env: dict[str, object], label: str) -> list[str]:
        self.files.append(str(path))
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise Untranslatable(0, f"cannot read {path}: {exc.strerror}") from None
        parsed = parse(text, label)
        self.syntax.extend(parsed.problems)
        self.match_used = self.match_used or "MATCH" in text
        self.root = self.mail_root(parsed.nodes, env)
        env.setdefault("DEFAULT", self.root + "/")
        return self.nodes(parsed.nodes, env, label, 0, indent=0)

    def nodes(self, nodes: list[Node], env: dict[str, object], file: str, depth: int,
              indent: int) -> list[str]:
        lines: list[str] = []
        recipes = [node for node in nodes if isinstance(node, Recipe)]
        references = _chain_references(recipes)
        variables: dict[int, str] = {}
        for index in sorted({target for pair in references.values() for target in pair
                             if target is not None}):
            variables[index] = f"pm_ran_{next(self.counter)}"
        recipe_index = -1
        for node in nodes:
            if isinstance(node, Assignment):
                lines += self.assignment(node, env, file, depth, indent)
                continue
            recipe_index += 1
            refs = references.get(recipe_index, (None, None))
            chain = {flag: variables[target] for flag, target in zip("AE", refs, strict=True)
                     if target is not None}
            try:
                lines += self.recipe(node, env, file, depth, indent, chain,
                                     variables.get(recipe_index))
            except Untranslatable as gap:
                lines += self.gap(file, gap.line or node.line, gap.reason, indent)
        return lines

    def gap(self, file: str, line: int, reason: str, indent: int) -> list[str]:
        self.gaps.append(Problem(file, line, reason))
        return [" " * indent + f"# UNTRANSLATED {file}:{line}: {reason}"]

    def assignment(self, node: Assignment, env: dict[str, object], file: str, depth: int,
                   indent: int) -> list[str]:
        if node.name == "INCLUDERC":
            try:
                target = self.expand(node.value or "", env, node.line)
                if depth >= MAX_INCLUDE_DEPTH:
                    raise Untranslatable(node.line, "INCLUDERC nested too deeply")
                path = Path(self.home) / target
                lines = [" " * indent + f"# {file}:{node.line}: INCLUDERC {target}"]
                return lines + self.nodes_of_include(path, env, depth, indent, node.line)
            except Untranslatable as gap:
                return self.gap(file, gap.line or node.line, gap.reason, indent)
        if node.name == "SWITCHRC":
            return self.gap(file, node.line, "SWITCHRC abandons the rc file; not translated",
                            indent)
        if node.name in ("HOST", "TRAP"):
            return self.gap(file, node.line, f"{node.name} changes how procmail ends", indent)
        self.assign(node, env)
        return []

    def nodes_of_include(self, path: Path, env: dict[str, object], depth: int, indent: int,
                         line: int) -> list[str]:
        if not path.is_file():
            raise Untranslatable(line, f"INCLUDERC file {path} does not exist")
        text = path.read_text(errors="replace")
        self.files.append(str(path))
        self.match_used = self.match_used or "MATCH" in text
        parsed = parse(text, str(path))
        self.syntax.extend(parsed.problems)
        return self.nodes(parsed.nodes, env, str(path), depth + 1, indent)

    def recipe(self, recipe: Recipe, env: dict[str, object], file: str, depth: int,
               indent: int, chain: dict[str, str], ran_variable: str | None) -> list[str]:
        flags = recipe.flags
        pad = " " * indent
        _refuse_flags(recipe)
        tests = self.conditions(recipe, env)
        if "A" in chain:
            tests.insert(0, f"string :is \"${{{chain['A']}}}\" \"1\"")
        if "E" in chain:
            tests.insert(0, f"not string :is \"${{{chain['E']}}}\" \"1\"")
        if chain or ran_variable:
            self.requires.add("variables")
        body: list[str] = []
        if ran_variable:
            body.append(f"set \"{ran_variable}\" \"1\";")
        if recipe.block is not None:
            inner_env = dict(env)
            inner = self.nodes(recipe.block, inner_env, file, depth, indent + 4)
            for name in ("MAILDIR", "DEFAULT"):
                if inner_env.get(name) != env.get(name):
                    env[name] = UNKNOWN
            for name, value in inner_env.items():
                if name not in ("MAILDIR", "DEFAULT"):
                    env[name] = value if env.get(name) == value else UNKNOWN
            body_lines = [pad + "    " + line for line in body] + inner
        else:
            body += self.action(recipe.action, env, "c" in flags)
            body_lines = [pad + "    " + line for line in body]
        header = f"{pad}# {file}:{recipe.line}: :0{flags}" + \
            (f":{recipe.lockfile}" if recipe.lockfile else "")
        condition = _combine(tests)
        if condition == "true" and recipe.block is None and not ran_variable:
            return [header] + [line[4:] for line in body_lines]
        return [header, f"{pad}if {condition} {{", *body_lines, f"{pad}}}"]

    def action(self, action: Action | None, env: dict[str, object], copy: bool) -> list[str]:
        if action is None:
            raise Untranslatable(0, "recipe has no action")
        if action.kind == "forward":
            return self.forward(action, env, copy)
        if action.kind == "pipe":
            return self.pipe(action, env, copy)
        lines: list[str] = []
        raw_folders = shlex.split(action.text) if action.text else []
        if not raw_folders:
            raise Untranslatable(action.line, "empty action")
        names = [self.folder(raw, env, action.line) for raw in raw_folders]
        for name in names:
            if name is None:
                continue
            self.requires.add("fileinto")
            if copy:
                self.requires.add("copy")
            create = "" if name == "INBOX" else ":create "
            if create:
                self.requires.add("mailbox")
            lines.append(f"fileinto {':copy ' if copy else ''}{create}{sieve_string(name)};")
        if all(name is None for name in names) and not copy:
            lines.append("discard;")
        if not copy:
            lines.append("stop;")
        return lines

    def forward(self, action: Action, env: dict[str, object], copy: bool) -> list[str]:
        words = shlex.split(self.expand(action.text, env, action.line))
        addresses = [word for word in words if not word.startswith("-")]
        if not addresses:
            raise Untranslatable(action.line, "forward without an address")
        for address in addresses:
            if "@" not in address:
                raise Untranslatable(action.line, f"{address!r} is a local name; Sieve redirect "
                                                  "needs a full address")
        if copy:
            self.requires.add("copy")
        lines = [f"redirect {':copy ' if copy else ''}{sieve_string(a)};" for a in addresses]
        return lines + ([] if copy else ["stop;"])

    def pipe(self, action: Action, env: dict[str, object], copy: bool) -> list[str]:
        if _SHELL_META.search(action.text):
            raise Untranslatable(action.line, "a shell pipeline or redirection cannot run "
                                              "from Sieve; wrap it in one program")
        words = shlex.split(self.expand(action.text, env, action.line))
        if not words:
            raise Untranslatable(action.line, "pipe without a program")
        program = posixpath.basename(words[0])
        if program == "formail":
            raise Untranslatable(action.line, "formail rewrites or deduplicates mail "
                                              "(a filter); Sieve cannot do that")
        self.requires.add("vnd.dovecot.pipe")
        if copy:
            self.requires.add("copy")
        arguments = f" {sieve_list(words[1:])}" if words[1:] else ""
        if len(words[1:]) == 1:
            arguments = f" [{sieve_string(words[1])}]"
        return [f"pipe {':copy ' if copy else ''}{sieve_string(program)}{arguments};"] + \
            ([] if copy else ["stop;"])

    # --- conditions -----------------------------------------------------------------------
    def conditions(self, recipe: Recipe, env: dict[str, object]) -> list[str]:
        plain = [c for c in recipe.conditions if c.weight is None]
        weighted = [c for c in recipe.conditions if c.weight is not None]
        tests = [self.condition(c, recipe.flags, env) for c in plain]
        if weighted:
            tests.append(self.scored(weighted, recipe.flags, env))
        return tests

    def scored(self, conditions: list[Condition], flags: str, env: dict[str, object]) -> str:
        if len(conditions) > MAX_WEIGHTED:
            raise Untranslatable(conditions[0].line, f"more than {MAX_WEIGHTED} weighted "
                                                     "conditions")
        for condition in conditions:
            assert condition.weight is not None
            if condition.weight[1] != 0:
                raise Untranslatable(condition.line, "a weight with exponent other than 0 "
                                                     "counts matches; Sieve cannot count")
        tests = [self.condition(c, flags, env, ignore_negation=True) for c in conditions]
        alternatives = []
        for outcome in itertools.product((True, False), repeat=len(conditions)):
            # a condition adds its weight when it is "successful": matched, or not matched if
            # negated
            score = sum(c.weight[0] for c, hit in zip(conditions, outcome, strict=True)
                        if hit != c.negated)
            if score > 0:
                alternatives.append(_combine([t if hit else f"not {t}"
                                              for t, hit in zip(tests, outcome, strict=True)]))
        if not alternatives:
            return "false"
        return alternatives[0] if len(alternatives) == 1 else \
            "anyof(" + ", ".join(alternatives) + ")"

    def condition(self, condition: Condition, flags: str, env: dict[str, object],
                  ignore_negation: bool = False) -> str:
        test = self.positive_test(condition, flags, env)
        return f"not {test}" if condition.negated and not ignore_negation else test

    def positive_test(self, condition: Condition, flags: str, env: dict[str, object]) -> str:
        line = condition.line
        if condition.kind == "size_over":
            return f"size :over {condition.text}"
        if condition.kind == "size_under":
            return f"size :under {condition.text}"
        if condition.kind == "program":
            raise Untranslatable(line, "a '?' condition runs a program; Sieve cannot")
        text = self.expand(condition.text, env, line) if condition.expand else condition.text
        case = ' :comparator "i;octet"' if "D" in flags else ""
        if condition.kind == "variable":
            sources = condition.variable
            if set(sources) - set("HB") or not sources:
                raise Untranslatable(line, f"tests ${condition.variable}, which depends on "
                                           "the environment at delivery time")
            return self.regex_test(text, "H" in sources, "B" in sources, case, line)
        header = "H" in flags or "B" not in flags
        return self.regex_test(text, header, "B" in flags, case, line)

    def regex_test(self, text: str, header: bool, body: bool, case: str, line: int) -> str:
        try:
            parts: list[str] = []
            if header:
                parts.append(self.header_test(text, case))
            if body:
                pattern, capture = procmail_regex.translate(text, multiline=True)
                self.check_capture(capture, line)
                self.requires.update({"body", "regex"})
                parts.append(f"body :raw{case} :regex {sieve_string(pattern)}")
        except procmail_regex.RegexUntranslatable as exc:
            raise Untranslatable(line, str(exc)) from None
        return parts[0] if len(parts) == 1 else "anyof(" + ", ".join(parts) + ")"

    def check_capture(self, capture: bool, line: int) -> None:
        if capture and self.match_used:
            raise Untranslatable(line, "\\/ captures text into $MATCH, which is used later")

    def header_test(self, text: str, case: str) -> str:
        _, capture = procmail_regex.translate(text)
        if capture and self.match_used:
            raise procmail_regex.RegexUntranslatable("\\/ captures text into $MATCH, which is "
                                                     "used later")
        tests = []
        for match in procmail_regex.header_match(text):
            if match.pattern is None:
                tests.append(f"exists {sieve_list(match.headers)}")
                continue
            self.requires.add("regex")
            if match.headers == ["envelope:from"]:
                self.requires.add("envelope")
                tests.append(f"envelope{case} :regex \"from\" {sieve_string(match.pattern)}")
            else:
                tests.append(f"header{case} :regex {sieve_list(match.headers)} "
                             f"{sieve_string(match.pattern)}")
        return tests[0] if len(tests) == 1 else "anyof(" + ", ".join(tests) + ")"

    def finish(self, env: dict[str, object], file: str) -> list[str]:
        default = env.get("DEFAULT")
        if default is UNKNOWN:
            return self.gap(file, 0, "DEFAULT is unknown at the end (set from a command or in a "
                                     "block that may not run)", 0)
        try:
            name = self.folder(str(default), {**env, "MAILDIR": self.root}, 0)
        except Untranslatable as gap:
            return self.gap(file, 0, f"DEFAULT: {gap.reason}", 0)
        if name == "INBOX":
            return [f"# {file}: falling off the end delivers to DEFAULT: implicit keep (INBOX)"]
        if name is None:
            return [f"# {file}: DEFAULT is /dev/null", "discard;"]
        self.requires.update({"fileinto", "mailbox"})
        return [f"# {file}: falling off the end delivers to DEFAULT",
                f"fileinto :create {sieve_string(name)};"]


def _refuse_flags(recipe: Recipe) -> None:
    flags = recipe.flags
    if "f" in flags:
        raise Untranslatable(recipe.line, "flag f filters the message through a program; "
                                          "Sieve cannot rewrite mail this way")
    if "e" in flags:
        raise Untranslatable(recipe.line, "flag e runs on the previous recipe's failure, "
                                          "which Sieve cannot observe")
    if recipe.block is not None and "c" in flags:
        raise Untranslatable(recipe.line, "flag c on a block forks a copy of procmail; "
                                          "Sieve has no equivalent")
    if recipe.block is None and ("h" in flags) != ("b" in flags):
        raise Untranslatable(recipe.line, "flag h or b alone hands on only part of the "
                                          "message; Sieve always hands on all of it")


def _combine(tests: list[str]) -> str:
    if not tests:
        return "true"
    return tests[0] if len(tests) == 1 else "allof(" + ", ".join(tests) + ")"


def _chain_references(recipes: list[Recipe]) -> dict[int, tuple[int | None, int | None]]:
    """For each recipe with A/a or E: the index of the recipe it depends on (A, E)."""
    references: dict[int, tuple[int | None, int | None]] = {}
    last_plain: int | None = None
    for index, recipe in enumerate(recipes):
        a_target = last_plain if ("A" in recipe.flags or "a" in recipe.flags) else None
        e_target = index - 1 if "E" in recipe.flags and index > 0 else None
        if a_target is not None or e_target is not None:
            references[index] = (a_target, e_target)
        if "A" not in recipe.flags and "a" not in recipe.flags:
            last_plain = index
    return references


def convert(rcfile: Path, home: Path | None = None, maildir_root: str | None = None,
            allow_partial: bool = False, label: str | None = None) -> Conversion:
    """Convert `rcfile`; INCLUDERC paths resolve relative to `home` (default: its directory).
    `label` names the rc file in comments and problems (default: its path)."""
    label = label or str(rcfile)
    home = (home or rcfile.parent).resolve()
    converter = _Converter(home, maildir_root, allow_partial)
    env: dict[str, object] = {**_START_ENV, "HOME": str(home), "MAILDIR": str(home)}
    try:
        body = converter.convert_file(rcfile, env, label)
    except Untranslatable as gap:
        converter.gaps.append(Problem(label, gap.line, gap.reason))
        body = []
    body += converter.finish(env, label)
    requires = sorted(converter.requires)
    header = [f"# Generated by cutover from {label} (procmail -> Sieve).",
              "# Each block names the procmailrc file:line it comes from."]
    if requires:
        header.append(f"require {sieve_list(requires)};")
    script = "\n".join(header + [""] + body) + "\n"
    return Conversion(script, converter.gaps, converter.syntax, converter.root, converter.files)
