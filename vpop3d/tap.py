"""The composition root: tap.conf -> one MultiService tree (twistd plugins call this).

``make_service(options, protocols)`` loads the config, takes the data-dir locks,
opens (and migrates) the database, runs the first-run bootstrap, and builds one
``StreamServerEndpointService`` per enabled listener of the requested protocols plus
the background services. It is the only module that imports the global reactor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import IService, MultiService, Service
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
)
from twisted.internet.interfaces import IProtocolFactory, IReactorCore
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.python import usage
from typing_extensions import override

from vpop3d import __version__
from vpop3d.app.auth import AccountAuthenticator
from vpop3d.app.bootstrap import first_run
from vpop3d.app.notify import ChangeBus
from vpop3d.app.settings import Settings
from vpop3d.config import BootConfig, ConfigError, ListenerSpec, load
from vpop3d.context import ServerContext
from vpop3d.lock import AlreadyRunning, InstanceLock
from vpop3d.sessionlog import FILE_NAMES, SessionLogFile, SessionLoggingFactory
from vpop3d.store import migrate
from vpop3d.store.blobs import make_blob_store
from vpop3d.store.db import Database, DatabaseService
from vpop3d.store.migrate import SchemaError
from vpop3d.tls import TLSConfigError, context_factory, tls_files

reactor: Any = _reactor
_log = Logger(namespace="vpop3d")

ALL_PROTOCOLS = frozenset({"smtp", "pop3", "imap", "http", "ldap", "finger", "password", "status"})


class Options(usage.Options):
    """``twistd vpop3d [-c tap.conf] [--set section.key=value ...]``."""

    optParameters = [["config", "c", "tap.conf", "Path of the bootstrap configuration (INI)."]]

    def __init__(self) -> None:
        super().__init__()
        self.overrides: dict[str, str] = {}
        self.boot: BootConfig | None = None

    def opt_set(self, assignment: str) -> None:
        """Override one tap.conf value, e.g. --set smtp.port=2525 (repeatable)."""
        key, eq, value = assignment.partition("=")
        if not eq:
            raise usage.UsageError(f"--set {assignment}: expected section.key=value")
        self.overrides[key.strip()] = value.strip()

    @override
    def postOptions(self) -> None:
        try:
            self.boot = load(self["config"], self.overrides)
        except ConfigError as exc:
            # One line, non-zero exit, nothing started (issue #3); not twistd's usage dump.
            sys.stderr.write(f"vpop3d: {exc}\n")
            raise SystemExit(2) from None


FactoryBuilder = Callable[[ServerContext, ListenerSpec], IProtocolFactory]


def _builders() -> Mapping[str, FactoryBuilder]:
    from vpop3d import listeners

    return listeners.BUILDERS


def fail(message: str) -> SystemExit:
    sys.stderr.write(f"vpop3d: {message}\n")
    return SystemExit(2)


def open_database(config: BootConfig, reactor: Any) -> Database:
    """Connect, migrate per ``auto_migrate``, and run the first-run bootstrap."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(config.database, reactor, threads=config.db_threads)
    try:
        _log.info("{what}", what=migrate.ensure(database.engine, auto_migrate=config.auto_migrate))
    except SchemaError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # noqa: BLE001  any driver error: one clear line, no traceback
        raise fail(f"cannot open database {database.engine.url!r}: {exc}") from None
    for line in database.run_sync(first_run, config.hostname):
        _log.info("first run: {line}", line=line)
    return database


def make_service(options: Options, protocols: frozenset[str] = ALL_PROTOCOLS) -> IService:
    config = options.boot
    assert config is not None
    return build(config, reactor, protocols)


def build(config: BootConfig, reactor: Any, protocols: frozenset[str]) -> MultiService:
    """The whole service tree for ``protocols`` (tests call this with their own config)."""
    lock = InstanceLock(config.data_dir, sorted(protocols))
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except AlreadyRunning as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot use data dir {config.data_dir}: {exc.strerror}") from None

    database = open_database(config, reactor)
    settings = Settings(database)
    settings.load_sync()
    try:
        tls = context_factory(tls_files(config), config.tls.min_version)
    except TLSConfigError as exc:
        raise fail(f"{config.source}: [tls]: {exc}") from None

    context = ServerContext(
        config=config,
        reactor=reactor,
        database=database,
        settings=settings,
        blob_store=make_blob_store(config.blob_store, config.data_dir),
        bus=ChangeBus(),
        authenticator=AccountAuthenticator(database, settings),
        tls=tls,
    )
    root = _Root()
    root.setName("vpop3d")
    DatabaseService(database).setServiceParent(root)
    _LockService(lock).setServiceParent(root)
    _SettingsPoller(settings, reactor).setServiceParent(root)
    _BlobSweeper(context).setServiceParent(root)

    builders = _builders()
    for spec in config.enabled_listeners(protocols):
        builder = builders.get(spec.protocol)
        if builder is None:
            _log.warn(
                "{name}: no {proto} service in this version", name=spec.name, proto=spec.protocol
            )
            continue
        factory = builder(context, spec)
        context.extras[f"listener.{spec.name}"] = factory  # live counts for the Sessions page
        if spec.protocol in config.logging.session_logs and spec.protocol in FILE_NAMES:
            path = config.logging.log_dir / FILE_NAMES[spec.protocol]
            log_file = context.shared("sessionlog." + spec.protocol, partial(SessionLogFile, path))
            factory = SessionLoggingFactory(factory, log_file)
        endpoint = _endpoint(reactor, spec, tls)
        service = StreamServerEndpointService(endpoint, factory)
        service._raiseSynchronously = True
        service.setName(spec.name)
        service.setServiceParent(root)
    for make_background in _background(protocols):
        make_background(context).setServiceParent(root)
    root.context = context  # type: ignore[attr-defined]  # handy for tests and the status service
    return root


def _endpoint(reactor: Any, spec: ListenerSpec, tls: CertificateOptions | None) -> Any:
    """TCP (IPv6 when the interface is an IPv6 address), TLS from the first byte if
    the listener is an implicit-TLS one (RFC 8314 ports 465/993/995)."""
    if spec.implicit_tls and tls is not None:
        return SSL4ServerEndpoint(reactor, spec.port, tls, interface=spec.interface)
    if ":" in spec.interface:
        return TCP6ServerEndpoint(reactor, spec.port, interface=spec.interface)
    return TCP4ServerEndpoint(reactor, spec.port, interface=spec.interface)


def _background(protocols: frozenset[str]) -> list[Callable[[ServerContext], IService]]:
    from vpop3d import listeners

    return [make for proto, make in listeners.BACKGROUND if proto in protocols]


class _Root(MultiService):
    """The service tree; on stop the database goes last.

    A stopping service may still be waiting on database work (the blob sweeper's chain
    of pool jobs, say); it finishes first, then the pool stops. Stopping them all at
    once let such a chain queue work on a stopped pool and hang shutdown.
    """

    @override
    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        children = list(self)
        last = [s for s in children if isinstance(s, DatabaseService)]
        first = [s for s in reversed(children) if not isinstance(s, DatabaseService)]
        stopping = DeferredList([maybeDeferred(s.stopService) for s in first], consumeErrors=True)

        def stop_database(_: object) -> None:
            for service in last:
                service.stopService()

        return stopping.addCallback(stop_database)


class _LockService(Service):
    def __init__(self, lock: InstanceLock) -> None:
        self.lock = lock

    @override
    def stopService(self) -> None:
        super().stopService()
        self.lock.release()


class _SettingsPoller(Service):
    """Settings edited by another process (the CLI) reach this one within seconds."""

    def __init__(self, settings: Settings, clock: IReactorCore) -> None:
        self.settings = settings
        self.clock = clock

    @override
    def startService(self) -> None:
        super().startService()
        self.settings.start_polling(self.clock)  # type: ignore[arg-type]  # the reactor

    @override
    def stopService(self) -> None:
        super().stopService()
        self.settings.stop_polling()


class _BlobSweeper(TimerService):
    """Deletes bodies nothing references any more (every 10 minutes), and once at start
    the files a crash left without a database row."""

    def __init__(self, context: ServerContext) -> None:
        super().__init__(600, self.sweep)
        self.context = context
        self._orphans_checked = False

    def sweep(self) -> Any:
        store = self.context.blob_store
        database = self.context.database
        done = database.write(store.sweep).addCallback(
            lambda keys: database.call_in_pool(store.unlink, keys)
        )
        if not self._orphans_checked and hasattr(store, "orphans"):
            self._orphans_checked = True
            done.addCallback(lambda _: database.read(store.orphans)).addCallback(self._remove)
        return done.addErrback(lambda failure: _log.failure("blob sweep failed", failure))

    def _remove(self, paths: list[Any]) -> Any:
        if paths:
            _log.warn("removing {count} orphaned message files", count=len(paths))
        return self.context.database.call_in_pool(
            lambda: [p.unlink(missing_ok=True) for p in paths]
        )


def version() -> str:
    return f"vpop3d {__version__}"


__all__ = ["Options", "ServerContext", "build", "make_service"]
