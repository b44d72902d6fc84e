"""Commands a follower checked, carried to the sequencer over core NATS request/reply, and its answers back.

The subject `diemcau.<event>.command` is outside every stream's subjects (a stream matching it would
answer the requests with publish acknowledgements). The follower has parsed and authorised the command
and sends who sent it; the sequencer dispatches it as its own and replies once the event is durable.
Replies go out from a task: nats-py runs one subscription's callbacks one at a time, so awaiting the
store inside the callback would serialise every command of the cluster.

A request nobody answers (no sequencer between a loss and a takeover, or one that died holding it) is
sent again with the same op_id until FORWARD_SECONDS have passed: the sequencer's fold and the stream's
duplicate window make the retry change nothing if the first one was stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from hub.core.errors import INTERNAL_ERROR, Answer, HubError
from hub.core.errors import Subscription as Subscribe
from hub.log.base import StoreError
from hub.tokens import Identity

FORWARD_SECONDS = 15.0  # past this, the client is told to retry (its op_id makes the retry safe)
REQUEST_SECONDS = 3.0
RETRY_SECONDS = 0.1

log = logging.getLogger("diemcau.cluster.forward")
Dispatch = Callable[[Identity, Any, dict[str, Any], Any], Answer | Subscribe]


def command_subject(event_id: str) -> str:
    return f"diemcau.{event_id}.command"


def _refusal(code: str, message: str) -> HubError:
    error = HubError(message)
    error.code = code
    return error


class Forwarder:
    """The follower's side: each command becomes an Answer whose write is the sequencer's reply."""

    def __init__(self, nc: NATS, subject: str, replied: Callable[[], None]) -> None:
        self.nc, self.subject, self.replied = nc, subject, replied
        self.forwarded = 0
        self.retries = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def forward(self, who: Identity, type_: str, fields: dict[str, Any], op_id: str | None) -> Answer:
        payload = orjson.dumps({"who": [who.token_id, who.role, who.site, who.agency, who.label], "type": type_,
                                "fields": fields, "op_id": op_id})
        answer = Answer({}, 0, asyncio.get_running_loop().create_future())
        self.forwarded += 1
        task = asyncio.create_task(self._request(payload, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return answer

    async def _request(self, payload: bytes, answer: Answer) -> None:
        assert answer.write is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FORWARD_SECONDS
        while True:
            try:
                reply = orjson.loads((await self.nc.request(self.subject, payload, timeout=REQUEST_SECONDS)).data)
                if "retry" not in reply:
                    break
                why = reply["retry"]
            except (NoRespondersError, NatsTimeout, asyncio.TimeoutError) as exc:
                why = "no sequencer answers" if isinstance(exc, NoRespondersError) else "the sequencer did not answer"
            except Exception as exc:  # the connection is being re-established
                why = repr(exc)
            if loop.time() >= deadline:
                answer.write.set_exception(StoreError(f"{why} (for {FORWARD_SECONDS:g} s)"))
                answer.write.exception()  # the connection reports it; not an unretrieved future
                self.replied()
                return
            self.retries += 1
            await asyncio.sleep(RETRY_SECONDS)
        if "error" in reply:
            answer.write.set_exception(_refusal(reply["error"]["code"], reply["error"]["message"]))
            answer.write.exception()
        else:
            answer.result, answer.seq = reply["result"], reply["seq"]
            answer.write.set_result(None)
        self.replied()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Responder:
    """The sequencer's side: dispatch each forwarded command here and reply once it is durable."""

    def __init__(self, nc: NATS, subject: str, dispatch: Dispatch,
                 settled: Callable[[Answer], Any]) -> None:
        self.nc, self.subject, self.dispatch, self.settled = nc, subject, dispatch, settled
        self.answered = 0
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._sub is None:
            self._sub = await self.nc.subscribe(self.subject, queue="sequencer", cb=self._on_command)

    async def stop(self) -> None:
        """Take no more commands; those being stored still get their replies."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection is gone: so is the subscription
                log.info("command subscription not ended cleanly (%r)", exc)

    async def _on_command(self, msg: Msg) -> None:
        try:
            body = orjson.loads(msg.data)
            outcome = self.dispatch(Identity(*body["who"]), body["type"], body["fields"], body["op_id"])
            if not isinstance(outcome, Answer):
                raise HubError(f"{body['type']} cannot be forwarded")
        except HubError as exc:
            await self._respond(msg, {"error": {"code": exc.code, "message": exc.message}})
            return
        except Exception:
            log.exception("a forwarded command failed")
            await self._respond(msg, {"error": {"code": INTERNAL_ERROR, "message": "the hub could not carry out "
                                                "this command"}})
            return
        task = asyncio.create_task(self._reply(msg, outcome))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, msg: Msg, answer: Answer) -> None:
        try:
            result = await self.settled(answer)
        except HubError as exc:
            await self._respond(msg, {"error": {"code": exc.code, "message": exc.message}})
        except StoreError as exc:  # a write refused (this node was deposed) or lost: the follower asks again
            await self._respond(msg, {"retry": str(exc)})
        else:
            self.answered += 1
            await self._respond(msg, {"result": result, "seq": answer.seq})

    @staticmethod
    async def _respond(msg: Msg, body: dict[str, Any]) -> None:
        try:
            await msg.respond(orjson.dumps(body))
        except Exception as exc:  # the follower retries with the same op_id
            log.info("reply to a forwarded command not sent (%r)", exc)
