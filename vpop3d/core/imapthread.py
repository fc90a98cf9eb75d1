"""RFC 5256 THREAD=ORDEREDSUBJECT and THREAD=REFERENCES, and the THREAD response syntax.

Callers give one :class:`ThreadMessage` per searched message (``id`` is the sequence
number or the UID, whichever the command reports) and get a list of :class:`Thread`
trees back; :func:`format_threads` renders them as ``(1)(2 3)(4 (5)(6))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from vpop3d.core.imapstring import ascii_casemap
from vpop3d.core.mime import MessageSummary


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """The fields threading looks at; ``date`` is the sent date (internal date if none)."""

    id: int
    date: datetime
    subject_base: str
    subject_reply: bool
    message_id: str
    references: tuple[str, ...]

    @classmethod
    def from_summary(
        cls, id_: int, summary: MessageSummary, internal_date: datetime
    ) -> ThreadMessage:
        """RFC 5256 §2.2: a missing or unparsable Date means the internal date."""
        return cls(
            id=id_,
            date=summary.sent_date or internal_date,
            subject_base=summary.subject_base,
            subject_reply=summary.subject_reply,
            message_id=summary.message_id,
            references=summary.references,
        )


@dataclass(frozen=True, slots=True)
class Thread:
    """One node of a thread tree; ``id`` None is a dummy parent kept at the top level."""

    id: int | None
    children: tuple[Thread, ...] = ()


def _order(message: ThreadMessage) -> tuple[float, int]:
    # RFC 5256 §2.2 (and errata 2019): equal sent dates fall back to the sequence order
    return (message.date.timestamp(), message.id)


# --- ORDEREDSUBJECT (RFC 5256 §3, "ORDEREDSUBJECT")


def thread_orderedsubject(messages: Sequence[ThreadMessage]) -> list[Thread]:
    """Group by base subject; the earliest message is the parent of all the others."""
    groups: dict[str, list[ThreadMessage]] = {}
    for message in sorted(messages, key=_order):
        groups.setdefault(ascii_casemap(message.subject_base), []).append(message)
    threads = sorted(groups.values(), key=lambda group: _order(group[0]))
    return [Thread(first.id, tuple(Thread(other.id) for other in rest)) for first, *rest in threads]


# --- REFERENCES (RFC 5256 §3, "REFERENCES")


@dataclass(eq=False, slots=True)
class _Container:
    message: ThreadMessage | None = None
    parent: _Container | None = None
    children: list[_Container] = field(default_factory=list)

    def is_ancestor_of(self, other: _Container) -> bool:
        node: _Container | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def unlink(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def adopt(self, child: _Container) -> bool:
        """Make ``child`` a child of self unless that would create a loop."""
        if child.is_ancestor_of(self):
            return False
        child.unlink()
        child.parent = self
        self.children.append(child)
        return True


def _link_message(table: dict[str, _Container], message: ThreadMessage, serial: int) -> None:
    """Step 1 for one message: its container, its reference chain, and its parent."""
    container = table.get(message.message_id) if message.message_id else None
    if container is None or container.message is not None:
        # no Message-ID, or a duplicate one: the message gets a unique identity
        key = message.message_id if container is None and message.message_id else f"\0{serial}"
        container = table[key] = _Container()
    container.message = message
    previous: _Container | None = None
    for reference in message.references:
        current = table.get(reference)
        if current is None:
            current = table[reference] = _Container()
        if previous is not None and current.parent is None and current is not container:
            previous.adopt(current)  # 1A: existing links are kept, loops refused
        previous = current
    # 1B: the last reference is the parent; a previous guess is replaced
    container.unlink()
    if previous is not None and previous is not container:
        previous.adopt(container)


def _post_order(roots: list[_Container]) -> list[_Container]:
    """Every node below ``roots``, children before parents, without recursion.

    Reply chains can be thousands deep, beyond Python's recursion limit.
    """
    out: list[_Container] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.children)
    out.reverse()
    return out


def _prune_level(children: list[_Container], at_root: bool) -> list[_Container]:
    """Step 4 for one sibling list whose subtrees are already pruned: drop empty
    dummies, splice a dummy's children up (not to the root, unless only one)."""
    out: list[_Container] = []
    for node in children:
        if node.message is None:
            if not node.children:
                continue
            if not at_root or len(node.children) == 1:
                out.extend(node.children)
                continue
        out.append(node)
    return out


def _prune(roots: list[_Container]) -> list[_Container]:
    for node in _post_order(roots):
        node.children = _prune_level(node.children, at_root=False)
        for child in node.children:
            child.parent = node
    pruned = _prune_level(roots, at_root=True)
    for node in pruned:
        node.parent = None
    return pruned


def _key(node: _Container) -> tuple[float, int]:
    while node.message is None:
        node = node.children[0]
    return _order(node.message)


def _sort(roots: list[_Container]) -> None:
    """Step 6: sort each set of siblings by sent date, deepest first."""
    for node in _post_order(roots):
        node.children.sort(key=_key)
    roots.sort(key=_key)


def _subject(node: _Container) -> str:
    message = node.message if node.message is not None else node.children[0].message
    return "" if message is None else ascii_casemap(message.subject_base)


def _is_reply(node: _Container) -> bool:
    return node.message is not None and node.message.subject_reply


def _merge_subjects(roots: list[_Container]) -> list[_Container]:
    """Step 5: gather root threads that share a base subject."""
    table: dict[str, _Container] = {}
    for node in roots:  # 5B
        subject = _subject(node)
        if not subject:
            continue
        held = table.get(subject)
        if held is None or (
            held.message is not None
            and (node.message is None or (_is_reply(held) and not _is_reply(node)))
        ):
            table[subject] = node
    result = list(roots)
    for node in roots:  # 5C
        if node.parent is not None:  # already merged under another root
            continue
        subject = _subject(node)
        held = table.get(subject) if subject else None
        if held is None or held is node:
            continue
        result.remove(node)
        if held.message is None and node.message is None:
            for child in node.children:
                child.parent = held
            held.children.extend(node.children)
        elif held.message is None or (_is_reply(node) and not _is_reply(held)):
            node.parent = held
            held.children.append(node)
        else:
            dummy = _Container(children=[held, node])
            held.parent = node.parent = dummy
            result[result.index(held)] = dummy
            table[subject] = dummy
    return result


def _freeze(roots: list[_Container]) -> list[Thread]:
    frozen: dict[int, Thread] = {}
    for node in _post_order(roots):
        frozen[id(node)] = Thread(
            None if node.message is None else node.message.id,
            tuple(frozen[id(child)] for child in node.children),
        )
    return [frozen[id(node)] for node in roots]


def thread_references(messages: Sequence[ThreadMessage]) -> list[Thread]:
    """RFC 5256 REFERENCES: parent/child from References, then subject merging.

    Pass ``messages`` in mailbox order: of several messages with one Message-ID only
    the first keeps it (RFC 5256 §2.2 step 1A).
    """
    table: dict[str, _Container] = {}
    for serial, message in enumerate(messages):
        _link_message(table, message, serial)
    roots = [node for node in table.values() if node.parent is None]  # step 2
    roots = _prune(roots)
    _sort(roots)  # so that a dummy's "first child" (step 5B) is its earliest
    roots = _merge_subjects(roots)
    _sort(roots)
    return _freeze(roots)


# --- wire form (RFC 5256 §4)


def format_threads(threads: Sequence[Thread]) -> bytes:
    """The THREAD response data after ``* THREAD ``: ``(1)(2 3)(4 (5)(6))``.

    A lone child continues its parent's list; several children each get parentheses;
    a dummy parent has no number (RFC 5256 §4). Iterative, like the tree building.
    """
    out: list[str] = []
    stack: list[str | Thread] = []
    for thread in reversed(threads):
        stack += [")", thread, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        following: list[str | Thread] = []
        if item.id is not None:
            out.append(str(item.id))
            if item.children:
                following.append(" ")
        if len(item.children) == 1 and item.id is not None:
            following.append(item.children[0])
        else:
            for child in item.children:
                following += ["(", child, ")"]
        stack.extend(reversed(following))
    return "".join(out).encode("ascii")
