"""The discord.py bot: receives its dependencies, wires the cogs in ``setup_hook``.

``run_bot`` opens the resources (character library, backend, store), points
discord.py at the configured API and gateway (Discord's by default; a local fake
in tests), runs until SIGTERM or Ctrl-C and closes everything cleanly.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.backends.base import Backend, PooledBackend
from bot.backends.registry import create_backend
from bot.cards import CharacterLibrary
from bot.chat import ChatService
from bot.cogs.tree import TroupeTree
from bot.config import Config, load_config
from bot.conversations import Conversations
from bot.discord_io import NO_PINGS, ChannelHistory, Responder, ScenePlay, Webhooks
from bot.errors import BotError, CardError, ConfigError
from bot.heap import freeze_startup
from bot.lifecycle import Stopped, retry_until_up, stop_on_signals, until_stopped, within
from bot.looplag import start_lag_log
from bot.memory import Memory
from bot.metrics import BackendWatch, Metrics, loop_lag_monitor, shard_label
from bot.ops_server import OpsServer, parse_listen
from bot.readahead import ReadAhead
from bot.scheduling import ChannelScheduler, Cooldowns
from bot.store import Store
from bot.store.events import RESYNC, StoreEvent

__all__ = ["TroupeBot", "ShardedTroupeBot", "bot_class", "run_bot", "point_discord_at", "check_token"]

log = logging.getLogger(__name__)

_WATCH_OFF_RECHECK = 5.0  # seconds: how soon a watch turned on by /config reload starts


class TroupeBot(commands.Bot):
    """Troupe on Discord. Everything it uses is handed in; nothing is global.

    The ChatService's :class:`Conversations` owns every channel's state; the
    :class:`Responder` writes replies and reads quiet channels ahead; the cogs only
    turn Discord events into calls on these."""

    message_cache_size = 5000

    def __init__(
        self,
        *,
        config: Config,
        service: ChatService,
        library: CharacterLibrary,
        store: Store,
        config_path: Path | None = None,
        **client_options: Any,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=NO_PINGS,
            help_command=None,
            tree_cls=TroupeTree,
            **_shard_options(config, sharded=isinstance(self, discord.AutoShardedClient)),
            max_messages=self.message_cache_size,  # it doubles as channel history (discord_io/mirror.py)
            **client_options,
        )
        self.config = config
        self.config_path = config_path
        self.service = service
        self.library = library
        self.store = store
        self.conversations = service.conversations
        self.webhooks = Webhooks(self, store)
        if service.memory is None:
            service.memory = Memory(store, lambda: self.config.memory)
        self.memory = service.memory
        self.scheduler = ChannelScheduler(config.discord.queue_size)
        self.cooldowns = Cooldowns(config.discord.user_cooldown)
        self.history = ChannelHistory(
            self, cache_size=self.message_cache_size, webhook_ids=lambda: self.webhooks.known_ids,
            window=lambda: self.config.prompt.history_messages, ooc_prefixes=lambda: self.config.discord.ooc_prefixes,
            memory=self.memory,
        )
        self.metrics = Metrics()
        self.responder = Responder(
            service=service, conversations=self.conversations, history=self.history, webhooks=self.webhooks,
            settings=lambda: self.config.discord, metrics=self.metrics,
        )
        self.scene_play = ScenePlay(
            responder=self.responder, conversations=self.conversations, scheduler=self.scheduler,
            scene=lambda: self.config.scene,
        )
        self.read_ahead = ReadAhead(busy=lambda channel_id: self.scheduler.busy(channel_id))  # type: ignore[arg-type]
        self.inflight: set[asyncio.Task[object]] = set()  # message handlers running now
        self._prewarming: asyncio.Task[int] | None = None
        self._watching: asyncio.Task[None] | None = None
        self.ops: OpsServer | None = None  # metrics and health routes (metrics.listen)
        self.backend_watch: BackendWatch | None = None
        self._ops_tasks: list[asyncio.Task[None]] = []
        self._pruning: asyncio.Task[None] | None = None

    @property
    def backend(self) -> Backend:
        """The generation backend (shared with the ChatService)."""
        return self.service.backend

    async def setup_hook(self) -> None:
        """Add the cogs, remember our webhooks, and sync slash commands."""
        self.webhooks.known_ids.update(await self.store.webhook_ids())
        from bot.cogs.admin import AdminCog
        from bot.cogs.characters import CharactersCog
        from bot.cogs.chat import ChatCog
        from bot.cogs.conversation import ConversationCog
        from bot.cogs.memory import MemoryCog
        from bot.cogs.scene import SceneCog
        from bot.cogs.settings import SettingsCog

        await self.add_cog(ChatCog(self))
        await self.add_cog(ConversationCog(self))
        await self.add_cog(CharactersCog(self))
        await self.add_cog(AdminCog(self))
        await self.add_cog(SettingsCog(self))
        await self.add_cog(SceneCog(self))
        await self.add_cog(MemoryCog(self))
        if self.config.discord.sync_commands:
            synced = await self.tree.sync()
            log.info("Synced %d slash commands", len(synced))
        self._prewarming = asyncio.create_task(self.prewarm_channels())
        self._watching = asyncio.create_task(self.watch_characters())
        self._pruning = asyncio.create_task(self.memory.prune_forever())
        await self.start_events()
        await self.start_operations()

    async def start_events(self) -> None:
        """Hear what other processes sharing the store change, and tell them what changes here."""
        events = self.store.events
        events.subscribe(self._on_store_event)
        self.conversations.announce = lambda kind, data: events.publish(kind, **data)
        await events.start()

    async def announce(self, kind: str, **data: object) -> None:
        """Tell the other processes sharing the store (``config_reloaded``, ``characters_changed``)."""
        await self.store.events.publish(kind, **data)

    async def _on_store_event(self, event: StoreEvent) -> None:
        """Apply another process's change here."""
        if self.conversations.heard(event.kind, event.data):
            return
        if event.kind == "characters_changed":
            log.info("Another process changed the characters; reading the folder again")
            await self.reload_characters()
        elif event.kind == "config_reloaded":
            await self._reload_config_file()
        elif event.kind == RESYNC:
            self.conversations.forget_all()
            await self.reload_characters()

    async def _reload_config_file(self) -> None:
        if self.config_path is None:
            return
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except BotError as exc:
            log.error("Another process reloaded the config, but this one's is refused (keeping the running "
                      "config): %s", exc)
            return
        pending = self.apply_config(config)
        await self.reload_characters()
        log.info("Config reloaded (another process's /config reload)%s",
                 f"; needs a restart to apply: {', '.join(pending)}" if pending else "")

    async def start_operations(self) -> None:
        """Serve /metrics, /healthz and /readyz on ``metrics.listen`` (nothing when unset), with
        the backend's health checked on a timer and the event loop's lag measured."""
        settings = self.config.metrics
        if settings.listen is None:
            return
        host, port = parse_listen(settings.listen)
        self.metrics.process_shard = self._shard_label()
        backends = list(self.backend.members) if isinstance(self.backend, PooledBackend) else [self.backend]
        self.backend_watch = BackendWatch(backends, self.metrics, interval=settings.health_interval)
        self.metrics.sample_queue(self.scheduler.waiting)
        self.metrics.sample_gateway(self._latencies)
        self.ops = OpsServer(self.metrics, {
            "discord": self._connected, "store": self._store_reachable, "backend": self._backend_healthy,
        }, host=host, port=port)
        await self.ops.start()
        self._ops_tasks = [asyncio.create_task(self.backend_watch.run(), name="troupe-backend-watch"),
                           asyncio.create_task(loop_lag_monitor(self.metrics).run(), name="troupe-loop-lag")]

    def _shard_label(self) -> str:
        if isinstance(self, discord.AutoShardedClient):
            return shard_label(self.shard_ids or self.shards)
        return shard_label([self.shard_id or 0])

    def _latencies(self) -> list[tuple[int, float]]:
        if isinstance(self, discord.AutoShardedClient):
            return list(self.latencies)
        return [(self.shard_id or 0, self.latency)]

    async def _connected(self) -> bool:
        if not self.is_ready() or self.is_closed():
            return False
        if isinstance(self, discord.AutoShardedClient):
            return all(not shard.is_closed() for shard in self.shards.values())
        return self.ws is not None and self.ws.open

    async def _store_reachable(self) -> bool:
        await self.store.info()  # a query on the store's engine
        return self.store.events.listening

    async def _backend_healthy(self) -> bool:
        return self.backend_watch is not None and self.backend_watch.healthy()

    async def prewarm_channels(self, limit: int = 4) -> int:
        """Read the active channels into the backend before anyone mentions us: each card's
        prefix at once (while connecting), then, once connected, each channel's recent history,
        so the first reply in each after a restart reads only the message that asks for it.
        A mention meanwhile takes the model first. Returns the channels pre-warmed."""
        active = [(conversation.key, cast) for conversation in await self.conversations.active(limit)
                  if (cast := await self.conversations.cast(conversation.key))]
        warmed = 0
        for key, cast in active:
            character = cast[0]
            try:
                read = await self.service.prewarm(character, key, cast=cast)
            except BotError as exc:
                log.warning("Could not pre-warm channel %s: %s", key, exc)
                return warmed
            if read:
                warmed += 1
                log.info("Pre-warmed channel %s (%s, %d tokens)", key, character.name, read)
        if not self.config.prompt.read_ahead:
            return warmed
        await self.wait_until_ready()
        for key, _ in reversed(active):  # the most recent channel last: its state stays loaded
            channel = self.get_channel(int(key))
            if isinstance(channel, discord.abc.Messageable):
                await self.responder.read_ahead(channel)
        return warmed

    async def watch_characters(self) -> None:
        """Reload the cards whenever the characters folder changes (looked at every
        ``characters_watch`` seconds), so a card dropped in is live without a restart."""
        while True:
            interval = self.config.characters_watch
            await asyncio.sleep(interval or _WATCH_OFF_RECHECK)
            try:
                if interval and await asyncio.to_thread(self.library.changed):
                    await self.reload_characters()
                    await self.announce("characters_changed")
            except Exception:  # the watch must outlive any one bad look at the folder
                log.exception("Could not reload the characters folder")

    async def reload_characters(self) -> list[CardError]:
        """Read the characters folder again (the library logs the cards that failed); logs who came and went."""
        before = set(self.library.names())
        errors = await asyncio.to_thread(self.library.reload)
        after = set(self.library.names())
        if after != before:
            log.info("Characters reloaded: added %s; removed %s",
                     ", ".join(sorted(after - before)) or "none", ", ".join(sorted(before - after)) or "none")
        return errors

    async def on_message(self, message: discord.Message) -> None:
        """Mentions are handled by the chat cog; there are no prefix commands."""

    async def on_ready(self) -> None:
        """Log who we are once connected."""
        self.metrics.process_shard = self._shard_label()
        log.info("Connected as %s (%s) to %d servers", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    def apply_config(self, config: Config) -> list[str]:
        """Take a reloaded config; returns what needs a restart to apply."""
        needs_restart = []
        if config.backend != self.config.backend:
            needs_restart.append("backend")
        if config.store != self.config.store:
            needs_restart.append("store")
        if config.metrics != self.config.metrics:
            needs_restart.append("metrics")
        if config.discord.token != self.config.discord.token or config.discord.api_url != self.config.discord.api_url:
            needs_restart.append("discord connection")
        config.backend = self.config.backend
        self.config = config
        self.service.config = config
        self.conversations.default_character = config.default_character
        self.scheduler.queue_size = config.discord.queue_size
        self.cooldowns.seconds = config.discord.user_cooldown
        return needs_restart

    def track(self) -> None:
        """Register the current task as an in-flight handler, so shutdown can wait for it."""
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

    async def close(self) -> None:
        """Cancel running generations and handlers, then disconnect."""
        for background in (self._prewarming, self._watching, self._pruning, *self._ops_tasks):
            if background is not None:
                background.cancel()
        if self.ops is not None:
            await self.ops.close()
        await self.store.events.close()
        await self.read_ahead.close()
        handlers = [t for t in self.inflight if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        if handlers:
            log.info("Cancelled %d running reply handler(s)", len(handlers))
            await asyncio.gather(*handlers, return_exceptions=True)
        await self.memory.settle()  # what was seen is written before the store closes
        await super().close()


class ShardedTroupeBot(TroupeBot, commands.AutoShardedBot):
    """Troupe on discord.py's sharded client: several shards in this process
    (``discord.shard_count: auto``, or N with ``discord.shard_ids``)."""


def bot_class(config: Config) -> type[TroupeBot]:
    """The bot class the config's ``discord`` section asks for."""
    return ShardedTroupeBot if config.discord.sharded() else TroupeBot


def _shard_options(config: Config, *, sharded: bool) -> dict[str, Any]:
    settings = config.discord
    if sharded:
        count = None if settings.shard_count == "auto" else settings.shard_count
        return {"shard_count": count, "shard_ids": settings.shard_ids}
    return {"shard_count": settings.shard_count, "shard_id": settings.shard_id}


def point_discord_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST and gateway traffic to the configured servers."""
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def check_token(config: Config) -> str:
    """The bot token, or a ConfigError that says how to provide one."""
    token = config.discord.token.get_secret_value().strip()
    if not token:
        raise ConfigError(
            "discord.token is empty: set the DISCORD_TOKEN environment variable "
            "(config.example.yaml reads it with ${DISCORD_TOKEN})"
        )
    if "." not in token or any(c.isspace() for c in token):
        raise ConfigError(
            "discord.token does not look like a bot token (the Bot page's token, not the client secret "
            "or application id)"
        )
    return token


def run_bot(config: Config) -> int:
    """Run the bot until SIGTERM / Ctrl-C; returns the exit code."""
    token = check_token(config)
    return asyncio.run(_serve(config, token))


_LOGIN_TIMEOUT = 30.0  # seconds one login attempt may take before it counts as "no answer"
_CLOSE_GRACE = 3.0  # seconds to say goodbye to Discord at shutdown before giving up on it


async def _serve(config: Config, token: str) -> int:
    start_lag_log()  # only when TROUPE_LAG_LOG names a file (the soak reads it)
    point_discord_at(config.discord.api_url, config.discord.gateway_url)
    stop = asyncio.Event()
    with stop_on_signals(stop):  # from here on SIGTERM / Ctrl-C end the process within seconds
        library = CharacterLibrary(config.resolve_path(config.characters_dir))
        await asyncio.to_thread(library.load)  # it logs each card it skips
        if not library.all():
            raise ConfigError(f"{library.directory}: no usable character cards")
        backend = create_backend(config.backend)
        try:
            async with await Store.open(config.store_url()) as store:
                conversations = Conversations(library, store, default_character=config.default_character)
                bot = bot_class(config)(
                    config=config, service=ChatService(backend, config, conversations), library=library,
                    store=store, config_path=config.source,
                )
                log.debug("Froze %d start-up objects", freeze_startup())  # shorter garbage collections
                try:
                    await _log_in(bot, token, config.discord.api_url, stop)
                    await until_stopped(bot.connect(), stop)
                except Stopped:
                    log.info("Shutting down")
                except discord.LoginFailure as exc:
                    raise ConfigError(f"Discord refused the token (discord.token): {exc}") from exc
                except discord.PrivilegedIntentsRequired as exc:
                    raise ConfigError(
                        "enable the MESSAGE CONTENT intent for the bot in the Discord developer portal"
                    ) from exc
                except (aiohttp.ClientError, OSError) as exc:
                    raise ConfigError(f"cannot reach Discord at {config.discord.api_url}: {exc}") from exc
                finally:
                    if not await within(bot.close(), _CLOSE_GRACE):
                        log.warning("Discord did not see the bot off within %g s; leaving anyway", _CLOSE_GRACE)
        finally:
            await backend.aclose()
    log.info("Stopped cleanly")
    return 0


async def _log_in(bot: TroupeBot, token: str, api_url: str, stop: asyncio.Event) -> None:
    """Log in, waiting for the network and for Discord if they are not up yet (Stopped on a stop)."""

    async def drop_session() -> None:  # each login attempt opens a fresh HTTP session
        await bot.http.close()
        bot.http.connector = discord.utils.MISSING

    await retry_until_up(
        lambda: bot.login(token), transient=_unreachable, stop=stop, what=f"cannot reach Discord at {api_url}",
        attempt_timeout=_LOGIN_TIMEOUT, after_failure=drop_session,
    )


def _unreachable(exc: BaseException) -> str | None:
    """Why Discord could not be reached (worth another try later), or None for any other failure."""
    if isinstance(exc, discord.DiscordServerError):
        return f"Discord answered {exc.status}"
    if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
        return str(exc) or type(exc).__name__
    return None
