"""The lab's web server: Starlette routes over one :class:`~steepest.lab.engine.Engine`, run by uvicorn.

Security, since the page can make this process write files and burn CPU:

* every request must carry the access token (``?token=…``, the ``X-Lab-Token`` header, or the
  cookie the page sets) — else 403;
* the server binds 127.0.0.1 unless told otherwise, and refuses (403) a request whose ``Host``
  header is not the address it is bound to (a DNS-rebinding page would send its own name);
* everything the page loads — HTML, script, style — comes from the package; no CDN, no fonts.

API (JSON; errors are one line ``{"error": "what is wrong; what to do"}``, status 400 for a request the
API refuses — a body that is not a JSON object of the expected fields (:mod:`steepest.lab.body` bounds its
size, nesting and digits) or a value out of range — 413 for a body over ``body.MAX_BYTES``, 404/405 for
an unknown path or method, 500 when the disk refuses a save or for a bug):

=====================  ==========================================================================
GET  /api/status       running, step, loss, test accuracy, settings, racers, and ``choices``: the names the
                       menus offer (activations, inits, optimizers and their options, budgets), from
                       :mod:`steepest.registry`
GET  /api/events       server-sent events: one JSON message per update (new points, pictures)
POST /api/start        start (or continue) training;  /api/pause, /api/step (one step), /api/reset (a new
                       θ₀ from the next seed, for every racer)
POST /api/configure    ``{"lr": 0.1, "batch_size": "full", …}``: settings; structural ones reset θ₀
POST /api/race         ``{"racers": [{"optimizer": "gd", "lr": 0.5, "batch_size": "full"}, …],
                       "budget": "steps"|"samples"|"seconds", "start": true}``: racers from one θ₀
POST /api/predict      ``{"pixels": [d numbers]}`` or ``{"image": [[grey 0…255]]}``, optional ``"target"``
GET  /api/surface      ``?n=21``: the loss on the plane of the paths
POST /api/save         ``{"name": "my-run"}``: a new run directory under runs/ (evaluate/report read it);
                       the name is checked by :func:`steepest.lab.actions.check_run_name`
=====================  ==========================================================================
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import socket
import sys
import traceback
from importlib import resources
from urllib.parse import parse_qs

from steepest.errors import SteepestError
from steepest.lab.config import short as _short

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
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Route

    from steepest.lab import actions
    from steepest.lab.config import choices

    api = _api_factory(engine)

    async def index(request):
        html = _static("index.html").decode().replace("{{TOKEN}}", token)
        r = HTMLResponse(html, headers={"Cache-Control": "no-store"})
        r.set_cookie("lab_token", token, httponly=True, samesite="strict")
        return r

    async def static(request):
        name = request.path_params["name"]
        if name not in ("lab.js", "lab.css", "plots.js", "explorer.js"):
            return _json({"error": f"no such file {name!r}; the page loads lab.js, lab.css, plots.js, explorer.js"}, 404)
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(_static(name), media_type=kind, headers={"Cache-Control": "no-store"})

    async def events(request):
        return StreamingResponse(_stream(engine, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def refused(request, exc):  # an unknown path or a wrong method: JSON like every other error
        return _json({"error": f"{request.method} {request.url.path}: {exc.detail}; "
                               "the API is listed in the docstring of steepest.lab.server"}, exc.status_code)

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
        Route("/api/surface", api(lambda q: actions.surface(engine, _grid_side(q)), with_body=False)),
        Route("/api/save", api(lambda b: {"run_dir": str(actions.save_run(engine, _name(b)))}), methods=["POST"]),
    ]
    return Guard(Starlette(routes=routes, exception_handlers={HTTPException: refused}), token, hosts)


def _json(content, status=200):
    """A JSON response, ASCII only: a lone surrogate ("\\ud800" in a request) that reaches a message
    is written as an escape instead of failing to encode (Starlette's JSONResponse writes UTF-8)."""
    from starlette.responses import Response

    text = json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return Response(text, status_code=status, media_type="application/json")


def _api_factory(engine):
    """``api(fn, with_body)``: an endpoint that calls ``fn`` with the request's JSON body (or its query
    parameters) in a worker thread and answers JSON; every error is one line ``{"error": …}``."""
    from starlette.concurrency import run_in_threadpool

    from steepest.commands._rundir import RunWriteError
    from steepest.lab import body

    def _page_message(e) -> str:
        """The error with its "what to do" half, in the page's terms: the command line's class hints
        ("see the command's --help") mean nothing in a browser."""
        text = str(e).strip()
        return text if ";" in text else f"{text}; change that value and try again"

    def api(fn, with_body=True):
        async def endpoint(request):
            try:
                raw = await body.read(request) if with_body else None
                query = dict(request.query_params)
                # parsed in the worker too: a large body must not hold up the event streams of other pages
                out = await run_in_threadpool(lambda: fn(body.parse(raw) if with_body else query))
            except body.BodyError as e:
                return _json({"error": str(e)}, e.status)
            except RunWriteError as e:  # the disk refused: the server's trouble, not the request's
                return _json({"error": str(e)}, 500)
            except SteepestError as e:
                return _json({"error": _page_message(e)}, 400)
            except MemoryError:
                return _json({"error": "not enough memory for that; use a smaller network"}, 400)
            except Exception as e:  # a bug: the page still gets one line; the traceback goes to the terminal
                traceback.print_exc()
                return _json({"error": f"internal error ({type(e).__name__}) in steepest lab; the terminal "
                                       "running the lab shows the traceback: please report it"}, 500)
            return _json(_clean(out if out is not None else engine.status()))
        return endpoint
    return api


def _grid_side(q) -> int:
    """``n`` of ``/api/surface?n=…``: decimal digits only (int() would also take "٣", " 7" and "1_0")."""
    n = q.get("n", "21")
    if not (n.isascii() and n.isdigit() and len(n) <= 6):
        raise SteepestError(f"n must be an integer written in digits, got {_short(n)}; e.g. ?n=21")
    return int(n)


def _name(b):
    b = _obj(b, ("name",))
    return b.get("name")


def _obj(b, keys):
    """``b`` if it is a JSON object whose keys are among ``keys``."""
    if not isinstance(b, dict):
        raise SteepestError(f"send a JSON object with {', '.join(keys)}, not {type(b).__name__}")
    unknown = sorted(set(b) - set(keys))
    if unknown:
        raise SteepestError(f"unknown field(s) {', '.join(map(_short, unknown))}; known: {', '.join(keys)}")
    return b


def _race(engine, b):
    b = _obj(b, ("racers", "budget", "start"))
    start = b.get("start", True)
    if not isinstance(start, bool):
        raise SteepestError(f"start must be true or false, got {_short(start)}")
    engine.race(b.get("racers"), b.get("budget", "steps"))
    if start:
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
    """A listening socket on ``host:port`` (port 0: a free one the system picks).

    Raises OSError (``socket.gaierror`` for a name that does not resolve) or UnicodeError (a name no
    resolver takes); the socket is closed then, not left to the garbage collector.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(engine, host="127.0.0.1", port=0, open_browser=True, out=sys.stdout, err=sys.stderr, sock=None) -> int:
    """Bind (unless given ``sock``, bound by :func:`bind` to ``host``), print ``lab: http://HOST:PORT/?token=…``,
    serve until Ctrl-C, then stop the training."""
    import uvicorn

    token = secrets.token_urlsafe(18)
    sock = sock if sock is not None else bind(host, port)
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
