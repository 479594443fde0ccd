"""The one YAML loader for what operators write (plans, cutover.yaml): safe tags only, UTF-8
only, bounded, and with the line of every node.

Bounded, because YAML's anchors and aliases let a few hundred bytes describe billions of nodes
(the "billion laughs"): PyYAML shares aliased nodes, but everything that walks the result (the
line index, pydantic, a JSON dump) expands them. So the loader counts the nodes aliases add
and refuses a document past ALIAS_EXPANSION_LIMIT, refuses an alias that contains itself, and
refuses nesting deeper than MAX_DEPTH before Python's recursion limit is reached.
"""

from __future__ import annotations

from typing import Any

import yaml

#: nodes that aliases may add to a document once expanded (anchors written for reuse of a
#: block of params stay far below this)
ALIAS_EXPANSION_LIMIT = 10_000
#: nesting of mappings and sequences; plans and cutover.yaml need fewer than ten levels
MAX_DEPTH = 100


class YamlProblem(Exception):  # noqa: N818 - a located problem, turned into the caller's error
    def __init__(self, line: int, message: str):
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_DEPTH."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlProblem(mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class Lines:
    """The line of every node of a document, by path of keys and indexes."""

    def __init__(self, node: yaml.Node | None):
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else repr(key.value)
                self._walk(value, path + (name,))
                # a key's own line, not its value's: "unknown key" points at the key
                self.lines[path + (name,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                self._walk(value, path + (index,))

    def line(self, path: tuple) -> int:
        path = tuple(str(part) if not isinstance(part, int) else part for part in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def decode(raw: bytes) -> str:
    """UTF-8 text (a BOM allowed), or YamlProblem naming the line of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlProblem(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def load(text: str) -> tuple[Any, Lines]:
    """The document's data and its line index; YamlProblem for anything unsafe or malformed."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node)
            data = loader.construct_document(node)
        else:
            data = None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or "malformed"
        raise YamlProblem(mark.line + 1 if mark else 1, f"invalid YAML: {problem}") from None
    except RecursionError:  # a last resort: MAX_DEPTH keeps the composer below the limit
        raise YamlProblem(1, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return data, Lines(node)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past ALIAS_EXPANSION_LIMIT nodes, or contain
    themselves. Each node's expanded size is computed once, so this is linear in the text."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    added = 0

    def size(node: yaml.Node) -> int:
        nonlocal added
        key = id(node)
        if key in sizes:  # a node met again: an alias, which repeats everything below it
            added += sizes[key]
            if added > ALIAS_EXPANSION_LIMIT:
                raise YamlProblem(node.start_mark.line + 1,
                                  "aliases expand past the limit of "
                                  f"{ALIAS_EXPANSION_LIMIT:,} nodes: write the values out")
            return sizes[key]
        if key in open_nodes:
            raise YamlProblem(node.start_mark.line + 1, "an alias refers to itself")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)
