"""`pods/exec`, `pods/attach` and `pods/portforward` of simulated containers.

kube-apiserver upgrades these requests and relays the kubelet's streams. A simulated container runs no process,
so the embedded server upgrades as kube-apiserver does and then says so on the error stream:

- WebSocket (kubectl 1.30+ exec and attach, the official Python client's `stream`): the channel protocols
  `v5`/`v4`/`v3`/`v2.channel.k8s.io`, `channel.k8s.io` (and `base64.` variants) for exec and attach, a v1 Status
  failure on the error channel (3), which clients print as the command's error; `v4.channel.k8s.io`/
  `portforward.k8s.io` for port-forward, each port's two channels opened with the port number as upstream's
  kubelet does, the message on its error channel.
- SPDY/3.1 (kubectl up to 1.29 for exec and attach, up to 1.30 for port-forward, and the fallback of later ones),
  and port-forward tunnelled over WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+): refused before the
  upgrade with a 400 Status carrying the same message, which kubectl prints as the server's error. Speaking SPDY
  (zlib-compressed header blocks, stream replies, flow control) only to deliver that one message is not done.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from clusterset.api.objects import meta, spec, status
from clusterset.apiserver.kinds.podlogs import log_container
from clusterset.apiserver.meta import errors
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.store import Obj

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                     "channel.k8s.io", "v4.base64.channel.k8s.io", "base64.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io", "v4.base64.channel.k8s.io",
                         "base64.channel.k8s.io")
ERROR_CHANNEL = 3
CONNECTING = ("exec", "attach", "portforward")


async def connect(rest: Rest, request: web.Request, ctx: Ctx, name: str, sub: str) -> web.StreamResponse:
    """Upgrades a connect request (GET for WebSocket, POST for SPDY), then reports that the container is simulated."""
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    pod = rest.get(ctx, name).obj
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    protocols = PORTFORWARD_PROTOCOLS if sub == "portforward" else CHANNEL_PROTOCOLS
    if not websocket or not any(p in protocols for p in offered):
        if not request.headers.get("Upgrade"):
            raise errors.bad_request("Upgrade request required")
        raise errors.bad_request(_simulated_message(pod, sub, request, []))  # SPDY names its ports per stream
    ports = _ports(request) if sub == "portforward" else []
    message = _simulated_message(pod, sub, request, ports)
    ws = web.WebSocketResponse(protocols=[p for p in protocols if p in offered])
    await ws.prepare(request)
    protocol = ws.ws_protocol or ""
    send = _channel_sender(ws, protocol)
    if sub == "portforward":
        for index, port in enumerate(ports):
            opening = struct.pack("<H", port)  # each channel starts with its port, little endian
            await send(2 * index, opening)
            await send(2 * index + 1, opening)
            await send(2 * index + 1, message.encode())
    elif protocol.startswith(("v4.", "v5.")):
        failure = {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
                   "details": {"causes": [{"message": message}]}, "code": 500}
        await send(ERROR_CHANNEL, orjson.dumps(failure))
    else:
        await send(ERROR_CHANNEL, message.encode())
    await ws.close()
    return ws


def _simulated_message(pod: Obj, sub: str, request: web.Request, ports: list[int]) -> str:
    """Upstream's checks before the kubelet is dialled (a valid container of a pod that can run), then ours."""
    where = f"pod {meta(pod).get('namespace')}/{meta(pod).get('name')}"
    if sub == "portforward":
        target = f"on port {', '.join(str(p) for p in ports)} " if ports else ""
        return (f"{where} is simulated: clusterset's embedded kubelet runs no processes, so nothing listens "
                f"{target}to forward to")
    phase = status(pod).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot {sub} into a container in a completed pod; current phase is {phase}")
    container = log_container(pod, request.query.get("container", ""))
    if not spec(pod).get("nodeName") or phase == "Pending":
        raise errors.bad_request(f'container "{container}" in pod "{meta(pod).get("name")}" is waiting to start: '
                                 "ContainerCreating")
    what = f"run {' '.join(request.query.getall('command', []))!r}" if sub == "exec" else "attach to"
    return (f'container "{container}" of {where} is simulated: clusterset\'s embedded kubelet runs no processes, '
            f"so there is nothing to {what}")


def _ports(request: web.Request) -> list[int]:
    ports: list[int] = []
    for text in ",".join(request.query.getall("ports", [])).split(","):
        if not text.strip():
            continue
        try:
            port = int(text)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise errors.bad_request(f'invalid port "{text}": must be a number between 1 and 65535')
        ports.append(port)
    if not ports:
        raise errors.bad_request("at least 1 port must be specified")
    return ports


def _channel_sender(ws: web.WebSocketResponse, protocol: str) -> Callable[[int, bytes], Awaitable[None]]:
    """Frames of the channel protocol: binary `[channel, data...]`, or text `"<digit>" + base64(data)`."""
    encoded = "base64." in protocol

    async def send(channel: int, data: bytes) -> None:
        if encoded:
            await ws.send_str(str(channel) + base64.b64encode(data).decode())
        else:
            await ws.send_bytes(bytes([channel]) + data)

    return send

