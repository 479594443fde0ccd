"""Translate a procmailrc (and its INCLUDERC files) into one self-contained Pigeonhole Sieve script.

Semantics kept (procmailrc(5) vs RFC 5228 and Pigeonhole):
- A delivering recipe without `c` ends procmail: `action; stop;`. With `c` the action takes
  `:copy` and processing goes on.
- The mail root folder names are relative to is MAILDIR as it stands before the first recipe
  (INCLUDERC files read on the way count), `$HOME` when the rc never sets it, as in procmail;
  `--maildir-root` overrides it. `.A.B/`, `A/B/` and `A.B` all become the folder `A/B`; the
  root itself is INBOX.
- DEFAULT is the inbox: falling off the end is Sieve's implicit keep, and a folder that is the
  DEFAULT of the moment, the system mailbox (`/var/mail/$LOGNAME`, ORGMAIL) or the mail root
  is INBOX. DEFAULT=/dev/null discards.
- `/dev/null` -> `discard`; `! addr` -> `redirect`; `| prog args` -> `pipe` (vnd.dovecot.pipe,
  the program's basename looked up in sieve_pipe_bin_dir).
- `f` filters -> `filter` (vnd.dovecot.filter): the program's output replaces the message; a
  failing program leaves it unchanged, as procmail's `w` does. `formail -A/-a/-i/-I` header
  edits become `addheader`/`deleteheader` (editheader).
- `h` or `b` alone -> the generated `<basename>.head` / `.body` program (see programs.py),
  written with the script (`Conversion.programs`).
- `:0 Wh | formail -D N cache` (and `* ? formail -D N cache`) -> the `duplicate` test.
- `\\/` captures -> a regex group; $MATCH (and variables assigned from it) -> a Sieve variable.
- Flags `A`/`a`/`E`/`e` chain recipes through variables: the referenced recipe records that it
  ran, that its action succeeded, or that it failed; a pipe followed by `e` runs through
  `execute :pipe`, whose test result is the program's exit status (spec-bosch-sieve-extprograms
  section 8), which is what `e` observes.
- Nested `{ }` blocks become `if` blocks; assignments inside a block that change MAILDIR or
  DEFAULT make them unknown afterwards (they depend on whether the block ran).
- Weighted conditions with exponent 0 (`* w^0 re`) become the disjunction of the combinations
  whose total weight is positive. The line-count idiom (`* -1^0`, `* 1^1 ^.*$` on the body,
  `$=` in the action) runs the generated `procmail-lines` through `execute :pipe :output`.
- Conditions Sieve's header tests would decide differently (RFC 2047 words, folding, text
  right after the colon) run the generated `procmail-match` on the raw header.
- `HOST` (procmail stops, the mail is gone) -> `discard; stop;`.

Anything else that changes the outcome and has no Sieve equivalent is a `Gap` with its
file:line: program conditions (`?`), values only known at delivery (`$?`, backticks, the
environment), shell pipelines in actions, scoring with a non-zero exponent, EXITCODE, SWITCHRC.
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
from cutover.rules import programs as part_programs
from cutover.rules import regex as procmail_regex

MAX_INCLUDE_DEPTH = 8
MAX_WEIGHTED = 8
UNKNOWN = object()  # a variable whose value the converter cannot know (backticks, env)
SYSTEM_SPOOLS = ("/var/mail", "/var/spool/mail")
SYSTEM_MAILBOX = "/var/mail/$LOGNAME"
MATCH_VARIABLE = "pm_match"
LINES_VARIABLE = "pm_score"
# a variable known only when the script runs, inside an expanded value: \0name\0 -> ${name}
_RUNTIME = re.compile("\x00([A-Za-z_][A-Za-z0-9_]*)\x00")
_SHELL_META = re.compile(r"[|;&<>`()]|\$\(")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}"
                       r"|\\?([A-Za-z_][A-Za-z0-9_]*|[?=$#0-9]))")
_START_ENV = {"SHELL": "/bin/sh", "SENDMAIL": "/usr/sbin/sendmail", "SENDMAILFLAGS": "-oi",
              "LOCKEXT": ".lock", "ORGMAIL": SYSTEM_MAILBOX, "DEFAULT": SYSTEM_MAILBOX,
              "SHELLMETAS": "&|<>~;?*[", "LINEBUF": "2048"}
# what a delivery agent may put in procmail's environment (Postfix local(8), Exim, Sendmail,
# procmail itself): a variable the rc never sets may come from there; any other is unset, which
# procmail reads as empty
DELIVERY_ENVIRONMENT = frozenset({
    "HOME", "USER", "LOGNAME", "SHELL", "PATH", "TZ", "LANG", "LC_ALL", "MAIL", "TERM",
    "SENDER", "RECIPIENT", "ORIGINAL_RECIPIENT", "EXTENSION", "DOMAIN", "LOCAL", "LOCAL_PART",
    "LOCAL_PART_PREFIX", "LOCAL_PART_SUFFIX", "CLIENT_ADDRESS", "CLIENT_HOSTNAME",
    "CLIENT_HELO", "CLIENT_PROTOCOL", "SASL_METHOD", "SASL_SENDER", "SASL_USERNAME", "ENVID",
    "MESSAGE_ID", "RETURN_PATH", "QUALIFY_DOMAIN", "HOST", "LASTFOLDER", "MATCH", "ARGV",
    "PROCMAIL_VERSION"})
_HEADER_EDIT = {"-A": "append", "-a": "add-if-missing", "-i": "rename-old", "-I": "replace"}
_PROTECTED_HEADERS = frozenset({"received", "auto-submitted"})  # editheader refuses them


class Untranslatable(Exception):  # noqa: N818 - carries the reason for a Gap
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass
class Conversion:
    """The generated script, the gaps (with --allow-partial they are commented in the script),
    syntax problems (always fatal), warnings (what procmail skips too), the mail root the folder
    names are relative to, and what the verifier's sandbox needs to stand in for a real home:
    the rc files, the paths that are the inbox, the directories a real home has, and the
    generated part programs (name -> text)."""

    script: str
    gaps: list[Problem]
    syntax_problems: list[Problem]
    maildir_root: str
    files: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    rcfile: str = ""
    home: str = ""
    inbox_paths: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    programs: dict[str, str] = field(default_factory=dict)


def folder_name(relative: str) -> str:
    """A folder path relative to the mail root -> its Sieve name (`.A.B/`, `A/B/`, `A.B` -> A/B)."""
    parts = [part for part in re.split(r"[/.]+", relative.strip("/")) if part]
    if not parts or (len(parts) == 1 and parts[0].lower() == "inbox"):
        return "INBOX"
    return "/".join(parts)


def is_inbox(path: str, inbox_paths: set[str] | list[str]) -> bool:
    """Whether procmail delivering to `path` delivers to the inbox (DEFAULT, the mail root, the
    system mailbox)."""
    normal = posixpath.normpath(path)
    return normal in inbox_paths or posixpath.dirname(normal) in SYSTEM_SPOOLS


def sieve_string(value: str) -> str:
    escaped = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _RUNTIME.sub(lambda m: "${" + m.group(1) + "}", escaped)


def sieve_list(values: list[str]) -> str:
    return sieve_string(values[0]) if len(values) == 1 else \
        "[" + ", ".join(sieve_string(v) for v in values) + "]"


def _runtime(name: str) -> str:
    return f"\x00{name}\x00"


@dataclass
class _Chain:
    """Variables a recipe sets for the recipes that depend on it (A, a, E, e)."""

    ran: str | None = None  # its conditions matched (A; E tests the opposite)
    ok: str | None = None  # its action succeeded (a)
    failed: str | None = None  # its action was tried and failed (e)


class _Converter:
    def __init__(self, home: Path, maildir_root: str | None, allow_partial: bool):
        self.home = str(home)
        self.allow_partial = allow_partial
        self.requires: set[str] = set()
        self.gaps: list[Problem] = []
        self.syntax: list[Problem] = []
        self.warnings: list[Problem] = []
        self.files: list[str] = []
        self.counter = itertools.count(1)
        self.explicit_root = maildir_root
        self.root = ""
        self.inbox_paths: set[str] = set()
        self.directories: set[str] = set()
        self.programs: dict[str, str] = {}
        self.default_line = (self.home, 0)
        self.file = ""
        self.warned: set[tuple[str, str]] = set()

    def never_set(self, name: str, line: int) -> None:
        if (self.file, name) not in self.warned:
            self.warned.add((self.file, name))
            self.warnings.append(Problem(self.file, line, f"${name} is never set (nor given by "
                                                          "a delivery agent): procmail reads it "
                                                          "as empty"))

    # --- variables --------------------------------------------------------------------
    def expand(self, text: str, env: dict[str, object], line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(4)
            operator, default = match.group(2), match.group(3) or ""
            if (name in "?=$#" and name not in env) or name.isdigit():
                raise Untranslatable(line, f"${name} is only known when procmail runs")
            if name not in env and not operator:
                if name == "MATCH":
                    raise Untranslatable(line, "$MATCH is used before any \\/ captured it")
                if name in DELIVERY_ENVIRONMENT:
                    raise Untranslatable(line, f"${name} is not set in the rc file; its value "
                                               "would come from the environment")
                self.never_set(name, line)
                return ""
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
            return "" if value is None else str(value)

        if "`" in text:
            raise Untranslatable(line, "backticks run a command when procmail reads the rc")
        return _VARIABLE.sub(replace, text)

    def assign(self, node: Assignment, env: dict[str, object]) -> list[str]:
        """Apply an assignment; the Sieve lines it needs (a value known only at runtime)."""
        if node.value is None:
            env[node.name] = None  # unset: expands to nothing
            return []
        try:
            value = node.value if node.quoted else self.expand(node.value, env, node.line)
        except Untranslatable:
            env[node.name] = UNKNOWN
            return []
        if _RUNTIME.search(value):
            variable = f"pm_{node.name}"
            env[node.name] = _runtime(variable)
            self.requires.add("variables")
            return [f"set {sieve_string(variable)} {sieve_string(value)};"]
        env[node.name] = value
        return []

    # --- paths --------------------------------------------------------------------------
    def absolute(self, path: str, env: dict[str, object], line: int) -> str:
        base = env.get("MAILDIR")
        if base is UNKNOWN:
            raise Untranslatable(line, "MAILDIR is unknown here (set from a command, or "
                                       "inside a block that may not run)")
        absolute = posixpath.normpath(posixpath.join(str(base), path or "."))
        return absolute

    def folder(self, raw: str, env: dict[str, object], line: int) -> str | None:
        """A folder as procmail resolves it -> Sieve name; None for /dev/null."""
        path = self.expand(raw, env, line)
        if path == "/dev/null":
            return None
        absolute = self.absolute(path, env, line)
        if not _RUNTIME.search(posixpath.dirname(absolute)):
            self.directories.add(posixpath.dirname(absolute))
        default = env.get("DEFAULT")
        inbox = set(self.inbox_paths)
        if isinstance(default, str):
            inbox.add(self.absolute(default, env, line))
        if is_inbox(absolute, inbox):
            return "INBOX"
        relative = posixpath.relpath(absolute, self.root)
        if relative == ".." or relative.startswith("../"):
            raise Untranslatable(line, f"folder {path} is outside the mail root {self.root} "
                                       "(set --maildir-root)")
        return folder_name("" if relative == "." else relative)

    # --- conversion -------------------------------------------------------------------
    def read(self, path: Path, label: str, line: int = 0) -> list[Node]:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise Untranslatable(line, f"cannot read {path}: {exc.strerror}") from None
        self.files.append(str(path))
        parsed = parse(text, label)
        self.syntax.extend(parsed.problems)
        self.warnings.extend(parsed.warnings)
        return parsed.nodes

    def convert_file(self, path: Path, env: dict[str, object], label: str) -> list[str]:
        nodes = self.read(path, label)
        self.root = self.mail_root(nodes, env)
        self.inbox_paths.update({self.root, SYSTEM_MAILBOX})
        self.directories.add(self.root)
        return self.nodes(nodes, env, label, 0, indent=0)

    def mail_root(self, nodes: list[Node], env: dict[str, object]) -> str:
        """MAILDIR as it stands before the first recipe (following INCLUDERC), else $HOME."""
        if self.explicit_root:
            root = self.explicit_root.replace("~", self.home, 1) if \
                self.explicit_root.startswith("~") else self.expand(self.explicit_root, env, 0)
            return posixpath.normpath(posixpath.join(self.home, root))
        probe = dict(env)
        maildir = self._maildir_before_recipes(nodes, probe, 0)
        return posixpath.normpath(posixpath.join(self.home, maildir)) \
            if isinstance(maildir, str) else self.home

    def _maildir_before_recipes(self, nodes: list[Node], env: dict[str, object],
                                depth: int) -> object:
        for node in nodes:
            if isinstance(node, Recipe):
                return env.get("MAILDIR")
            if node.name == "INCLUDERC" and depth < MAX_INCLUDE_DEPTH:
                try:
                    target = Path(self.home) / self.expand(node.value or "", env, node.line)
                    included = parse(target.read_text(errors="replace")).nodes
                except (Untranslatable, OSError):
                    continue
                found = self._maildir_before_recipes(included, env, depth + 1)
                if any(isinstance(n, Recipe) for n in included):
                    return found
                continue
            self.assign(node, env)
        return env.get("MAILDIR")

    def nodes(self, nodes: list[Node], env: dict[str, object], file: str, depth: int,
              indent: int) -> list[str]:
        self.file = file
        lines: list[str] = []
        recipes = [node for node in nodes if isinstance(node, Recipe)]
        chains = self.chains(recipes)
        recipe_index = -1
        for node in nodes:
            if isinstance(node, Assignment):
                lines += self.assignment(node, env, file, depth, indent)
                self.file = file
                continue
            recipe_index += 1
            try:
                lines += self.recipe(node, env, file, depth, indent, chains, recipe_index)
            except Untranslatable as gap:
                lines += self.gap(file, gap.line or node.line, gap.reason, indent)
                if node.action is not None and node.action.kind == "capture":
                    env[node.action.variable] = UNKNOWN
                env.pop("=", None)  # a line count of a recipe left out is nobody's $=
        return lines

    def chains(self, recipes: list[Recipe]) -> list[tuple[_Chain, dict[str, str]]]:
        """For each recipe: the variables it sets, and the tests it needs from others
        ({flag: variable})."""
        own = [_Chain() for _ in recipes]
        needs: list[dict[str, str]] = [{} for _ in recipes]
        last_plain: int | None = None
        for index, recipe in enumerate(recipes):
            flags = recipe.flags
            if ("A" in flags or "a" in flags) and last_plain is not None:
                target = own[last_plain]
                if "a" in flags:
                    target.ok = target.ok or f"pm_ok_{next(self.counter)}"
                    needs[index]["a"] = target.ok
                else:
                    target.ran = target.ran or f"pm_ran_{next(self.counter)}"
                    needs[index]["A"] = target.ran
            if index > 0 and "E" in flags:
                target = own[index - 1]
                target.ran = target.ran or f"pm_ran_{next(self.counter)}"
                needs[index]["E"] = target.ran
            if index > 0 and "e" in flags:
                target = own[index - 1]
                target.failed = target.failed or f"pm_failed_{next(self.counter)}"
                needs[index]["e"] = target.failed
            if "A" not in flags and "a" not in flags:
                last_plain = index
        return list(zip(own, needs, strict=True))

    def gap(self, file: str, line: int, reason: str, indent: int) -> list[str]:
        self.gaps.append(Problem(file, line, reason))
        return [" " * indent + f"# UNTRANSLATED {file}:{line}: {reason}"]

    def assignment(self, node: Assignment, env: dict[str, object], file: str, depth: int,
                   indent: int) -> list[str]:
        pad = " " * indent
        if node.name == "INCLUDERC":
            try:
                target = self.expand(node.value or "", env, node.line)
                if depth >= MAX_INCLUDE_DEPTH:
                    raise Untranslatable(node.line, "INCLUDERC nested too deeply")
                path = Path(self.home) / target
                lines = [pad + f"# {file}:{node.line}: INCLUDERC {target}"]
                return lines + self.nodes_of_include(path, env, depth, indent, node.line)
            except Untranslatable as gap:
                return self.gap(file, gap.line or node.line, gap.reason, indent)
        if node.name == "SWITCHRC":
            return self.gap(file, node.line, "SWITCHRC abandons the rc file; not translated",
                            indent)
        if node.name == "TRAP":
            return self.gap(file, node.line, "TRAP runs a command when procmail ends", indent)
        if node.name == "HOST":
            return self.host(env, file, node.line, indent)
        if node.value is not None and "`" in node.value and not node.quoted:
            env[node.name] = UNKNOWN
            if node.name == "DEFAULT":
                self.default_line = (file, node.line)
            return self.gap(file, node.line, f"{node.name}=`...` runs a command when procmail "
                                             "reads this line; Sieve runs none", indent)
        before = env.get("MAILDIR")
        lines = self.assign(node, env)
        if node.name == "MAILDIR" and isinstance(env.get("MAILDIR"), str):
            # a relative MAILDIR is relative to the directory procmail is in: the last MAILDIR
            base = before if isinstance(before, str) else self.home
            maildir = posixpath.normpath(posixpath.join(base, str(env["MAILDIR"])))
            env["MAILDIR"] = maildir
            self.directories.add(maildir)
        if node.name == "DEFAULT" and isinstance(env.get("DEFAULT"), str):
            self.default_line = (file, node.line)
            if env["DEFAULT"] != "/dev/null":
                try:
                    self.inbox_paths.add(self.absolute(str(env["DEFAULT"]), env, node.line))
                except Untranslatable:
                    pass
        elif node.name == "DEFAULT":
            self.default_line = (file, node.line)
        return [pad + line for line in lines]

    def host(self, env: dict[str, object], file: str, line: int, indent: int) -> list[str]:
        """Assigning HOST (anything but this machine's name) stops procmail: the mail is gone,
        unless EXITCODE asks the MTA to try again."""
        code = env.get("EXITCODE")
        if code not in (None, "", "0"):
            return self.gap(file, line, f"EXITCODE={code} then HOST: procmail exits {code} so "
                                        "the MTA tries again later; Sieve cannot defer mail",
                            indent)
        pad = " " * indent
        return [pad + f"# {file}:{line}: HOST ends procmail; the message is dropped",
                pad + "discard;", pad + "stop;"]

    def nodes_of_include(self, path: Path, env: dict[str, object], depth: int, indent: int,
                         line: int) -> list[str]:
        if not path.is_file():
            raise Untranslatable(line, f"INCLUDERC file {path} does not exist")
        nodes = self.read(path, str(path), line)
        return self.nodes(nodes, env, str(path), depth + 1, indent)

    def recipe(self, recipe: Recipe, env: dict[str, object], file: str, depth: int,
               indent: int, chains: list[tuple[_Chain, dict[str, str]]], index: int
               ) -> list[str]:
        flags = recipe.flags
        pad = " " * indent
        own, needs = chains[index]
        if recipe.block is not None and "c" in flags:
            raise Untranslatable(recipe.line, "flag c on a block forks a copy of procmail; "
                                              "Sieve has no equivalent")
        tests, capture = self.conditions(recipe, env)
        for flag, variable in needs.items():
            test = f"string :is \"${{{variable}}}\" \"1\""
            tests.insert(0, f"not {test}" if flag == "E" else test)
        if needs or own.ran or own.ok or own.failed:
            self.requires.add("variables")
        body: list[str] = []
        if own.ran:
            body.append(f"set \"{own.ran}\" \"1\";")
        if capture:
            self.requires.add("variables")
            body.append(f"set \"{MATCH_VARIABLE}\" \"${{{capture}}}\";")
            env["MATCH"] = _runtime(MATCH_VARIABLE)
        if recipe.block is not None:
            if own.ok:
                body.append(f"set \"{own.ok}\" \"1\";")
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
            body += self.action(recipe, env, own)
            body_lines = [pad + "    " + line for line in body]
        env.pop("=", None)  # the line count is this recipe's; procmail's $= elsewhere is not
        header = f"{pad}# {file}:{recipe.line}: :0{flags}" + \
            (f":{recipe.lockfile}" if recipe.lockfile else "")
        condition = _combine(tests)
        if condition == "false":
            return [header, f"{pad}# never matches"]
        if condition == "true" and recipe.block is None:
            return [header] + [line[4:] for line in body_lines]
        return [header, f"{pad}if {condition} {{", *body_lines, f"{pad}}}"]

    # --- actions ------------------------------------------------------------------------
    def action(self, recipe: Recipe, env: dict[str, object], own: _Chain) -> list[str]:
        action, flags = recipe.action, recipe.flags
        if action is None:
            raise Untranslatable(recipe.line, "recipe has no action")
        part = _part(flags)
        if action.kind == "capture":
            raise Untranslatable(action.line, f"{action.variable}=| takes a program's output, "
                                              "known only when procmail runs")
        if action.kind == "pipe":
            return self.pipe(recipe, action, env, own)
        if "f" in flags:
            raise Untranslatable(action.line, "flag f needs a program to filter through")
        if part:
            raise Untranslatable(action.line, f"flag {part[0]} alone writes only the {part} "
                                              "of the message; Sieve delivers whole messages")
        if own.failed:
            raise Untranslatable(action.line, "the next recipe (flag e) runs when this action "
                                              "fails, which Sieve cannot observe")
        copy = "c" in flags
        lines = self.forward(action, env, copy) if action.kind == "forward" else \
            self.store(action, env, copy)
        if own.ok:
            lines.insert(0, f"set \"{own.ok}\" \"1\";")
        return lines

    def store(self, action: Action, env: dict[str, object], copy: bool) -> list[str]:
        lines: list[str] = []
        raw_folders = _words(action.text, action.line)
        if not raw_folders:
            raise Untranslatable(action.line, "empty action")
        names = [self.folder(raw, env, action.line) for raw in raw_folders]
        for name in names:
            if name is None:
                continue
            if copy:
                self.requires.add("copy")
            self.requires.add("fileinto")
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
        words = _words(self.expand(action.text, env, action.line), action.line)
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

    def pipe(self, recipe: Recipe, action: Action, env: dict[str, object], own: _Chain
             ) -> list[str]:
        flags = recipe.flags
        if _SHELL_META.search(_unquoted(action.text)):
            raise Untranslatable(action.line, "a shell pipeline or redirection cannot run "
                                              "from Sieve; wrap it in one program")
        words = _words(self.expand(action.text, env, action.line), action.line)
        if not words:
            raise Untranslatable(action.line, "pipe without a program")
        if any(_RUNTIME.search(word) for word in words[:1]):
            raise Untranslatable(action.line, "the program's name is only known when the "
                                              "message arrives")
        program = posixpath.basename(words[0])
        if program == "formail" and (cache := _duplicate_cache(words[1:])):
            return self.duplicate(recipe, action, own, cache)
        if program == "formail" and "f" in flags and _part(flags) != "body" and \
                (edits := header_edits(words[1:])):
            if own.failed:
                raise Untranslatable(action.line, "the next recipe (flag e) runs when formail "
                                                  "fails; editheader does not fail that way")
            return ([f"set \"{own.ok}\" \"1\";"] if own.ok else []) + \
                self.header_edits(edits, action.line)
        part = _part(flags)
        name = program + (f".{part}" if part else "")
        if part:
            self.part_program(name, part, "filter" if "f" in flags else "pipe", words[0], env,
                              action.line)
        arguments = f" {_arguments(words[1:])}" if words[1:] else ""
        if "f" in flags:
            self.requires.add("vnd.dovecot.filter")
            command = f"filter {sieve_string(name)}{arguments}"
            if not own.ok and not own.failed:
                return [f"{command};"]
            return _branches(command, [f"set \"{own.ok}\" \"1\";"] if own.ok else [],
                             [f"set \"{own.failed}\" \"1\";"] if own.failed else [])
        copy = "c" in flags
        if own.failed:
            # `e` observes the program's exit status: `execute :pipe` as a test gives it
            self.requires.add("vnd.dovecot.execute")
            success = ([f"set \"{own.ok}\" \"1\";"] if own.ok else []) + \
                ([] if copy else ["discard;", "stop;"])
            return _branches(f"execute :pipe {sieve_string(name)}{arguments}", success,
                             [f"set \"{own.failed}\" \"1\";"])
        self.requires.add("vnd.dovecot.pipe")
        if copy:
            self.requires.add("copy")
        lines = [f"pipe {':copy ' if copy else ''}{sieve_string(name)}{arguments};"]
        if own.ok:
            lines.insert(0, f"set \"{own.ok}\" \"1\";")
        return lines + ([] if copy else ["stop;"])

    def duplicate(self, recipe: Recipe, action: Action, own: _Chain, cache: str) -> list[str]:
        """`formail -D N cache` succeeds when the Message-ID was seen before: Sieve's
        `duplicate` test (RFC 7352), which tracks Message-ID by default."""
        flags = recipe.flags
        if "w" not in flags.lower():
            raise Untranslatable(action.line, "formail -D without w: procmail ignores its "
                                              "answer and drops every message")
        if "f" in flags:
            raise Untranslatable(action.line, "formail -D as a filter")
        self.requires.add("duplicate")
        success = [f"set \"{own.ok}\" \"1\";"] if own.ok else []
        if "c" not in flags:
            success += ["discard;", "stop;"]
        failure = [f"set \"{own.failed}\" \"1\";"] if own.failed else []
        return _branches(_duplicate_test(cache), success, failure)

    def header_edits(self, edits: list[tuple[str, str, str]], line: int) -> list[str]:
        self.requires.add("editheader")
        lines: list[str] = []
        for mode, name, value in edits:
            if name.lower() in _PROTECTED_HEADERS:
                raise Untranslatable(line, f"editheader may not change {name} (Pigeonhole "
                                           "protects it)")
            field_name, field_value = sieve_string(name), sieve_string(value)
            if mode == "append":
                lines.append(f"addheader :last {field_name} {field_value};")
            elif mode == "add-if-missing":
                lines.append(f"if not exists {field_name} {{ addheader :last {field_name} "
                             f"{field_value}; }}")
            elif mode == "replace":
                lines.append(f"deleteheader {field_name};")
                if value:
                    lines.append(f"addheader :last {field_name} {field_value};")
            else:  # rename-old: the existing field becomes Old-Name
                self.requires.add("variables")
                old = sieve_string("Old-" + name)
                lines += [f"if header :matches {field_name} \"*\" {{",
                          f"    addheader :last {old} \"${{1}}\";",
                          f"    deleteheader {field_name};", "}"]
                if value:
                    lines.append(f"addheader :last {field_name} {field_value};")
        return lines

    def part_program(self, name: str, part: str, kind: str, command: str,
                     env: dict[str, object], line: int) -> None:
        path = env.get("PATH")
        text = part_programs.part_program(part, kind, command,
                                          path if isinstance(path, str) and path
                                          else part_programs.DEFAULT_PATH)
        existing = self.programs.get(name)
        if existing is not None and existing != text:
            raise Untranslatable(line, f"another recipe already needs a different {name}")
        self.programs.setdefault(name, text)

    # --- conditions -----------------------------------------------------------------------
    def conditions(self, recipe: Recipe, env: dict[str, object]) -> tuple[list[str], int]:
        """The Sieve tests of a recipe's conditions (the one capturing MATCH last) and the
        number of the group holding MATCH (0: none)."""
        plain = [c for c in recipe.conditions if c.weight is None]
        weighted = [c for c in recipe.conditions if c.weight is not None]
        tests: list[str] = []
        capturing: tuple[str, int] | None = None
        for condition in plain:
            test, capture = self.condition(condition, recipe.flags, env)
            if capture and not condition.negated:
                if capturing is not None:
                    raise Untranslatable(condition.line, "two \\/ captures in one recipe")
                capturing = (test, capture)
                # the next conditions see this MATCH, known only when the message arrives
                env["MATCH"] = _runtime(MATCH_VARIABLE)
            else:
                tests.append(test)
        if weighted:
            tests.append(self.scored(weighted, recipe.flags, env))
        tests = [test for test in tests if test != "true"]
        if "false" in tests:
            return ["false"], 0
        if capturing is not None:
            tests.append(capturing[0])
            return tests, capturing[1]
        return tests, 0

    def scored(self, conditions: list[Condition], flags: str, env: dict[str, object]) -> str:
        if len(conditions) > MAX_WEIGHTED:
            raise Untranslatable(conditions[0].line, f"more than {MAX_WEIGHTED} weighted "
                                                     "conditions")
        if (count := self.line_count(conditions, flags, env)) is not None:
            return count
        for condition in conditions:
            assert condition.weight is not None
            if condition.weight[1] != 0:
                raise Untranslatable(condition.line, "a weight with exponent other than 0 "
                                                     "counts matches; Sieve cannot count")
        tests = [self.condition(c, flags, env, ignore_negation=True)[0] for c in conditions]
        alternatives = []
        for outcome in itertools.product((True, False), repeat=len(conditions)):
            # a condition adds its weight when it is "successful": matched, or not matched if
            # negated
            score = sum(c.weight[0] for c, hit in zip(conditions, outcome, strict=True)
                        if hit != c.negated)
            if score > 0:
                alternatives.append(_combine([t if hit else _negate(t)
                                              for t, hit in zip(tests, outcome, strict=True)]))
        alternatives = [a for a in alternatives if a != "false"]
        if not alternatives:
            return "false"
        if "true" in alternatives:
            return "true"
        return alternatives[0] if len(alternatives) == 1 else \
            "anyof(" + ", ".join(alternatives) + ")"

    def line_count(self, conditions: list[Condition], flags: str, env: dict[str, object]
                   ) -> str | None:
        """The line-count idiom, `:0 Bfh`, `* -1^0`, `* 1^1 ^.*$`, `| formail -A "Lines: $="`:
        the score is the number of body lines plus the constant weights, which the generated
        `procmail-lines` program computes as procmail does (the test succeeds when it is above
        0, and its output is `$=`). None when the conditions are anything else."""
        counting = [c for c in conditions if c.weight is not None and c.weight[1] != 0]
        constants = [c for c in conditions if c.weight is not None and c.weight[1] == 0]
        if len(counting) != 1 or "B" not in flags or "H" in flags:
            return None
        counter = counting[0]
        if counter.weight != (1.0, 1.0) or counter.negated or counter.kind != "regex" or \
                counter.text.strip() != "^.*$":
            return None
        if any(c.negated or c.kind != "regex" or not procmail_regex.matches_empty(c.text)
               or c.weight is None or not c.weight[0].is_integer() for c in constants):
            return None
        offset = int(sum(c.weight[0] for c in constants if c.weight is not None))
        self.requires.update({"vnd.dovecot.execute", "variables"})
        self.programs[part_programs.LINES_PROGRAM] = part_programs.lines_program()
        env["="] = _runtime(LINES_VARIABLE)
        return (f"execute :pipe :output {sieve_string(LINES_VARIABLE)} "
                f"{sieve_string(part_programs.LINES_PROGRAM)} [{sieve_string(str(offset))}]")

    def condition(self, condition: Condition, flags: str, env: dict[str, object],
                  ignore_negation: bool = False) -> tuple[str, int]:
        test, capture = self.positive_test(condition, flags, env)
        if condition.negated and not ignore_negation:
            return _negate(test), 0
        return test, capture

    def positive_test(self, condition: Condition, flags: str, env: dict[str, object]
                      ) -> tuple[str, int]:
        line = condition.line
        if condition.kind == "size_over":
            return f"size :over {condition.text}", 0
        if condition.kind == "size_under":
            return f"size :under {condition.text}", 0
        if condition.kind == "program":
            return self.program_condition(condition, env), 0
        text = self.expand(condition.text, env, line) if condition.expand else condition.text
        if _RUNTIME.search(text):
            raise Untranslatable(line, "the pattern holds a value known only when the message "
                                       "arrives ($MATCH)")
        case = ' :comparator "i;octet"' if "D" in flags else ""
        if condition.kind == "variable":
            sources = condition.variable
            if sources and not set(sources) - set("HB"):
                return self.regex_test(text, "H" in sources, "B" in sources, case, line)
            return self.variable_test(condition.variable, text, env, case, "D" in flags, line)
        header = "H" in flags or "B" not in flags
        return self.regex_test(text, header, "B" in flags, case, line)

    def program_condition(self, condition: Condition, env: dict[str, object]) -> str:
        try:
            words = _words(self.expand(condition.text, env, condition.line), condition.line)
        except Untranslatable:
            words = []
        cache = _duplicate_cache(words[1:]) if words else ""
        if words and posixpath.basename(words[0]) == "formail" and cache and \
                not _SHELL_META.search(_unquoted(condition.text)):
            self.requires.add("duplicate")
            return _duplicate_test(cache)
        raise Untranslatable(condition.line, "a '?' condition runs a program; Sieve cannot")

    def variable_test(self, name: str, text: str, env: dict[str, object], case: str,
                      case_sensitive: bool, line: int) -> tuple[str, int]:
        if name not in env and name not in DELIVERY_ENVIRONMENT:
            self.never_set(name, line)
            env = {**env, name: None}
        value = env.get(name, UNKNOWN)
        if value is UNKNOWN:
            raise Untranslatable(line, f"tests ${name}, which depends on the environment at "
                                       "delivery time")
        try:
            if value is None or not _RUNTIME.search(str(value)):
                # known now: decide here
                matched = procmail_regex.python_regex(text, case_sensitive).search(
                    str(value or "")) is not None
                return ("true" if matched else "false"), 0
            pattern, capture = procmail_regex.translate(text)
        except procmail_regex.RegexUntranslatable as exc:
            raise Untranslatable(line, str(exc)) from None
        self.requires.update({"variables", "regex"})
        return f"string{case} :regex {sieve_string(str(value))} {sieve_string(pattern)}", \
            capture

    def regex_test(self, text: str, header: bool, body: bool, case: str, line: int
                   ) -> tuple[str, int]:
        try:
            parts: list[tuple[str, int]] = []
            if header:
                parts.append(self.header_test(text, case))
            if body:
                pattern, capture = procmail_regex.translate(text, multiline=True)
                if procmail_regex.matches_empty(text):
                    parts.append(("true", 0))
                else:
                    self.requires.update({"body", "regex"})
                    parts.append((f"body :raw{case} :regex {sieve_string(pattern)}", capture))
        except procmail_regex.RegexUntranslatable as exc:
            raise Untranslatable(line, str(exc)) from None
        if len(parts) == 1:
            return parts[0]
        if any(test == "true" for test, _ in parts):
            return "true", 0
        tests = [test for test, _ in parts if test != "false"]
        captures = {capture for _, capture in parts if capture}
        if len(captures) > 1:
            raise Untranslatable(line, "\\/ in a condition on header and body at once")
        if not tests:
            return "false", 0
        return (tests[0] if len(tests) == 1 else "anyof(" + ", ".join(tests) + ")"), \
            (captures.pop() if captures else 0)

    def header_test(self, text: str, case: str) -> tuple[str, int]:
        try:
            matches = procmail_regex.header_match(text)
        except procmail_regex.RegexUntranslatable as refusal:
            return self.raw_header_test(text, case, refusal), 0
        if procmail_regex.ALWAYS in matches:
            return "true", 0
        if not matches:
            return "false", 0
        captures = {match.capture for match in matches if match.capture}
        if len(captures) > 1:
            raise procmail_regex.RegexUntranslatable(
                "\\/ lands in different groups of the header tests this condition becomes")
        tests = []
        for match in _merged(matches):
            if match.pattern is None:
                # `exists` with several names wants them all (RFC 5228 5.5): one each, any of
                tests += [f"exists {sieve_string(name)}" for name in match.headers]
                continue
            self.requires.add("regex")
            if match.headers == [procmail_regex.ENVELOPE_FROM]:
                self.requires.add("envelope")
                tests.append(f"envelope{case} :regex \"from\" {sieve_string(match.pattern)}")
            else:
                tests.append(f"header{case} :regex {sieve_list(match.headers)} "
                             f"{sieve_string(match.pattern)}")
        test = tests[0] if len(tests) == 1 else "anyof(" + ", ".join(tests) + ")"
        return test, (captures.pop() if captures else 0)

    def raw_header_test(self, text: str, case: str,
                        refusal: procmail_regex.RegexUntranslatable) -> str:
        """A condition Sieve's header tests would decide differently (encoded words, folding,
        text right after the colon, a header name given as a prefix): the generated
        `procmail-match` program decides it on the raw header, as procmail does."""
        try:
            pattern = procmail_regex.raw_header_pattern(text, case_sensitive=bool(case))
        except procmail_regex.RegexUntranslatable:
            raise refusal from None
        self.requires.add("vnd.dovecot.execute")
        self.programs[part_programs.MATCH_PROGRAM] = part_programs.match_program()
        return (f"execute :pipe {sieve_string(part_programs.MATCH_PROGRAM)} "
                f"[{sieve_string(pattern)}]")

    def finish(self, env: dict[str, object], file: str) -> list[str]:
        default = env.get("DEFAULT")
        where, line = self.default_line
        if default is UNKNOWN:
            return self.gap(where, line, "DEFAULT is unknown at the end (set from a command or "
                                         "in a block that may not run)", 0)
        if default == "/dev/null":
            return [f"# {where}:{line}: DEFAULT is /dev/null", "discard;"]
        return [f"# {file}: falling off the end delivers to DEFAULT, the inbox: implicit keep"]


def _unquoted(text: str) -> str:
    """The command line without its quoted strings (a `;` inside quotes is no pipeline)."""
    return re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"", "''", text)


def _part(flags: str) -> str:
    """'head' or 'body' when the recipe hands on only that part (`h` or `b` alone)."""
    if "h" in flags and "b" not in flags:
        return "head"
    if "b" in flags and "h" not in flags:
        return "body"
    return ""


def _words(text: str, line: int) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError as exc:
        raise Untranslatable(line, f"cannot split {text[:40]!r} into words: {exc}") from None


def _arguments(words: list[str]) -> str:
    return f"[{sieve_string(words[0])}]" if len(words) == 1 else sieve_list(words)


def _branches(test: str, success: list[str], failure: list[str]) -> list[str]:
    lines = [f"if {test} {{", *("    " + line for line in success), "}"]
    if failure:
        lines[-1] = "} else {"
        lines += [*("    " + line for line in failure), "}"]
    return lines


def _duplicate_cache(arguments: list[str]) -> str:
    """The cache file of `-D maxlen cachefile` (and nothing else): formail's duplicate check
    by Message-ID; '' for anything else."""
    if arguments[:1] == ["-D"]:
        rest = arguments[1:]
    elif arguments[:1] and re.fullmatch(r"-D\d+", arguments[0]):
        rest = [arguments[0][2:], *arguments[1:]]
    else:
        return ""
    return rest[1] if len(rest) == 2 and rest[0].isdigit() and rest[1] else ""


def _duplicate_test(cache: str) -> str:
    """Each formail cache is a database of its own: a `duplicate` handle of its own (two
    `duplicate` tests with one handle conflict in Pigeonhole)."""
    return f"duplicate :handle {sieve_string(posixpath.basename(cache))}"


def header_edits(arguments: list[str]) -> list[tuple[str, str, str]]:
    """formail's `-A/-a/-i/-I "Field: value"` arguments as (mode, name, value); [] when
    formail is asked for anything else."""
    edits: list[tuple[str, str, str]] = []
    index = 0
    while index < len(arguments):
        option = arguments[index]
        if option[:2] not in _HEADER_EDIT:
            return []
        field_text = option[2:] or (arguments[index + 1] if index + 1 < len(arguments) else "")
        index += 1 if option[2:] else 2
        name, colon, value = field_text.partition(":")
        if not re.fullmatch(r"[!-9;-~]+", name) or (not colon and option[:2] != "-I"):
            return []
        # a value known only at delivery may hold anything; the line count is digits
        if "$" in value or any(known.group(1) != LINES_VARIABLE
                               for known in _RUNTIME.finditer(value)):
            return []
        edits.append((_HEADER_EDIT[option[:2]], name, value.strip()))
    return edits


def _negate(test: str) -> str:
    if test == "true":
        return "false"
    if test == "false":
        return "true"
    return test[4:] if test.startswith("not ") else f"not {test}"


def _merged(matches: list[procmail_regex.HeaderMatch]) -> list[procmail_regex.HeaderMatch]:
    """Tests with the same pattern over different fields become one test over all of them."""
    merged: dict[tuple[str | None, bool], procmail_regex.HeaderMatch] = {}
    for match in matches:
        key = (match.pattern, match.headers == [procmail_regex.ENVELOPE_FROM])
        if key in merged:
            known = merged[key]
            headers = known.headers + [h for h in match.headers if h not in known.headers]
            merged[key] = procmail_regex.HeaderMatch(headers, known.pattern, known.capture)
        else:
            merged[key] = match
    return list(merged.values())


def _combine(tests: list[str]) -> str:
    tests = [test for test in tests if test != "true"]
    if "false" in tests:
        return "false"
    if not tests:
        return "true"
    return tests[0] if len(tests) == 1 else "allof(" + ", ".join(tests) + ")"


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
    if converter.programs:
        header.append("# Programs it runs that cutover wrote: " +
                      ", ".join(sorted(converter.programs)) + " (install them in the "
                      "sieve_pipe_bin_dir / sieve_filter_bin_dir / sieve_execute_bin_dir).")
    if requires:
        header.append(f"require {sieve_list(requires)};")
    script = "\n".join(header + [""] + body) + "\n"
    return Conversion(script, converter.gaps, converter.syntax, converter.root,
                      converter.files, converter.warnings, str(rcfile), str(home),
                      sorted(converter.inbox_paths), sorted(converter.directories),
                      dict(sorted(converter.programs.items())))
