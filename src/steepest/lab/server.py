"""The lab's web server: Starlette routes over one :class:`~steepest.lab.engine.Engine`, run by uvicorn.

Security, since the page can make this process write files and burn CPU:

* every request must carry the access token (``?token=…``, the ``X-Lab-Token`` header, or the
  cookie the page sets) — else 403;
* the server binds 127.0.0.1 unless told otherwise, and refuses (403) a request whose ``Host``
  header is not the address it is bound to (a DNS-rebinding page would send its own name);
* everything the page loads — HTML, script, style — comes from the package; no CDN, no fonts.

API (JSON; errors are ``{"error": "what is wrong; what to do"}`` with status 400):

=====================  ==========================================================================
GET  /api/status       running, step, loss, test accuracy, settings, racers, and ``choices``: the names the
                       menus offer (activations, inits, optimizers and their options, budgets), from
                       :mod:`steepest.registry`
GET  /api/events       server-sent events: one JSON message per update (new points, pictures)
POST /api/start        start (or continue) training;  /api/pause, /api/step (one step), /api/reset (a new
                       θ₀ from the next seed, for every racer)
POST /api/configure    ``{"lr": 0.1, "batch_size": "full", …}``: settings; structural ones reset θ₀
POST /api/race         ``{"racers": [{"optimizer": "gd", "lr": 0.5, "batch_size": "full"}, …],
                       "budget": "steps"|"samples"|"seconds"}``: racers from one θ₀
POST /api/predict      ``{"pixels": [d numbers]}`` or ``{"image": [[grey 0…255]]}``, optional ``"target"``
GET  /api/surface      ``?n=21``: the loss on the plane of the paths
POST /api/save         ``{"name": "my-run"}``: a run directory under runs/ (evaluate/report read it)
=====================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import socket
import sys
from importlib import resources
from urllib.parse import parse_qs

from steepest.errors import SteepestError

EVENT_POLL = 0.05      # seconds between two looks at the engine per open event stream
KEEPALIVE = 10.0       # seconds of silence before a comment line keeps the stream open


class Guard:
    """ASGI middleware: the Host header must name the bound address, and the token must be present."""

    def __init__(self, app, token: str, hosts):
        self.app, self.token, self.hosts = app, token, set(hosts) if hosts is not None else None

    def _token_of(self, scope) -> str:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cookies = dict(c.strip().split("=", 1) for c in headers.get("cookie", "").split(";") if "=" in c)
        return query.get("token", [""])[0] or headers.get("x-lab-token", "") or cookies.get("lab_token", ""), \
            headers.get("host", "")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            token, host = self._token_of(scope)
            why = None
            if self.hosts is not None and host.lower() not in self.hosts:
                why = f"Host {host!r} is not this server's address; open the URL the lab printed"
            elif not hmac.compare_digest(token.encode(), self.token.encode()):
                why = "missing or wrong access token; open the URL the lab printed (it holds ?token=…)"
            if why:
                body = json.dumps({"error": why}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def allowed_hosts(host: str, port: int):
    """Host headers accepted for a server bound to ``host:port`` (None: any, for 0.0.0.0 / ::)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host}
    if host in ("127.0.0.1", "::1", "localhost"):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return {f"{n}:{port}" for n in names} | names


def _static(name: str) -> bytes:
    return resources.files("steepest.lab").joinpath("static", name).read_bytes()


def build_app(engine, token: str, hosts):
    """The Starlette application, wrapped in :class:`Guard`."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    from steepest.lab import actions
    from steepest.lab.config import choices

    async def body(request):
        raw = await request.body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SteepestError(f"the request body is not valid JSON ({e}); send a JSON object") from None

    def api(fn, with_body=True):
        async def endpoint(request):
            try:
                payload = await body(request) if with_body else dict(request.query_params)
                out = await run_in_threadpool(fn, payload)
            except SteepestError as e:
                return JSONResponse({"error": str(e)}, status_code=400)
            except MemoryError:
                return JSONResponse({"error": "not enough memory for that; use a smaller network"}, 400)
            return JSONResponse(_clean(out if out is not None else engine.status()))
        return endpoint

    async def index(request):
        html = _static("index.html").decode().replace("{{TOKEN}}", token)
        r = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        r.set_cookie("lab_token", token, httponly=True, samesite="strict")
        return r

    async def static(request):
        name = request.path_params["name"]
        if name not in ("lab.js", "lab.css", "plots.js", "explorer.js"):
            return JSONResponse({"error": f"no such file {name}"}, 404)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(_static(name), media_type=kind, headers={"Cache-Control": "no-store"})

    async def events(request):
        return StreamingResponse(_stream(engine, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def surface(q):
        try:
            n = int(q.get("n", 21))
        except ValueError:
            raise SteepestError(f"n must be an integer, got {q.get('n')!r}") from None
        return actions.surface(engine, n)

    routes = [
        Route("/", index), Route("/static/{name}", static), Route("/api/events", events),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/status", api(lambda q: {**engine.status(), "choices": choices()}, with_body=False)),
        Route("/api/start", api(lambda b: engine.start()), methods=["POST"]),
        Route("/api/pause", api(lambda b: engine.pause()), methods=["POST"]),
        Route("/api/step", api(lambda b: engine.step()), methods=["POST"]),
        Route("/api/reset", api(lambda b: engine.reset()), methods=["POST"]),
        Route("/api/configure", api(lambda b: {**engine.configure(b), **engine.status()}), methods=["POST"]),
        Route("/api/race", api(lambda b: _race(engine, b)), methods=["POST"]),
        Route("/api/predict", api(lambda b: actions.predict(engine, b)), methods=["POST"]),
        Route("/api/surface", api(surface, with_body=False)),
        Route("/api/save", api(lambda b: {"run_dir": str(actions.save_run(engine, _obj(b).get("name")))}),
              methods=["POST"]),
    ]
    return Guard(Starlette(routes=routes), token, hosts)


def _obj(b):
    if not isinstance(b, dict):
        raise SteepestError("send a JSON object")
    return b


def _race(engine, b):
    b = _obj(b)
    engine.race(b.get("racers"), b.get("budget", "steps"))
    if b.get("start", True):
        engine.start()


def _clean(obj):
    """JSON-safe: NaN and ±inf become null (JSON has neither)."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


async def _stream(engine, request):
    """Server-sent events for one page: what changed, at most every EVENT_POLL seconds (coalesced)."""
    cursor, quiet = {}, 0.0
    with engine.lock:
        engine.clients += 1
    try:
        while not engine.quitting and not await request.is_disconnected():
            msg, cursor = engine.since(cursor)
            if msg is not None:
                data = await asyncio.get_running_loop().run_in_executor(None, _dumps, msg)
                yield f"data: {data}\n\n"
                quiet = 0.0
            elif quiet >= KEEPALIVE:
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(EVENT_POLL)
            quiet += EVENT_POLL
    finally:
        with engine.lock:
            engine.clients -= 1


def _dumps(msg) -> str:
    """Compact JSON; a message's ``extras`` may already be JSON text (cached by the engine)."""
    extras = msg.pop("extras", None) if isinstance(msg.get("extras"), str) else None
    text = json.dumps(_clean(msg), separators=(",", ":"))
    return text if extras is None else text[:-1] + ',"extras":' + extras + "}"



def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(engine, host="127.0.0.1", port=0, open_browser=True, out=sys.stdout, err=sys.stderr) -> int:
    """Bind, print ``lab: http://HOST:PORT/?token=…``, serve until Ctrl-C, then stop the training."""
    import uvicorn

    token = secrets.token_urlsafe(18)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    if host in ("0.0.0.0", "::"):
        print(f"steepest: warning: --host {host} makes the lab reachable from other machines on the network; "
              "anyone with the URL can steer it and write run directories", file=err, flush=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/?token={token}"
    app = build_app(engine, token, allowed_hosts(host, port))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="off")
    server = uvicorn.Server(config)
    print(f"lab: {url}", file=out, flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; the shutdown was clean
        pass
    finally:
        engine.quit()
    return 0
