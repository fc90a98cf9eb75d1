"""In-process pub/sub of folder changes, implementing ``ports.ChangeNotifier``.

Delivery, IMAP sessions, POP3 commits and webmail publish after their transaction
committed; IMAP sessions subscribed to a folder learn of EXISTS/EXPUNGE/FLAGS
changes. Processes sharing one PostgreSQL learn of others' changes by MODSEQ polling
(``FolderWatcher`` in the IMAP layer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from twisted.logger import Logger

from vpop3d.ports import Listener, MailboxChanged


class ChangeBus:
    _log = Logger()

    def __init__(self) -> None:
        self._listeners: dict[int, list[Listener]] = defaultdict(list)

    def subscribe(self, folder_id: int, listener: Listener) -> Callable[[], None]:
        self._listeners[folder_id].append(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(folder_id, [])
            if listener in listeners:
                listeners.remove(listener)
            if not listeners:
                self._listeners.pop(folder_id, None)

        return unsubscribe

    def publish(self, event: MailboxChanged) -> None:
        for listener in list(self._listeners.get(event.folder_id, ())):
            try:
                listener(event)
            except Exception:  # noqa: BLE001  one broken session must not stop the others
                self._log.failure(
                    "change listener failed for folder {folder}", folder=event.folder_id
                )

    def listener_count(self, folder_id: int) -> int:
        return len(self._listeners.get(folder_id, ()))
