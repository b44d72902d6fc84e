"""Commands a follower checked, carried to the sequencer over core NATS request/reply, and its answers back.

The subject `diemcau.<event>.command` is outside every stream's subjects (a stream matching it would
answer the requests with publish acknowledgements). The follower has parsed and authorised the command
and sends who sent it; the sequencer dispatches it as its own and replies once the event is durable.

Neither side makes a task per command (nats-py's `request` does, and a subscription's callbacks run one
at a time, so awaiting a store inside one would serialise every command): requests and replies go out
through one `Publisher` each, replies come back to one inbox subscription, and the sequencer replies
from its answer's write callback.

A request nobody answers (no sequencer between a loss and a takeover, or one that died holding it) is
sent again with the same op_id until FORWARD_SECONDS have passed: the sequencer's fold and the stream's
duplicate window make the retry change nothing if the first one was stored. When another node takes the
lease, every request still waiting is sent again at once (`ask_again`): one the lost sequencer held
would otherwise wait out REQUEST_SECONDS.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hub.core.errors import INTERNAL_ERROR, Answer, HubError
from hub.core.errors import Subscription as Subscribe
from hub.log.base import StoreError
from hub.tokens import Identity

FORWARD_SECONDS = 15.0  # past this, the client is told to retry (its op_id makes the retry safe)
REQUEST_SECONDS = 3.0  # one try; a sequencer that does not answer within it is asked again
RETRY_SECONDS = 0.1  # after "no responders": no sequencer yet

log = logging.getLogger("diemcau.cluster.forward")
Dispatch = Callable[[Identity, Any, dict[str, Any], Any], Answer | Subscribe]
After = Callable[[int, Callable[[], None], Callable[[], None]], None]  # hub.core.release.Release.after


def command_subject(event_id: str) -> str:
    return f"diemcau.{event_id}.command"


def _refusal(code: str, message: str) -> HubError:
    error = HubError(message)
    error.code = code
    return error


class Publisher:
    """Messages to publish, in order, from code that cannot await: one task sends them all."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._queue: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="publisher")

    def send(self, subject: str, payload: bytes, reply: str = "") -> None:
        self._queue.put_nowait((subject, payload, reply))

    async def _run(self) -> None:
        while True:
            subject, payload, reply = await self._queue.get()
            try:
                await self.nc.publish(subject, payload, reply=reply)
            except Exception as exc:  # reconnecting: the other side asks again, or a heartbeat is missed
                log.debug("not published on %s (%r)", subject, exc)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@dataclass(eq=False, slots=True)
class _Request:
    payload: bytes
    answer: Answer
    deadline: float
    timer: asyncio.TimerHandle | None = None


class Forwarder:
    """The follower's side: each command becomes an Answer whose write is the sequencer's reply."""

    def __init__(self, nc: NATS, subject: str, after: After, replied: Callable[[], None]) -> None:
        self.nc, self.subject, self.after, self.replied = nc, subject, after, replied
        self.forwarded = 0
        self.retries = 0
        self._publisher = Publisher(nc)
        self._inbox = nc.new_inbox() + "."
        self._tokens = itertools.count(1)
        self._waiting: dict[str, _Request] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(self._inbox + "*", cb=self._on_reply)

    def forward(self, who: Identity, type_: str, fields: dict[str, Any], op_id: str | None) -> Answer:
        loop = asyncio.get_running_loop()
        payload = orjson.dumps({"who": [who.token_id, who.role, who.site, who.agency, who.label], "type": type_,
                                "fields": fields, "op_id": op_id})
        answer = Answer({}, 0, loop.create_future())
        self.forwarded += 1
        self._send(_Request(payload, answer, loop.time() + FORWARD_SECONDS))
        return answer

    def _send(self, request: _Request) -> None:
        token = str(next(self._tokens))
        self._waiting[token] = request
        request.timer = asyncio.get_running_loop().call_later(REQUEST_SECONDS, self._again, token,
                                                              "the sequencer did not answer")
        self._publisher.send(self.subject, request.payload, self._inbox + token)

    def ask_again(self) -> None:
        """The sequencer changed: what the last one did not answer goes to the new one now."""
        for token in list(self._waiting):
            self._again(token, "the sequencer changed")

    def _again(self, token: str, why: str, after: float = 0.0) -> None:
        """Ask again (after `after` seconds), or give up past the request's deadline."""
        request = self._waiting.pop(token, None)
        if request is None:
            return
        if request.timer is not None:
            request.timer.cancel()
        loop = asyncio.get_running_loop()
        if loop.time() + after >= request.deadline:
            self._settle(request.answer, StoreError(f"{why} (for {FORWARD_SECONDS:g} s)"))
            return
        self.retries += 1
        if after:
            loop.call_later(after, self._send, request)
        else:
            self._send(request)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._inbox):]
        if msg.headers and msg.headers.get("Status") == "503":  # no responders: no sequencer at the moment
            self._again(token, "no sequencer answers", RETRY_SECONDS)
            return
        reply = orjson.loads(msg.data)
        if "retry" in reply:
            self._again(token, reply["retry"], RETRY_SECONDS)
            return
        request = self._waiting.pop(token, None)
        if request is None:  # answered after it was asked again: the later answer settles it
            return
        if request.timer is not None:
            request.timer.cancel()
        if "error" in reply:
            self._settle(request.answer, _refusal(reply["error"]["code"], reply["error"]["message"]))
            return
        answer = request.answer
        answer.result, answer.seq = reply["result"], reply["seq"]
        # Answered once this node's fold holds it, so the client's next read here sees its change; stored on
        # the stream, it is not lost if this node rebuilds its fold meanwhile.
        self.after(answer.seq, lambda: self._settle(answer, None), lambda: self._settle(answer, None))

    def _settle(self, answer: Answer, error: BaseException | None) -> None:
        assert answer.write is not None
        if answer.write.done():
            return
        if error is None:
            answer.write.set_result(None)
        else:
            answer.write.set_exception(error)
            answer.write.exception()  # the connection reports it; not an unretrieved future
        self.replied()

    async def stop(self) -> None:
        for request in self._waiting.values():
            if request.timer is not None:
                request.timer.cancel()
        self._waiting.clear()
        await self._publisher.stop()


class Responder:
    """The sequencer's side: dispatch each forwarded command here and reply once it is durable."""

    def __init__(self, nc: NATS, subject: str, dispatch: Dispatch, after: After) -> None:
        self.nc, self.subject, self.dispatch, self.after = nc, subject, dispatch, after
        self.answered = 0
        self._publisher = Publisher(nc)
        self._sub: Subscription | None = None

    async def start(self) -> None:
        if self._sub is None:
            self._sub = await self.nc.subscribe(self.subject, queue="sequencer", cb=self._on_command)

    async def pause(self) -> None:
        """Take no more commands (this node no longer decides); those being stored still get their replies."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection is gone: so is the subscription
                log.info("command subscription not ended cleanly (%r)", exc)

    async def stop(self) -> None:
        await self.pause()
        await self._publisher.stop()

    async def _on_command(self, msg: Msg) -> None:
        try:
            body = orjson.loads(msg.data)
            outcome = self.dispatch(Identity(*body["who"]), body["type"], body["fields"], body["op_id"])
            if not isinstance(outcome, Answer):
                raise HubError(f"{body['type']} cannot be forwarded")
        except HubError as exc:
            self._respond(msg, {"error": {"code": exc.code, "message": exc.message}})
            return
        except Exception:
            log.exception("a forwarded command failed")
            self._respond(msg, {"error": {"code": INTERNAL_ERROR, "message": "the hub could not carry out this "
                                          "command"}})
            return
        if outcome.write is None:  # nothing stored, or a retry of an op_id stored (perhaps not yet durable)
            self.after(outcome.seq, lambda: self._reply(msg, outcome, None),
                       lambda: self._respond(msg, {"retry": "lost with a failed write"}))
        else:
            outcome.write.add_done_callback(lambda write: self._reply(msg, outcome, write))

    def _reply(self, msg: Msg, answer: Answer, write: asyncio.Future[None] | None) -> None:
        error = write.exception() if write is not None else None
        if error is not None:  # a write refused (this node was deposed) or lost: the follower asks again
            self._respond(msg, {"retry": str(error)})
            return
        self.answered += 1
        self._respond(msg, {"result": answer.result, "seq": answer.seq})

    def _respond(self, msg: Msg, body: dict[str, Any]) -> None:
        if msg.reply:
            self._publisher.send(msg.reply, orjson.dumps(body))
